"""`InvokeEndpoint`: the container's clients, the call with its retries, what a failure means.

Every attempt gets a read timeout that fits in what is left of the request's deadline, and a
retry starts only if its backoff plus a minimal attempt still fit. So the function always
answers the client itself (a 503 with Retry-After at worst) instead of being killed by its
own timeout, which API Gateway would turn into a bare 500.

The client never sees SageMaker's own messages (they name accounts, endpoints and log
streams); it gets a stable code and a sentence, and the details go to the request's log line.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from proxy.logs import append_keys
from proxy.responses import ApiError

# An attempt with less time than this to read the answer is not worth starting.
MIN_READ_TIMEOUT = 1.0

# Retry-After seconds suggested to clients, by how long each condition usually lasts.
RETRY_AFTER_BUSY = 2
RETRY_AFTER_STARTING = 5
RETRY_AFTER_UNAVAILABLE = 5
RETRY_AFTER_NOT_DEPLOYED = 60

_THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)
_SNAKE_CASE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_MESSAGE = 500
_DECODER = json.JSONDecoder()
_USER_AGENT = "image-classifier-proxy"


class RuntimeClients:
    """The container's `sagemaker-runtime` clients, one per read timeout.

    botocore fixes a client's read timeout when it is created, and each attempt must fit in
    what is left of the Lambda's time. So the clients are cached by whole seconds of read
    timeout: in practice one (the configured timeout), plus a shorter one now and then for a
    late retry, each created once per container from a single botocore session (about 2 ms
    after the first). `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME` is honoured by botocore itself.
    """

    def __init__(self, read_timeout: float, connect_timeout: float) -> None:
        self._read_timeout = read_timeout
        self._connect_timeout = connect_timeout
        self._session: Any = None
        self._clients: dict[float, Any] = {}

    def __call__(self, read_timeout: float) -> Any:
        """A client whose read timeout is at most `read_timeout` (and at least 1 s)."""
        key = min(self._read_timeout, max(1.0, float(math.floor(read_timeout))))
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = self._create(key)
        return client

    def warm(self) -> None:
        """Create the usual client now, during the Lambda's init phase."""
        self(self._read_timeout)

    @property
    def session(self) -> Any:
        """The container's botocore session: another client made from it (the API keys'
        SSM client) costs about 20 ms instead of about 80 ms from a new session."""
        if self._session is None:
            self._session = botocore.session.get_session()
        return self._session

    def _create(self, read_timeout: float) -> Any:
        return self.session.create_client(
            "sagemaker-runtime",
            config=Config(
                connect_timeout=self._connect_timeout,
                read_timeout=read_timeout,
                # The proxy's own retries are budgeted; botocore's would not be.
                retries={"total_max_attempts": 1},
                tcp_keepalive=True,
                user_agent_extra=_USER_AGENT,
            ),
        )


@dataclass(frozen=True)
class Backoff:
    """Equal jitter: half of each step is fixed, half random.

    The fixed half gives a cold-starting endpoint real time to come up; the random half keeps
    a burst of throttled requests from retrying in lockstep.
    """

    base: float = 0.25
    cap: float = 4.0

    def delay(self, retry: int, jitter: Callable[[], float]) -> float:
        """Seconds to wait before retry number `retry` (0 for the first retry)."""
        step = min(self.cap, self.base * 2**retry)
        return step / 2 + jitter() * step / 2


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

    def invoke(self, body: bytes, content_type: str, deadline: float) -> bytes:
        """The model's answer, or an `ApiError`, before `deadline` (a `clock` value).

        The request's log line gets `attempts` and `failures` (each failed attempt's reason),
        and for a final failure `detail` (what SageMaker said).
        """
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
            append_keys(attempts=attempt, failures=failures)
            return payload
        if failure is None:
            failure = _no_time()
        append_keys(attempts=attempt, failures=failures, detail=failure.detail)
        raise failure.error

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


@dataclass(frozen=True)
class Failure:
    """One failed attempt: `reason` is for logs, `error` is the answer if it is the last."""

    reason: str
    retryable: bool
    error: ApiError
    detail: str


def classify(exc: BotoCoreError | ClientError) -> Failure:
    """What a failed call means: whether to retry it, and what the client gets if it is the last."""
    if isinstance(exc, ClientError):
        return _classify_client_error(exc)
    if isinstance(exc, ReadTimeoutError):
        return Failure(
            "timeout",
            True,
            ApiError(
                504,
                "model_timeout",
                "The model did not answer in time; try again in a few seconds.",
                retry_after=RETRY_AFTER_STARTING,
            ),
            str(exc),
        )
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return Failure("connection", True, _unavailable(), str(exc))
    return Failure("client", False, _upstream_error(), f"{type(exc).__name__}: {exc}")


def _classify_client_error(exc: ClientError) -> Failure:
    response = exc.response
    error = response.get("Error") or {}
    code = str(error.get("Code", ""))
    detail = f"{code}: {error.get('Message', '')}"
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code == "ModelError":
        return _model_error(response, detail)
    if code == "ModelNotReadyException":
        return Failure(
            "model_not_ready",
            True,
            ApiError(
                503,
                "model_not_ready",
                "The model is starting up; try again in a few seconds.",
                retry_after=RETRY_AFTER_STARTING,
            ),
            detail,
        )
    if code in _THROTTLING_CODES or status == 429:
        return Failure(
            "throttled",
            True,
            ApiError(
                503,
                "model_busy",
                "The model is busy with other requests; try again shortly.",
                retry_after=RETRY_AFTER_BUSY,
            ),
            detail,
        )
    if code == "ServiceUnavailable" or status == 503:
        return Failure("service_unavailable", True, _unavailable(), detail)
    if code == "ValidationError" and "not found" in str(error.get("Message", "")).lower():
        return Failure(
            "endpoint_not_found",
            False,
            ApiError(
                503,
                "endpoint_not_found",
                "The prediction service is not deployed right now; try again later.",
                retry_after=RETRY_AFTER_NOT_DEPLOYED,
            ),
            detail,
        )
    return Failure("upstream_error", False, _upstream_error(), detail)


def _model_error(response: dict[str, Any], detail: str) -> Failure:
    """The model handler's own answer: its 4xx passes through, anything else is a 502."""
    status = _int(response.get("OriginalStatusCode"))
    original = response.get("OriginalMessage")
    detail = f"{detail} (status {status}, body {str(original)[:_MAX_MESSAGE]!r})"
    if status is not None and 400 <= status < 500:
        code, message = _handler_error(original)
        return Failure(
            "model_rejected",
            False,
            ApiError(
                status,
                code or "invalid_image",
                message or "The model could not use this image.",
            ),
            detail,
        )
    return Failure(
        "model_error",
        False,
        ApiError(502, "model_error", "The model failed while processing the image."),
        detail,
    )


def _handler_error(original: Any) -> tuple[str | None, str | None]:
    """The handler's `{"error": {"code", "message"}}`, if `OriginalMessage` starts with one.

    The inference toolkit appends a newline and a traceback after the handler's message, so
    only the leading JSON value is read and whatever follows it is ignored.
    """
    if isinstance(original, bytes):
        original = original.decode("utf-8", "replace")
    if not isinstance(original, str):
        return None, None
    try:
        body, _end = _DECODER.raw_decode(original.lstrip())
    except ValueError:
        return None, None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None
    code = error.get("code")
    message = error.get("message")
    code = code if isinstance(code, str) and _SNAKE_CASE.match(code) else None
    message = message.strip()[:_MAX_MESSAGE] if isinstance(message, str) else None
    return code, message or None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _unavailable() -> ApiError:
    return ApiError(
        503,
        "model_unavailable",
        "The model is temporarily unavailable; try again in a few seconds.",
        retry_after=RETRY_AFTER_UNAVAILABLE,
    )


def _upstream_error() -> ApiError:
    return ApiError(502, "upstream_error", "The prediction service failed; try again later.")


def _no_time() -> Failure:
    return Failure(
        "no_time",
        False,
        ApiError(
            503,
            "model_unavailable",
            "The request ran out of time before the model could be called; try again.",
            retry_after=1,
        ),
        "deadline reached before a call",
    )
