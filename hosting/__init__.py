"""What every host of the site and the API serves alike, CloudFront and `python -m local`:
the one origin's API path, the Content-Security-Policy and `config.js`.
Pure standard library."""
