"""What the benchmarks share: one percentile rule, a measured run, the photo the web UI sends."""

from __future__ import annotations

import io
import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image
from skimage import data


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q` quantile (0 to 1) of `values`; NaN when there are none."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Run:
    """One measured run: each answered request's seconds, each failure by its kind, and
    the run's wall time."""

    label: str
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    def percentile(self, q: float) -> float:
        """In milliseconds."""
        return percentile(self.latencies, q) * 1000

    @property
    def mean(self) -> float:
        """In milliseconds."""
        return statistics.fmean(self.latencies) * 1000 if self.latencies else math.nan

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def upload_photo() -> bytes:
    """A real photo at the size the web UI uploads (longest side 1024 px, JPEG)."""
    image = Image.fromarray(data.astronaut())
    image.thumbnail((1024, 1024))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
