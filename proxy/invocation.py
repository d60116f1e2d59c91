"""`EndpointInvoker`: `InvokeEndpoint` with bounded retries that never outlive the Lambda.

Every attempt gets a read timeout that fits in what is left of the request's deadline, and a
retry starts only if its backoff plus a minimal attempt still fit. So the function always
answers the client itself (a 503 with Retry-After at worst) instead of being killed by its
own timeout, which API Gateway would turn into a bare 500.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from proxy.backoff import Backoff
from proxy.errors import ApiError
from proxy.outcomes import Failure, classify

# An attempt with less time than this to read the answer is not worth starting.
MIN_READ_TIMEOUT = 1.0


@dataclass(frozen=True)
class Invocation:
    payload: bytes
    attempts: int
    failures: tuple[str, ...] = ()


class InvocationFailed(ApiError):
    """The final failure, with what the log needs to explain it."""

    def __init__(self, failure: Failure | None, attempts: int, failures: tuple[str, ...]) -> None:
        error = failure.error if failure is not None else _no_time()
        super().__init__(error.status, error.code, error.message, retry_after=error.retry_after)
        self.attempts = attempts
        self.failures = failures
        self.reason = failure.reason if failure is not None else "no_time"
        self.detail = failure.detail if failure is not None else "deadline reached before a call"


@dataclass
class EndpointInvoker:
    """Calls one endpoint; `clients(read_timeout)` returns a client with that read timeout."""

    clients: Callable[[float], Any]
    endpoint_name: str
    max_attempts: int
    read_timeout: float
    connect_timeout: float
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random

    def invoke(self, body: bytes, content_type: str, deadline: float) -> Invocation:
        """The model's answer, or `InvocationFailed` before `deadline` (a `clock` value)."""
        failures: list[str] = []
        failure: Failure | None = None
        attempt = 0
        while attempt < self.max_attempts:
            if attempt:
                delay = self.backoff.delay(attempt - 1, self.jitter)
                if self._read_budget(deadline, delay) < MIN_READ_TIMEOUT:
                    break
                self.sleep(delay)
            read_timeout = self._read_budget(deadline, 0.0)
            if read_timeout < MIN_READ_TIMEOUT:
                break
            attempt += 1
            try:
                payload = self._call(body, content_type, read_timeout)
            except (ClientError, BotoCoreError) as exc:
                failure = classify(exc)
                failures.append(failure.reason)
                if not failure.retryable:
                    break
                continue
            return Invocation(payload, attempt, tuple(failures))
        raise InvocationFailed(failure, attempt, tuple(failures))

    def _read_budget(self, deadline: float, delay: float) -> float:
        left = deadline - self.clock() - delay - self.connect_timeout
        return min(self.read_timeout, left)

    def _call(self, body: bytes, content_type: str, read_timeout: float) -> bytes:
        response = self.clients(read_timeout).invoke_endpoint(
            EndpointName=self.endpoint_name,
            Body=body,
            ContentType=content_type,
            Accept="application/json",
        )
        # Reading the stream belongs to the attempt: a timeout here is retried like any other.
        return response["Body"].read()


def _no_time() -> ApiError:
    return ApiError(
        503,
        "model_unavailable",
        "The request ran out of time before the model could be called; try again.",
        retry_after=1,
    )
