"""The one percentile rule (`shared.stats`): linear interpolation between the closest
ranks, numpy's default, pinned on known cases and against numpy itself."""

from __future__ import annotations

import random
import statistics

import numpy as np
import pytest

from shared.stats import percentile

TEN = [float(v) for v in range(10, 0, -1)]  # 1 to 10, unsorted


@pytest.mark.parametrize(
    ("values", "share", "expected"),
    [
        (TEN, 0.0, 1.0),
        (TEN, 0.5, 5.5),
        (TEN, 0.95, 9.55),
        (TEN, 1.0, 10.0),
        ([7.0], 0.95, 7.0),
        ([1.0, 3.0], 0.25, 1.5),
        ([100, 200, 300, 400, 500], 0.95, 480.0),
        ([2.0, 2.0, 2.0], 0.5, 2.0),
    ],
)
def test_known_cases(values, share, expected):
    assert percentile(values, share) == pytest.approx(expected)


def test_it_is_numpys_default_rule():
    draw = random.Random(7)
    for size in (1, 2, 3, 10, 99, 1000):
        values = [draw.lognormvariate(5, 1) for _ in range(size)]
        for share in (0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1):
            assert percentile(values, share) == pytest.approx(
                float(np.percentile(values, share * 100)), rel=1e-12
            )


def test_its_p50_is_the_median_and_any_iterable_will_do():
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0]
    assert percentile(values, 0.5) == statistics.median(values) == 3.5
    assert percentile(iter(values), 0.5) == 3.5
    assert isinstance(percentile([1, 2, 3], 0.5), float)


@pytest.mark.parametrize(
    ("values", "share", "message"),
    [([], 0.5, "no values"), ([1.0], -0.01, "share must be 0 to 1"), ([1.0], 1.01, "share")],
)
def test_no_values_or_a_share_outside_0_to_1_is_refused(values, share, message):
    with pytest.raises(ValueError, match=message):
        percentile(values, share)
