"""What the proxy's `LOG_LEVEL` may be: the stack checks its config `lambdaLogLevel`
against it (`components/proxy_api.py`) and the proxy refuses any other at cold start
(`proxy/config.py`)."""

from __future__ import annotations

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_LOG_LEVEL = "INFO"
