"""Jittered exponential backoff between attempts on the endpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Equal jitter: half of each step is fixed, half random.

    The fixed half gives a cold-starting endpoint real time to come up; the random half keeps
    a burst of throttled requests from retrying in lockstep.
    """

    base: float = 0.25
    cap: float = 4.0

    def delay(self, retry: int, random: Callable[[], float]) -> float:
        """Seconds to wait before retry number `retry` (0 for the first retry)."""
        step = min(self.cap, self.base * 2**retry)
        return step / 2 + random() * step / 2
