"""`python -m batch review`: the human side of the batch pipeline.

    python -m batch review list (--out OUT | --bucket B) [--json]
    python -m batch review resolve NAME --label LABEL [--by WHO]
                                   (--out OUT | --bucket B) [--labels-from SPEC]
                                   [--sqlite PATH | --table NAME [--region R]]

`list` shows the queue, `review/`: each item's name, the model's top label and its
probability, the model version, when it was classified. `resolve` decides one: LABEL
must be one of the labels of the model that classified it (`batch.labels` says where
they come from; `--labels-from` names a source). It then

1. records the verdict in the prediction store when one is given (`--sqlite` the local
   runtime's file, `--table` the stack's DynamoDB table): `correct` when LABEL is the
   model's top label, else `wrong` with LABEL. Batch images have no record yet: one is
   put first, variant `batch`, request id the item's own (stable for its image);
2. writes `results/NAME.json`: the item, `"outcome": "reviewed"`, and `"reviewed": {"by",
   "at", "label", "verdict"}`;
3. removes `review/NAME.json`.

A resolve that failed half-way can be run again. WHO defaults to the login name.

Exit status: 0 done; 1 the outcomes or the store could not be read or written; 2 bad
usage (an `--out` folder that does not exist, a label the model does not have, no labels
known for its version); 3 NAME is not waiting for review.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from batch import labels as model_labels
from pipeline.storage import FAILED, RESULTS, REVIEW, LocalStorage, S3Storage, Storage, StorageError
from pipeline.tasks import REVIEWED, VARIANT, top_prediction
from proxy.predictions import (
    DEFAULT_RETENTION_DAYS,
    DynamoPredictionStore,
    InvalidFeedback,
    Prediction,
    PredictionNotFound,
    PredictionStore,
    StoreError,
    check_verdict,
    iso_time,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_PENDING = 0, 1, 2, 3
_DAY = 86_400


class ReviewError(Exception):
    """A resolve that cannot be done; `status` is the exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def item_name(text: str) -> str:
    """An item's name from what a user may paste: `cats/1.jpg`, or its file
    `review/cats/1.jpg.json`."""
    name = text.strip().lstrip("/")
    for folder in (REVIEW, RESULTS, FAILED):
        if name.startswith(folder) and name.endswith(".json"):
            return name.removeprefix(folder).removesuffix(".json")
    return name


def pending(out: Storage) -> list[dict[str, Any]]:
    """The items waiting for review, by name."""
    items = []
    for key in out.iter_keys(REVIEW):
        document = out.read_json(key) if key.endswith(".json") else None
        if document is not None:
            items.append(document)
    return items


def render(items: list[dict[str, Any]]) -> str:
    if not items:
        return "Nothing to review."
    rows = [("NAME", "TOP LABEL", "PROB", "MODEL", "CLASSIFIED")]
    for item in items:
        top = top_prediction(item)
        probability = top.get("probability")
        rows.append(
            (
                str(item.get("name", "?")),
                str(top.get("label", "-")),
                f"{probability:.3f}" if isinstance(probability, int | float) else "-",
                str((item.get("model") or {}).get("version", "-"))[:12],
                str(item.get("classified_at", "-")),
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + f"\n{len(items)} item(s) to review."


def resolve(
    out: Storage,
    name: str,
    label: str,
    by: str,
    *,
    labels: model_labels.Given | None = None,
    store: PredictionStore | None = None,
    clock: Callable[[], float] = time.time,
    local: tuple[Path, ...] = model_labels.LOCAL_SOURCES,
) -> dict[str, Any]:
    """Decide one item (see the module's docstring); the final result document."""
    review_key, result_key = f"{REVIEW}{name}.json", f"{RESULTS}{name}.json"
    try:
        item = out.read_json(review_key)
        if item is None:
            done = out.read_json(result_key)
            reviewed = (done or {}).get("reviewed")
            if isinstance(reviewed, dict):
                raise ReviewError(
                    f"{name} was resolved by {reviewed.get('by')} at {reviewed.get('at')} "
                    f"as {reviewed.get('label')!r}",
                    EXIT_NOT_PENDING,
                )
            raise ReviewError(f"{name} is not waiting for review", EXIT_NOT_PENDING)
    except StorageError as error:
        raise ReviewError(str(error), EXIT_FAILED) from None
    version = str((item.get("model") or {}).get("version", ""))
    try:
        known = model_labels.find(out, version, labels, local)
    except model_labels.LabelsError as error:
        raise ReviewError(str(error), EXIT_USAGE) from None
    except StorageError as error:
        raise ReviewError(str(error), EXIT_FAILED) from None
    if label not in known.labels:
        # ImageNet's synonym lists ("tabby, tabby cat") hold the model's name for a class.
        synonyms = [part.strip() for part in label.split(",")]
        close = [part for part in synonyms if part in known.labels][:3]
        close = close or model_labels.nearest(known.labels, label)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ReviewError(
            f"{label!r} is not one of the {len(known.labels)} labels of model "
            f"version {version}{hint}",
            EXIT_USAGE,
        )
    predicted = top_prediction(item).get("label")
    verdict = "correct" if label == predicted else "wrong"
    now = clock()
    if store is not None:
        _record(store, item, verdict, label, now)
    document = {
        **item,
        "outcome": REVIEWED,
        "reviewed": {"by": by, "at": iso_time(now), "label": label, "verdict": verdict},
    }
    try:
        out.write_json(result_key, document)
        out.delete(review_key)
    except StorageError as error:
        raise ReviewError(str(error), EXIT_FAILED) from None
    return document


def _record(
    store: PredictionStore, item: dict[str, Any], verdict: str, label: str, now: float
) -> None:
    """The verdict in the store, putting the item's prediction record first if needed."""
    request_id = str(item["request_id"])
    feedback_label = label if verdict == "wrong" else None
    try:
        check_verdict(verdict, feedback_label)
        try:
            store.record_feedback(request_id, verdict, feedback_label)
        except PredictionNotFound:
            store.put(_prediction(item, now))
            store.record_feedback(request_id, verdict, feedback_label)
    except (StoreError, InvalidFeedback, PredictionNotFound) as error:
        raise ReviewError(f"{store.describe()}: {error}", EXIT_FAILED) from None


def _prediction(item: dict[str, Any], now: float) -> Prediction:
    """The record the API would have made for the item: created when it was classified,
    unless that is too long ago to be kept."""
    created = now
    stamp = item.get("classified_at")
    if isinstance(stamp, str):
        try:
            classified = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            classified = now
        if now - classified < (DEFAULT_RETENTION_DAYS - 1) * _DAY:
            created = classified
    latency = item.get("latency_ms")
    return Prediction.from_response(
        item,
        variant=VARIANT,
        latency_ms=float(latency) if isinstance(latency, int | float) else 0.0,
        now=created,
    )


def open_outcomes(args: argparse.Namespace, flag: str = "--out") -> Storage:
    """The outcomes `args` name: `--bucket`, or the folder of `flag`, which must exist (a
    typo is not an empty queue)."""
    if args.bucket:
        return S3Storage(args.bucket, region=getattr(args, "region", None))
    folder = Path(args.out)
    if folder.exists() and not folder.is_dir():
        raise ReviewError(f"{flag} {args.out}: is a file, not a folder", EXIT_USAGE)
    if not folder.is_dir():
        raise ReviewError(f"{flag} {args.out}: no such folder", EXIT_USAGE)
    return LocalStorage(args.out)


def open_store(args: argparse.Namespace) -> PredictionStore | None:
    if args.sqlite is not None:
        from machine.predictions_sqlite import SqlitePredictionStore

        return SqlitePredictionStore(args.sqlite)
    if args.table is not None:
        return DynamoPredictionStore(args.table, region=args.region)
    return None


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="list|resolve")
    listing = actions.add_parser("list", help="the items waiting for review")
    _where(listing)
    listing.add_argument("--json", action="store_true", help="the items as a JSON list")
    deciding = actions.add_parser("resolve", help="decide one item's label")
    deciding.add_argument("name", metavar="NAME", help="the item's name, as `list` shows it")
    deciding.add_argument("--label", required=True, help="the right label, one of the model's")
    deciding.add_argument("--by", default=None, help="who decided (default: the login name)")
    deciding.add_argument(
        "--labels-from",
        metavar="SPEC",
        help="the model's labels: its archive, its metadata.json (or s3://bucket/key of "
        "one), a labels file or directory (MODEL_LABELS_DIR)",
    )
    _where(deciding)
    store = deciding.add_mutually_exclusive_group()
    store.add_argument("--sqlite", metavar="PATH", help="record the verdict in this SQLite store")
    store.add_argument("--table", metavar="NAME", help="record it in this DynamoDB table")


def _where(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="OUT", help="the folder `python -m batch run` wrote")
    where.add_argument("--bucket", metavar="B", help="the pipeline's inbox bucket")
    parser.add_argument("--region", help="AWS region of the bucket and table")


def command(
    args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        out = open_outcomes(args)
    except ReviewError as error:
        print(f"error: {error}", file=stderr)
        return error.status
    if args.action == "list":
        try:
            items = pending(out)
        except StorageError as error:
            print(f"error: {error}", file=stderr)
            return EXIT_FAILED
        print(json.dumps(items, indent=1) if args.json else render(items), file=stdout)
        return EXIT_OK
    try:
        given = model_labels.Given(args.labels_from) if args.labels_from else None
        store = open_store(args)
    except model_labels.LabelsError as error:
        print(f"error: {error}", file=stderr)
        return EXIT_USAGE
    except StoreError as error:
        print(f"error: {error}", file=stderr)
        return EXIT_FAILED
    name = item_name(args.name)
    try:
        document = resolve(out, name, args.label, args.by or _login(), labels=given, store=store)
    except ReviewError as error:
        print(f"error: {error}", file=stderr)
        return error.status
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()
    reviewed = document["reviewed"]
    print(
        f"{name}: {reviewed['label']!r} ({reviewed['verdict']}), by {reviewed['by']}; "
        f"{RESULTS}{name}.json",
        file=stdout,
    )
    return EXIT_OK


def _login() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
