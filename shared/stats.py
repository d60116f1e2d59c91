"""The one percentile rule of every report and benchmark, so two reports of the same
latencies give the same p50 and p95.

Linear interpolation between the two nearest ranks: numpy's default
(`numpy.percentile(..., method="linear")`), R's type 7, and Python's
`statistics.quantiles(..., method="inclusive")`. Its p50 is the median
(`statistics.median`), it moves smoothly with the share, and a few samples do not jump
from one observed value to the next.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], share: float) -> float:
    """The `share` quantile (0 to 1; 0.95 for p95) of `values`, sorted or not, by linear
    interpolation between the closest ranks. ValueError for no values or a share outside
    0 to 1: each caller says what an empty report shows."""
    if not 0 <= share <= 1:
        raise ValueError(f"share must be 0 to 1, not {share}")
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = share * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return float(ordered[below] + (ordered[above] - ordered[below]) * (position - below))
