"""`PredictProxy`: one `POST /api/predict` event in, one HTTP API 2.0 response out, always.

The access check (`proxy.access`: the origin header or an API key) runs first, then
validation, both before SageMaker is called; every failure becomes a JSON error with a stable
code; an unexpected exception becomes a 500 without internals (the traceback goes to the
log, never to the client). One JSON log line per request, `"event": "request"`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxy.access import Access
from proxy.config import ProxyConfig
from proxy.logs import append_keys, log, request_context
from proxy.request import parse_upload, request_method
from proxy.responses import (
    ApiError,
    error_response,
    internal_error,
    json_response,
    prediction_body,
)
from proxy.sagemaker import EndpointInvoker

# The HTTP API answers the client itself after 30 s, whatever the Lambda timeout: a request
# never plans beyond this (less a margin for API Gateway's own work), and it is the budget
# when no Lambda context says how much time is left.
HTTP_API_BUDGET_MS = 29_000
# Kept back from the deadline to build the response and write the log line.
RESPONSE_RESERVE = 0.2


@dataclass
class PredictProxy:
    config: ProxyConfig
    invoker: EndpointInvoker
    access: Access = field(default_factory=Access)

    @classmethod
    def create(
        cls,
        config: ProxyConfig,
        clients: Callable[[float], Any],
        *,
        access: Access | None = None,
        **invoker_options: Any,
    ) -> PredictProxy:
        """The proxy `config` describes; `clients(read_timeout)` returns a runtime client.

        `access` is the config's unless given; its API key cache runs on the invoker's clock.
        """
        invoker = EndpointInvoker(
            clients=clients,
            endpoint_name=config.endpoint_name,
            max_attempts=config.max_attempts,
            read_timeout=config.read_timeout,
            connect_timeout=config.connect_timeout,
            **invoker_options,
        )
        if access is None:
            access = Access.from_config(config, invoker.clock)
        return cls(config, invoker, access)

    def handle(self, event: Any, context: Any) -> dict[str, Any]:
        clock = self.invoker.clock
        start = clock()
        request_id = _request_id(event, context)
        with request_context(
            request_id=request_id,
            lambda_request_id=getattr(context, "aws_request_id", None),
            endpoint=self.config.endpoint_name,
        ):
            bug: Exception | None = None
            try:
                response = self._predict(event, context, start, request_id)
            except ApiError as error:
                response = error_response(error, request_id)
                append_keys(error=error.code)
            except Exception as exc:
                bug = exc
                failure = internal_error()
                response = error_response(failure, request_id)
                append_keys(error=failure.code, detail=f"{type(exc).__name__}: {exc}")
            status = response["statusCode"]
            append_keys(status=status, total_ms=_ms(clock() - start))
            log.log(_level(status), "request", exc_info=bug)
        return response

    def _predict(self, event: Any, context: Any, start: float, request_id: str) -> dict[str, Any]:
        clock = self.invoker.clock
        # Before anything else: a caller who may not use the API learns nothing more.
        self.access.admit(event)
        method = request_method(event)
        append_keys(method=method)
        if method != "POST":
            raise ApiError(
                405, "method_not_allowed", f"{method} is not allowed here; use POST{_path(event)}."
            )
        upload = parse_upload(event, self.config.max_image_bytes)
        validated = clock()
        append_keys(
            form=upload.form,
            media_type=upload.media_type,
            bytes=len(upload.data),
            validation_ms=_ms(validated - start),
        )
        deadline = start + _remaining_seconds(context) - RESPONSE_RESERVE
        try:
            payload = self.invoker.invoke(upload.data, upload.media_type, deadline)
        finally:
            append_keys(sagemaker_ms=_ms(clock() - validated))
        body = prediction_body(payload, self.config.review_threshold)
        body["request_id"] = request_id
        append_keys(model_version=body["model"].get("version"), needs_review=body["needs_review"])
        return json_response(200, body, request_id)


def _request_id(event: Any, context: Any) -> str:
    """API Gateway's request id (it is in the access logs too), else Lambda's, else new."""
    try:
        request_id = event["requestContext"]["requestId"]
    except (KeyError, TypeError):
        request_id = None
    if isinstance(request_id, str) and request_id:
        return request_id
    lambda_id = getattr(context, "aws_request_id", None)
    if isinstance(lambda_id, str) and lambda_id:
        return lambda_id
    return uuid.uuid4().hex


def _path(event: Any) -> str:
    """A space and the request's own path, or nothing: the proxy serves whatever route the
    HTTP API sends it (`/api/predict`, and `/predict` where a stack still routes it)."""
    try:
        path = event["requestContext"]["http"]["path"]
    except (KeyError, TypeError):
        return ""
    return f" {path}" if isinstance(path, str) and path.startswith("/") and len(path) < 200 else ""


def _remaining_seconds(context: Any) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    milliseconds = remaining() if callable(remaining) else HTTP_API_BUDGET_MS
    return min(milliseconds, HTTP_API_BUDGET_MS) / 1000


def _level(status: int) -> int:
    """ERROR for our faults and the model's, WARNING for capacity, INFO for clients' mistakes."""
    if status in (503, 504):
        return logging.WARNING
    return logging.ERROR if status >= 500 else logging.INFO


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
