"""The API's CORS policy, shared by `ProxyApi` (HTTP API cors_configuration) and the
local runtime (which answers preflight the way the HTTP API does).

CORS belongs to the HTTP API, never to the Lambda: when both add headers the browser
sees duplicates and rejects the response. Pure standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class CorsPolicy:
    """Who may call the API from a browser; a wildcard origin is refused outright."""

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...] = ("POST",)
    allow_headers: tuple[str, ...] = ("content-type",)
    expose_headers: tuple[str, ...] = ("retry-after", "x-request-id")
    max_age_seconds: int = 3600

    def __post_init__(self) -> None:
        if not self.allow_origins:
            raise ValueError("CORS needs at least one allowed origin (the site's origin)")
        for origin in self.allow_origins:
            if origin == "*" or "*" in origin:
                raise ValueError(
                    "CORS origin '*' would let any website call the API; "
                    "allow the site's own origin instead"
                )
            parts = urlsplit(origin)
            if parts.scheme not in ("https", "http") or not parts.netloc or parts.path:
                raise ValueError(
                    f"CORS origin must be scheme://host[:port] with no path, got {origin!r}"
                )

    def allows(self, origin: str | None) -> bool:
        return origin is not None and origin in self.allow_origins
