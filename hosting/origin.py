"""The site's one origin: where it serves the API, and the headers of the way in.

CloudFront serves the web UI and, under `API_PATH`, the HTTP API, so the page calls
`${apiUrl}/predict` on its own origin (config.js `apiUrl` is `API_PATH`): no CORS, and a
Content-Security-Policy of `connect-src 'self'`. The local runtime serves the same paths.

The proxy (`proxy/access.py`) admits a request that carries `ORIGIN_HEADER` with the
stack's secret (CloudFront adds it to every request it forwards to the API) or a valid
`API_KEY_HEADER`. The stack cannot import `proxy`, so the names are written here too and a
test keeps both copies equal. Pure standard library.
"""

from __future__ import annotations

API_PATH = "/api"
"""The path prefix under which the site's origin serves the HTTP API."""
CONNECT_SRC = "'self'"
"""The Content-Security-Policy's `connect-src`: the page calls the API on its own origin,
nowhere else."""
ORIGIN_HEADER = "x-origin-verify"
"""The header CloudFront adds to every request it forwards to the API: the origin secret."""
API_KEY_HEADER = "x-api-key"
"""The header a program sends its API key in."""
