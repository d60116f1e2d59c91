"""What every host of the site and the API serves alike, CloudFront and `python -m local`:
the one origin's API path and access headers, the Content-Security-Policy and `config.js`
(and the CORS policy of a local runtime that serves the API on a port of its own). Pure
standard library."""
