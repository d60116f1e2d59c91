"""The site's one origin: where it serves the API.

CloudFront serves the web UI and, under `API_PATH`, the HTTP API, so the page calls
`${apiUrl}/predict` on its own origin (config.js `apiUrl` is `API_PATH`): no CORS, and a
Content-Security-Policy of `connect-src 'self'`. The local runtime serves the same paths.
The API's routes and the headers of the way in are `shared.api`'s, which the proxy also
imports. Pure standard library.
"""

from __future__ import annotations

from shared.api import PREDICT

API_PATH = "/api"
"""The path prefix under which the site's origin serves the HTTP API."""
PREDICT_PATH = f"{API_PATH}/{PREDICT}"
"""Where photos are uploaded: the path CloudFront forwards unchanged (`/api/*` behaviour),
so the API routes it too."""
CONNECT_SRC = "'self'"
"""The Content-Security-Policy's `connect-src`: the page calls the API on its own origin,
nowhere else."""
