"""A Lambda context object with the attributes and clock of the real Python runtime."""

from __future__ import annotations

import time
import uuid

FUNCTION_NAME = "image-classifier-proxy-local"
REGION = "us-east-1"
ACCOUNT_ID = "000000000000"
TIMEOUT_SECONDS = 29
"""Lambda timeout of the proxy: just under API Gateway's 30 s integration limit."""
MEMORY_MB = 256


class LambdaContext:
    """One invocation's context; `get_remaining_time_in_millis` counts down for real."""

    function_name = FUNCTION_NAME
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{FUNCTION_NAME}"
    # The Python runtime exposes the memory size as a string, taken from its environment.
    memory_limit_in_mb = str(MEMORY_MB)
    log_group_name = f"/aws/lambda/{FUNCTION_NAME}"
    identity = None
    client_context = None

    def __init__(self, timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
