"""Listening sockets, bound up front so a busy port is reported before any slow work."""

from __future__ import annotations

import errno
import socket


class PortInUse(Exception):
    def __init__(self, host: str, port: int, flag: str) -> None:
        super().__init__(
            f"port {port} on {host} is already in use (is `python -m local` already running?); "
            f"stop that program or choose another port with {flag} PORT"
        )


def listen(host: str, port: int, flag: str) -> socket.socket:
    """A listening TCP socket on host:port; `flag` names the option that picks the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Named TCP explicitly: asyncio sets TCP_NODELAY only on connections whose socket says
    # IPPROTO_TCP, and accepted sockets inherit the listener's (0 unless given). Without
    # it a response's second write (the body after the headers) waits for the client's
    # delayed ACK: about 40 ms on every request of a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # Like uvicorn: allow restarting while old connections sit in TIME_WAIT, but never
    # share a port another process is listening on.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port, flag) from None
        raise
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now, for a child process that binds it itself."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
