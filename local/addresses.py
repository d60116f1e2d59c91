"""Where the local runtime listens: the site's one origin, and the API's direct address."""

from __future__ import annotations

from dataclasses import dataclass

from hosting.origin import API_PATH

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 (describes, does not bind)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class Addresses:
    host: str
    port: int
    """The site's one origin: the web UI, and the API under `/api/`, as CloudFront serves them."""
    api_port: int
    """The API called directly, the `execute-api` URL's stand-in (no origin header)."""

    @property
    def display_host(self) -> str:
        """The host to print: a wildcard address is reached at loopback on this machine."""
        return "127.0.0.1" if self.host in WILDCARD_HOSTS else self.host

    def site_url(self) -> str:
        """The one origin, e.g. `http://127.0.0.1:8000`."""
        return f"http://{_url_host(self.display_host)}:{self.port}"

    def api_url(self) -> str:
        """The API through the site, as stack output `api_url`: `http://127.0.0.1:8000/api`."""
        return f"{self.site_url()}{API_PATH}"

    def direct_api_url(self) -> str:
        """The API called directly, as stack output `execute_api_url`:
        `http://127.0.0.1:8001/api`."""
        return f"http://{_url_host(self.display_host)}:{self.api_port}{API_PATH}"
