"""Structured logs: one JSON object per line on stdout, never image bytes.

Lambda sends each stdout line to CloudWatch as one event, and a line that is a JSON object
is queryable field by field in CloudWatch Logs Insights.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


class JsonLog:
    def __init__(self, level: str = "INFO", stream: TextIO | None = None) -> None:
        self._threshold = _LEVELS[level]
        self._stream = stream

    def write(self, level: str, event: str, **fields: Any) -> None:
        if _LEVELS[level] < self._threshold:
            return
        line = json.dumps({"level": level, "event": event, **fields}, default=str)
        stream = self._stream or sys.stdout
        stream.write(line + "\n")
        stream.flush()
