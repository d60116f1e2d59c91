"""What the benchmarks share: a measured run (its percentiles by `shared.stats`'s one rule),
the photo the web UI sends."""

from __future__ import annotations

import io
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field

from PIL import Image
from skimage import data

from shared.stats import percentile


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

    def percentile(self, share: float) -> float:
        """In milliseconds; NaN when nothing was answered."""
        return percentile(self.latencies, share) * 1000 if self.latencies else math.nan

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
