"""Every answer the proxy gives: the error family, the 200 body, and the HTTP API 2.0 response.

A failure anywhere in a request is raised as an `ApiError` that already knows the status, the
stable code and the sentence the client gets; `PredictProxy` turns it into the JSON error.

Responses never carry CORS headers: CORS belongs to the HTTP API's own configuration (it
answers preflight and adds the headers), and a Lambda that added them as well would send
duplicates, which browsers reject.
"""

from __future__ import annotations

import json
from typing import Any

_ALLOWED_METHODS = "POST"


class ApiError(Exception):
    """A failure that already knows the HTTP answer: status, code, message, extra headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
        limit_bytes: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.headers = headers
        self.limit_bytes = limit_bytes
        """A 413's limit: the body says it, so a client can word its message from it."""
        self.variant: str | None = None
        """The model variant that failed, when the failure is one's: the body names it."""


def internal_error() -> ApiError:
    """What a bug in the proxy looks like to the client: no internals, the log has them."""
    return ApiError(500, "internal_error", "Something went wrong on our side; try again.")


def prediction_body(payload: bytes, review_threshold: float) -> dict[str, Any]:
    """The 200 body from the model's JSON, or a 502 if the model answered nonsense.

    `needs_review` follows the human-in-the-loop design of the reference project: a
    prediction whose top-1 probability is below the threshold should go to a person.
    """
    try:
        document = json.loads(payload)
    except ValueError:
        raise _bad_model_response() from None
    if not isinstance(document, dict):
        raise _bad_model_response()
    predictions = document.get("predictions")
    model = document.get("model")
    if not isinstance(predictions, list) or not isinstance(model, dict):
        raise _bad_model_response()
    probabilities = [
        p["probability"]
        for p in predictions
        if isinstance(p, dict)
        and isinstance(p.get("probability"), int | float)
        and not isinstance(p["probability"], bool)
    ]
    if len(probabilities) != len(predictions):
        raise _bad_model_response()
    top1 = max(probabilities, default=0.0)
    return {
        "predictions": predictions,
        "model": model,
        "needs_review": top1 < review_threshold,
    }


def _bad_model_response() -> ApiError:
    return ApiError(502, "bad_model_response", "The model returned an answer we cannot read.")


def json_response(
    status: int, body: dict[str, Any], request_id: str, extra_headers: dict[str, str] | None = None
) -> dict[str, Any]:
    headers = {
        "content-type": "application/json",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "x-request-id": request_id,
    }
    if extra_headers:
        headers.update(extra_headers)
    return {
        "statusCode": status,
        "headers": headers,
        "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        "isBase64Encoded": False,
    }


def error_response(error: ApiError, request_id: str) -> dict[str, Any]:
    extra: dict[str, str] = dict(error.headers or {})
    if error.retry_after is not None:
        extra["retry-after"] = str(error.retry_after)
    if error.status == 405:
        extra.setdefault("allow", _ALLOWED_METHODS)
    body: dict[str, Any] = {
        "error": {"code": error.code, "message": error.message},
        "request_id": request_id,
    }
    if error.limit_bytes is not None:
        body["error"]["limit_bytes"] = error.limit_bytes
    if error.variant is not None:
        body["variant"] = error.variant
    return json_response(error.status, body, request_id, extra)
