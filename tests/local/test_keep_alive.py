"""Kept-alive connections to the local runtime's servers are answered at once.

The runtime binds its listening sockets itself (`machine.ports.listen`) and hands them to
uvicorn. A response goes out in two writes (headers, then body); without TCP_NODELAY on
the accepted socket, Nagle's algorithm holds the second write until the client's delayed
ACK, about 40 ms on every request of a kept-alive connection (bench/keep_alive.py shows
the difference). These tests check the option itself, on the server's side, not a time.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading

import uvicorn

from machine.ports import listen
from tests.event_loop import run_apart


def _nodelay(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def test_connections_accepted_on_a_runtime_listener_have_nodelay():
    """As uvicorn serves the runtime's sockets: asyncio's server on the listener."""
    listener = listen("127.0.0.1", 0, "--port")
    port = listener.getsockname()[1]
    seen: list[bool] = []

    async def main() -> None:
        def accepted(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(_nodelay(writer.get_extra_info("socket")))
            writer.close()

        server = await asyncio.start_server(accepted, sock=listener)
        async with server:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            while not seen:
                await asyncio.sleep(0.01)
            writer.close()

    run_apart(asyncio.wait_for(main(), 10))
    assert seen == [True]


def test_uvicorn_on_a_runtime_listener_answers_kept_alive_requests_without_nagle():
    """The whole server as the runtime runs it: two requests on one connection, then the
    option on uvicorn's own accepted socket."""
    listener = listen("127.0.0.1", 0, "--port")
    port = listener.getsockname()[1]

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(2):
            client.request("GET", "/")
            response = client.getresponse()
            assert response.read() == b"ok"
        connections = list(server.server_state.connections)
        assert len(connections) == 1
        assert _nodelay(connections[0].transport.get_extra_info("socket"))
        client.close()
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
