"""Where the local site and API listen, and which browser origins count as the site."""

from __future__ import annotations

import socket
from dataclasses import dataclass

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 (describes, does not bind)
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _primary_address() -> list[str]:
    """The LAN address other devices reach this machine at (hostname lookups often give
    127.0.1.1). Connecting a UDP socket picks a route without sending anything."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))
            return [str(probe.getsockname()[0])]
        except OSError:
            return []


@dataclass(frozen=True)
class Addresses:
    host: str
    site_port: int
    api_port: int

    @property
    def display_host(self) -> str:
        """The host to print and to put in `config.js` by default."""
        return "127.0.0.1" if self.host in WILDCARD_HOSTS else self.host

    def site_hosts(self) -> tuple[str, ...]:
        """Host names a browser may use to reach the site (each is a distinct origin)."""
        if self.host in LOOPBACK_NAMES:
            return LOOPBACK_NAMES
        if self.host == "::1":
            return ("::1", "localhost")
        if self.host not in WILDCARD_HOSTS:
            return (self.host,)
        # Listening everywhere: the machine's own names and addresses are the site too.
        names = [*LOOPBACK_NAMES, socket.gethostname()]
        try:
            infos = socket.getaddrinfo(socket.gethostname(), None, type=socket.SOCK_STREAM)
        except OSError:
            infos = []
        names.extend(str(info[4][0]) for info in infos)
        names.extend(_primary_address())
        return tuple(dict.fromkeys(names))

    def site_origins(self) -> tuple[str, ...]:
        return tuple(f"http://{_url_host(h)}:{self.site_port}" for h in self.site_hosts())

    def browser_host(self, host_header: str | None) -> str:
        """The host the browser used for the site, if it is one of ours."""
        if host_header:
            name = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
            name = name.strip("[]")
            if name in self.site_hosts():
                return name
        return self.display_host

    def site_url(self, host: str | None = None) -> str:
        return f"http://{_url_host(host or self.display_host)}:{self.site_port}"

    def api_url(self, host: str | None = None) -> str:
        return f"http://{_url_host(host or self.display_host)}:{self.api_port}"
