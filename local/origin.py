"""The site's one origin: CloudFront's job in front of the site and the API.

CloudFront serves the web UI and, under `/api/*`, forwards requests to the HTTP API with
their path put under its origin path (`/<site stage>`: the API's stage only CloudFront
knows, with a throttle budget of its own, decision 13), adding the origin header with the
stack's secret (`x-origin-verify`) and the client's `ip:port` (`cloudfront-viewer-address`,
IPv6 unbracketed, as CloudFront writes it); a value a client sent in either header is
replaced, never passed on. The proxy admits what carries the secret (`proxy/access.py`),
so the page needs no CORS and a direct call to the API's own URL is refused. Here the
secret and the stage's name are random ones per run.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from hosting.origin import API_PATH
from proxy.access import VIEWER_ADDRESS_HEADER
from shared.api import ORIGIN_HEADER

_HEADER = ORIGIN_HEADER.encode("ascii")
_VIEWER = VIEWER_ADDRESS_HEADER.encode("ascii")
API_PREFIX = f"{API_PATH}/"
"""What CloudFront's `/api/*` behaviour matches: `/api` alone is the site's (a 404)."""


def is_api_path(path: str) -> bool:
    return path.startswith(API_PREFIX)


def create_origin_app(
    site: ASGIApp, api: ASGIApp, origin_secret: str, origin_path: str = ""
) -> ASGIApp:
    """One ASGI app: `/api/*` goes to `api` under `origin_path` (`/<site stage>`, or the
    API's root), with the origin header set to `origin_secret`; everything else to `site`."""
    secret = origin_secret.encode("ascii")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_api_path(scope["path"]):
            headers = [
                (name, value)
                for name, value in scope["headers"]
                if name.lower() not in (_HEADER, _VIEWER)
            ]
            headers.append((_HEADER, secret))
            client = scope.get("client")
            if client:
                headers.append((_VIEWER, f"{client[0]}:{client[1]}".encode()))
            path = f"{origin_path}{scope['path']}"
            forwarded = {**scope, "headers": headers, "path": path, "raw_path": path.encode()}
            await api(forwarded, receive, send)
        else:
            await site(scope, receive, send)

    return app
