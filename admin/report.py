"""How each variant does, from the prediction records: `python -m admin.report`.

    python -m admin.report (--sqlite PATH | --table NAME [--region REGION])
                           [--since WHEN] [--until WHEN] [--json]

One row per variant and model version (a variant's version changes when a new model rolls
out to it, and the two must not be averaged together): requests, feedback received,
accuracy from that feedback with its 95 % Wilson score interval, the share of predictions
that needed review, and the median and 95th percentile latency. WHEN is an ISO 8601 date
or time (UTC unless it says otherwise), e.g. `2026-03-01` or `2026-03-01T12:00:00+01:00`,
or a time back from now: `30m`, `12h`, `7d`.

Accuracy comes only from predictions users judged, and users judge some answers more
readily than others: compare variants with it, do not quote it as the model's accuracy.
The interval says how far the true rate among judged predictions may be from the one
measured: two variants whose intervals overlap widely are not shown to differ.

Exit status: 0 done (also with no records), 1 the store failed (AWS error, credentials,
permissions, a database file that does not exist or cannot be read), 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from machine.predictions_sqlite import DEFAULT_SQLITE_PATH, SqlitePredictionStore
from proxy.predictions import (
    DynamoPredictionStore,
    Prediction,
    PredictionStore,
    StoreError,
    iso_time,
)
from shared.stats import percentile

EXIT_STORE = 1
EXIT_USAGE = 2
Z_95 = 1.959963984540054
"""The standard normal quantile of 0.975: a two-sided 95 % interval."""

_AGO = re.compile(r"(\d+)([mhd])")
_AGO_SECONDS = {"m": 60, "h": 3600, "d": 86_400}


@dataclass(frozen=True)
class GroupSummary:
    """What the records of one variant and model version say."""

    variant: str
    model_version: str
    requests: int
    correct: int
    wrong: int
    needs_review: int
    latency_p50_ms: float
    latency_p95_ms: float
    first_epoch: float
    last_epoch: float

    @property
    def feedback(self) -> int:
        return self.correct + self.wrong

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.feedback if self.feedback else None

    @property
    def accuracy_ci95(self) -> tuple[float, float] | None:
        return wilson_interval(self.correct, self.feedback)

    @property
    def needs_review_rate(self) -> float:
        return self.needs_review / self.requests

    def as_json(self) -> dict[str, Any]:
        interval = self.accuracy_ci95
        return {
            "variant": self.variant,
            "model_version": self.model_version,
            "requests": self.requests,
            "feedback": self.feedback,
            "correct": self.correct,
            "wrong": self.wrong,
            "accuracy": _rounded(self.accuracy),
            "accuracy_ci95": None if interval is None else [_rounded(x) for x in interval],
            "needs_review_rate": _rounded(self.needs_review_rate),
            "latency_ms": {"p50": self.latency_p50_ms, "p95": self.latency_p95_ms},
            "first": iso_time(self.first_epoch),
            "last": iso_time(self.last_epoch),
        }


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval of a binomial proportion, or None without trials.

    Unlike the textbook p +/- z*sqrt(p(1-p)/n), it stays within [0, 1] and does not shrink
    to nothing at 0 or n successes, which is where small feedback counts often are.
    """
    if trials <= 0:
        return None
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be 0 to {trials}, not {successes}")
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    # Clamped: at 0 or n successes the bound is exactly 0 or 1 but rounds a hair off it.
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize(records: Iterable[Prediction]) -> list[GroupSummary]:
    """One summary per variant and model version, by variant, then oldest version first."""
    groups: dict[tuple[str, str], list[Prediction]] = {}
    for record in records:
        groups.setdefault((record.variant, record.model_version), []).append(record)
    summaries = []
    for (variant, version), members in groups.items():
        latencies = [record.latency_ms for record in members]
        times = [record.created_epoch for record in members]
        summaries.append(
            GroupSummary(
                variant=variant,
                model_version=version,
                requests=len(members),
                correct=sum(record.verdict == "correct" for record in members),
                wrong=sum(record.verdict == "wrong" for record in members),
                needs_review=sum(record.needs_review for record in members),
                latency_p50_ms=percentile(latencies, 0.50),
                latency_p95_ms=percentile(latencies, 0.95),
                first_epoch=min(times),
                last_epoch=max(times),
            )
        )
    return sorted(summaries, key=lambda s: (s.variant, s.first_epoch))


def parse_when(text: str, now: float) -> float:
    """Unix seconds of `--since`/`--until`: ISO 8601 (UTC unless given), or `<n>m|h|d` ago."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        return now - int(ago.group(1)) * _AGO_SECONDS[ago.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 date or time (2026-03-01, 2026-03-01T12:00Z) "
            "nor a time ago (30m, 12h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def render_table(summaries: Sequence[GroupSummary]) -> str:
    header = (
        "VARIANT",
        "MODEL VERSION",
        "REQUESTS",
        "FEEDBACK",
        "ACCURACY (95% CI)",
        "NEEDS REVIEW",
        "P50 MS",
        "P95 MS",
    )
    rows = [header]
    for s in summaries:
        interval = s.accuracy_ci95
        accuracy = (
            "-"
            if s.accuracy is None or interval is None
            else f"{s.accuracy:.1%} ({interval[0]:.1%}-{interval[1]:.1%})"
        )
        rows.append(
            (
                s.variant,
                s.model_version,
                str(s.requests),
                str(s.feedback),
                accuracy,
                f"{s.needs_review_rate:.1%}",
                f"{s.latency_p50_ms:.0f}",
                f"{s.latency_p95_ms:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    # Names left, numbers right, as a reader scans them.
    lines = [
        "  ".join(
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def store_from_args(args: argparse.Namespace, clock: Callable[[], float]) -> PredictionStore:
    """The store the arguments name; `clock` (Unix seconds) decides which records expired."""
    if args.table is not None:
        return DynamoPredictionStore(args.table, region=args.region, clock=clock)
    path = Path(args.sqlite)
    if not path.is_file():
        raise StoreError(
            f"{path} does not exist: the local runtime creates it when it records its first "
            "prediction"
        )
    return SqlitePredictionStore(path, clock=clock)


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    """The CLI; returns its exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = _parser().parse_args(argv)
    if args.region is not None and args.table is None:
        print("error: --region goes with --table, not --sqlite", file=err)
        return EXIT_USAGE
    now = clock()
    try:
        since = None if args.since is None else parse_when(args.since, now)
        until = None if args.until is None else parse_when(args.until, now)
    except ValueError as error:
        print(f"error: {error}", file=err)
        return EXIT_USAGE
    if since is not None and until is not None and since >= until:
        print("error: --since must be before --until", file=err)
        return EXIT_USAGE
    try:
        store = store_from_args(args, clock)
        summaries = summarize(store.records(since=since, until=until))
    except StoreError as error:
        print(f"error: {error}", file=err)
        return EXIT_STORE
    if args.json:
        document = {
            "source": store.describe(),
            "since": None if since is None else iso_time(since),
            "until": None if until is None else iso_time(until),
            "groups": [summary.as_json() for summary in summaries],
        }
        print(json.dumps(document, indent=2), file=out)
    elif summaries:
        print(render_table(summaries), file=out)
    else:
        print(f"No predictions in {store.describe()} for that time.", file=err)
    return 0


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m admin.report",
        description="Requests, user-reported accuracy, review rate and latency per variant "
        "and model version, from the proxy's prediction records.",
    )
    where = parser.add_argument_group("where the records are (one of)")
    choice = where.add_mutually_exclusive_group(required=True)
    choice.add_argument(
        "--sqlite",
        metavar="PATH",
        help=f"the local runtime's database (by convention {DEFAULT_SQLITE_PATH})",
    )
    choice.add_argument("--table", metavar="NAME", help="a deployed stack's DynamoDB table")
    where.add_argument("--region", help="AWS region of --table (default: the AWS config's)")
    parser.add_argument(
        "--since", metavar="WHEN", help="only predictions from then on (2026-03-01, 7d, 12h)"
    )
    parser.add_argument("--until", metavar="WHEN", help="only predictions before then")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


if __name__ == "__main__":
    sys.exit(main())
