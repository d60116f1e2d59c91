"""The local static site: `site/` as files, plus `config.js` rendered like `StaticSite` does."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hosting.config_js import SiteConfig, render_config_js
from hosting.content_security_policy import content_security_policy
from local.addresses import Addresses

SITE_DIR = Path(__file__).resolve().parent.parent / "site"
ENVIRONMENT = "local"


class _SecurityHeaders(BaseHTTPMiddleware):
    def __init__(self, app, addresses: Addresses) -> None:
        super().__init__(app)
        self.addresses = addresses

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        host = self.addresses.browser_host(request.headers.get("host"))
        response.headers["content-security-policy"] = content_security_policy(
            self.addresses.api_url(host)
        )
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["referrer-policy"] = "no-referrer"
        # Files are revalidated (ETag) so edits to site/ show on reload; config.js never caches.
        response.headers.setdefault("cache-control", "no-cache")
        return response


def create_site_app(
    addresses: Addresses,
    model_version: str,
    site_dir: Path = SITE_DIR,
    *,
    model_weights: str | None = None,
) -> Starlette:
    """Serve `site_dir` with a `config.js` pointing at the local API.

    `model_weights` (the archive's weights id) lets the page warn about an untrained
    model on first load."""

    async def config_js(request: Request) -> Response:
        host = addresses.browser_host(request.headers.get("host"))
        text = render_config_js(
            SiteConfig(
                api_url=addresses.api_url(host),
                environment=ENVIRONMENT,
                model_version=model_version,
                model_weights=model_weights,
            )
        )
        return Response(
            text,
            media_type="text/javascript",
            headers={"cache-control": "no-store"},
        )

    return Starlette(
        routes=[
            Route("/config.js", config_js, methods=["GET", "HEAD"]),
            Mount("/", StaticFiles(directory=site_dir, html=True)),
        ],
        middleware=[
            # Text compresses to a third or less, as CloudFront serves it (compress: True);
            # images are left alone (Starlette skips image types).
            Middleware(GZipMiddleware),
            Middleware(_SecurityHeaders, addresses=addresses),
        ],
    )
