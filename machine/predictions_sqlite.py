"""The local runtime's prediction store: an SQLite file, kept across restarts.

It keeps the contract of `proxy.predictions.PredictionStore` (the suite in
tests/proxy/test_predictions.py runs against it and DynamoDB alike): one table,
`predictions`, its columns the fields of `Prediction.as_record()`, keyed by `request_id`,
with an index on `created_epoch` for time windows. SQLite has no TTL: a store deletes the
expired rows when it opens the file, and never reads them.

Outside the Lambda's zip (the Lambda records to DynamoDB and never loads `sqlite3`): the
local runtime supplies it to the proxy for `PREDICTIONS_FILE` (`proxy.local_stores`), and
`python -m admin.report` and `python -m batch review` read it.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from proxy.predictions import (
    Prediction,
    PredictionNotFound,
    StoreError,
    check_verdict,
    iso_time,
)

DEFAULT_SQLITE_PATH = Path("build") / "local-data" / "predictions.sqlite3"
"""Where the local runtime keeps its records, relative to the repository root (build/ is
ignored by git)."""

_COLUMNS = (
    "request_id",
    "variant",
    "model_version",
    "label",
    "probability",
    "needs_review",
    "latency_ms",
    "created_at",
    "created_epoch",
    "expires_at",
    "verdict",
    "feedback_label",
    "feedback_at",
    "feedback_epoch",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    request_id TEXT PRIMARY KEY NOT NULL,
    variant TEXT NOT NULL,
    model_version TEXT NOT NULL,
    label TEXT,
    probability REAL,
    needs_review INTEGER NOT NULL CHECK (needs_review IN (0, 1)),
    latency_ms REAL NOT NULL,
    created_at TEXT NOT NULL,
    created_epoch REAL NOT NULL,
    expires_at INTEGER NOT NULL,
    verdict TEXT CHECK (verdict IN ('correct', 'wrong')),
    feedback_label TEXT,
    feedback_at TEXT,
    feedback_epoch REAL
);
CREATE INDEX IF NOT EXISTS predictions_by_time ON predictions (created_epoch);
"""


class SqlitePredictionStore:
    """An SQLite database file, for the local runtime and tests.

    One connection behind a lock: the local runtime serves requests from a thread pool, and
    SQLite runs one write at a time anyway. WAL mode lets another process (the report CLI)
    read the file while the runtime writes to it.
    """

    def __init__(
        self, path: str | Path = DEFAULT_SQLITE_PATH, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: every statement is its own transaction, and none spans two calls.
            db = sqlite3.connect(
                self.path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot open {self.path}: {error}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            # SQLite has no TTL: expired rows go when a store opens the file.
            db.execute("DELETE FROM predictions WHERE expires_at <= ?", (math.floor(clock()),))
        except sqlite3.Error as error:
            db.close()
            raise StoreError(f"cannot open {self.path}: {error}") from None
        self._db = db

    def describe(self) -> str:
        return str(self.path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SqlitePredictionStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def put(self, prediction: Prediction) -> None:
        row = prediction.as_record()
        placeholders = ", ".join("?" for _ in _COLUMNS)
        self._execute(
            f"INSERT OR REPLACE INTO predictions ({', '.join(_COLUMNS)}) "  # noqa: S608
            f"VALUES ({placeholders})",
            tuple(row[column] for column in _COLUMNS),
        )

    def get(self, request_id: str) -> Prediction:
        rows = self._execute(
            f"SELECT {', '.join(_COLUMNS)} FROM predictions "  # noqa: S608
            "WHERE request_id = ? AND expires_at > ?",
            (request_id, math.floor(self._clock())),
        )
        if not rows:
            raise PredictionNotFound(request_id)
        return _prediction(rows[0])

    def record_feedback(
        self, request_id: str, verdict: str, label: str | None = None
    ) -> Prediction:
        verdict, label = check_verdict(verdict, label)
        now = self._clock()
        with self._lock:
            try:
                changed = self._db.execute(
                    "UPDATE predictions SET verdict = ?, feedback_label = ?, feedback_at = ?, "
                    "feedback_epoch = ? WHERE request_id = ? AND expires_at > ?",
                    (verdict, label, iso_time(now), round(now, 3), request_id, math.floor(now)),
                ).rowcount
                if not changed:
                    raise PredictionNotFound(request_id)
                row = self._db.execute(
                    f"SELECT {', '.join(_COLUMNS)} FROM predictions "  # noqa: S608
                    "WHERE request_id = ?",
                    (request_id,),
                ).fetchone()
            except sqlite3.Error as error:
                raise StoreError(f"{self.path}: {error}") from None
        return _prediction(row)

    def records(
        self, since: float | None = None, until: float | None = None
    ) -> Iterator[Prediction]:
        query = f"SELECT {', '.join(_COLUMNS)} FROM predictions WHERE expires_at > ?"  # noqa: S608
        parameters: list[float] = [math.floor(self._clock())]
        if since is not None:
            query += " AND created_epoch >= ?"
            parameters.append(since)
        if until is not None:
            query += " AND created_epoch < ?"
            parameters.append(until)
        # Read whole, then yielded: a generator must not hold the lock between items.
        for row in self._execute(query, tuple(parameters)):
            yield _prediction(row)

    def _execute(self, sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, parameters).fetchall()
            except sqlite3.Error as error:
                raise StoreError(f"{self.path}: {error}") from None


def _prediction(row: tuple[Any, ...]) -> Prediction:
    return Prediction.from_record(dict(zip(_COLUMNS, row, strict=True)))
