"""What a failed `InvokeEndpoint` call means: retry it, or answer the client with what.

The client never sees SageMaker's own messages (they name accounts, endpoints and log
streams); it gets a stable code and a sentence, and the details go to the log.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from proxy.errors import ApiError

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


@dataclass(frozen=True)
class Failure:
    """One failed attempt: `reason` is for logs, `error` is the answer if it is the last."""

    reason: str
    retryable: bool
    error: ApiError
    detail: str


def classify(exc: BotoCoreError | ClientError) -> Failure:
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
