"""A stand-in model server on loopback for `python -m batch run --model-server URL`: it
answers `GET /ping` and every image as told (a delay, a status, a model version)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.batch.support import VERSION, QuietHandler, answer, loopback_server


@dataclass
class StandIn:
    url: str = ""
    ping_status: int = 200
    status: int = 200
    """An image's answer: 200 (unsure, for review) or this error status."""
    delay: float = 0.0
    version: str = VERSION
    called: threading.Event = field(default_factory=threading.Event)
    """Set by the first image."""


@contextmanager
def stand_in(**options: object) -> Iterator[StandIn]:
    model = StandIn(**options)  # type: ignore[arg-type]

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            self.send(model.ping_status if self.path == "/ping" else 404, b"")

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            model.called.set()
            time.sleep(model.delay)
            if model.status == 200:
                self.send(200, answer(0.5, version=model.version))
            else:
                self.send(model.status, b'{"message": "unavailable"}')

    with loopback_server(Handler) as url:
        model.url = url
        yield model
