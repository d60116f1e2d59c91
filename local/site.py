"""The local static site: `site/` as files, plus `config.js` rendered like `StaticSite` does.

The page calls the API on its own origin (`/api`, `local/origin.py`), so `config.js` and
the Content-Security-Policy (`connect-src 'self'`) are the same text for every host name
and port the site is reached at.
"""

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
from hosting.origin import API_PATH

SITE_DIR = Path(__file__).resolve().parent.parent / "site"
ENVIRONMENT = "local"
CONTENT_SECURITY_POLICY = content_security_policy("'self'")


class _SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers["content-security-policy"] = CONTENT_SECURITY_POLICY
        response.headers["x-content-type-options"] = "nosniff"
        response.headers["referrer-policy"] = "no-referrer"
        # Files are revalidated (ETag) so edits to site/ show on reload; config.js never caches.
        response.headers.setdefault("cache-control", "no-cache")
        return response


def create_site_app(
    model_version: str,
    site_dir: Path = SITE_DIR,
    *,
    model_weights: str,
) -> Starlette:
    """Serve `site_dir` with a `config.js` pointing at the API on the same origin.

    `model_weights` (the archive's weights id) lets the page warn about an untrained
    model on first load, as the cloud's `config.js` does."""
    text = render_config_js(
        SiteConfig(
            api_url=API_PATH,
            environment=ENVIRONMENT,
            model_version=model_version,
            model_weights=model_weights,
        )
    )

    async def config_js(request: Request) -> Response:
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
            Middleware(_SecurityHeaders),
        ],
    )
