"""Structured logs through the standard `logging` module: one JSON object per line on stdout.

Lambda sends each stdout line to CloudWatch as one event, and a line that is a JSON object is
queryable field by field in CloudWatch Logs Insights. As with AWS Lambda Powertools' Logger,
whichever part of the proxy learns something about the request in flight appends it to the
request's context (`append_keys`), and every line logged during the request carries it.
Never log image bytes.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

log = logging.getLogger("proxy")
# What a line written past the log level keeps of the request's keys: enough to find it.
_BARE_KEYS = ("request_id", "route")

# A context variable rather than a global: the local runtime serves requests in threads.
_request_keys: ContextVar[dict[str, Any] | None] = ContextVar("proxy_request_keys", default=None)


class JsonFormatter(logging.Formatter):
    """`{"level": ..., "event": <the message>, <request keys>, <the record's own fields>}`.

    A record's own fields come as `extra={"fields": {...}}`: `logging` reserves some names
    as record attributes (`message` among them), so they cannot be passed one by one.
    """

    def format(self, record: logging.LogRecord) -> str:
        document = {"level": record.levelname, "event": record.getMessage()}
        keys = _request_keys.get() or {}
        if getattr(record, "bare", False):
            keys = {name: keys[name] for name in _BARE_KEYS if name in keys}
        document.update(keys)
        document.update(getattr(record, "fields", {}))
        if record.exc_info:
            document["traceback"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send the proxy's records from `level` up to `stream` (stdout) as JSON lines."""
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(JsonFormatter())
    for old in list(log.handlers):
        log.removeHandler(old)
    log.addHandler(handler)
    log.setLevel(level)
    # Each line belongs on stdout once: the local runtime's root logger prints to stderr.
    log.propagate = False


@contextmanager
def request_context(**keys: Any) -> Iterator[None]:
    """A fresh context for one request, starting with `keys`; gone when the request ends."""
    token = _request_keys.set(dict(keys))
    try:
        yield
    finally:
        _request_keys.reset(token)


def append_keys(**keys: Any) -> None:
    """Add `keys` to the log lines of the request in flight (outside a request, to none)."""
    current = _request_keys.get()
    if current is not None:
        current.update(keys)


def write_past_level(event: str, fields: dict[str, Any]) -> None:
    """One INFO line `event` with `fields` and the request's id, whatever the log level.

    For what must reach CloudWatch even when `LOG_LEVEL` drops the request's line: its
    metrics (Embedded Metric Format members are read from log lines, and a filtered line
    would leave the metrics short of every routine request).
    """
    record = log.makeRecord(
        log.name, logging.INFO, __file__, 0, event, (), None, extra={"fields": fields, "bare": True}
    )
    log.handle(record)
