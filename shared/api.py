"""The HTTP API as every side names it: its routes, its stages, the headers of the way in.

The stack routes these paths and methods to the proxy (`components/proxy_api.py`), the
proxy answers them (`proxy/app.py`) and the local runtime serves them alike
(`local/api.py`), all under `hosting.origin.API_PATH`. CloudFront adds `ORIGIN_HEADER` with
the stack's secret to every request it forwards to the API (`components/static_site.py`;
locally `local/origin.py`), and the proxy admits a request that carries it or a valid
`API_KEY_HEADER` (`proxy/access.py`).
"""

from __future__ import annotations

PREDICT = "predict"
FEEDBACK = "feedback"
LABELS = "labels"
ROUTES = (PREDICT, FEEDBACK, LABELS)
"""`POST predict`, `POST feedback` (a verdict on a recorded prediction) and `GET labels`
(a model version's labels), under `hosting.origin.API_PATH`."""
ROUTED_METHODS = ("POST", "GET", "PUT", "PATCH", "DELETE")
"""Every path routes these to the proxy, so a wrong method gets its 405 with a message (as
locally) instead of the HTTP API's bare 404. Never `ANY`: that would also send `OPTIONS`
and `HEAD` to the Lambda, so every preflight a foreign page's browser sends would run (and
bill) the function for an answer the API gives itself: a 404, with no CORS headers."""
DIRECT_STAGE = "$default"
"""The HTTP API's stage at its own URL (`execute_api_url`), for programs with an API key;
any other is the site's, reached through CloudFront (decision 13)."""
VIA_CLOUDFRONT = "cloudfront"
VIA_EXECUTE_API = "execute-api"
"""How a request came in (through the site's stage or the direct one), as the stages'
access logs and the proxy's log line say it."""
ORIGIN_HEADER = "x-origin-verify"
"""The header CloudFront adds to every request it forwards to the API: the origin secret."""
API_KEY_HEADER = "x-api-key"
"""The header a program sends its API key in."""
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
"""API Gateway HTTP APIs refuse request payloads above 10 MB before any integration runs."""
