"""What every host of the site and the API serves alike, CloudFront and `python -m local`:
the CORS policy, the Content-Security-Policy and `config.js`. Pure standard library."""
