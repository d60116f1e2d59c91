"""Running a coroutine in a test without disturbing the session's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """`coroutine`'s result, run on an event loop of its own.

    `asyncio.run` leaves the thread with no current event loop; Pulumi's mocks, set once
    for the whole session (tests/infra/conftest.py), then find their futures attached to
    another loop, and every later test under the mocks fails with "attached to a different
    loop". A loop made here is never made the thread's current one."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()
