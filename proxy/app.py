"""`PredictProxy`: one HTTP API event in, one HTTP API 2.0 response out, always.

Three routes share the function (the last segment of the path decides):

- `POST /api/predict`: the image to one model variant (`proxy.variants`: by weight, the
  same variant for the same `x-client-id`), the answer recorded in the prediction store
  when there is one (a failed write is logged, never the client's problem).
- `POST /api/feedback`: a verdict on a recorded prediction (`proxy.feedback`).
- `GET /api/labels?version=...`: a model version's labels, for the page's picker.

The access check (`proxy.access`: the origin header or an API key) runs first, then
validation, both before SageMaker or the store is called; every failure becomes a JSON error
with a stable code; an unexpected exception becomes a 500 without internals (the traceback
goes to the log, never to the client). One JSON log line per request, `"event": "request"`,
with the variant's CloudWatch metrics in it (`proxy.metrics`).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proxy.access import Access
from proxy.config import ProxyConfig
from proxy.feedback import LABELS_CACHE_CONTROL, disabled, list_labels, take_feedback
from proxy.labels import ModelLabels
from proxy.logs import append_keys, log, request_context, write_past_level
from proxy.metrics import EmfMetrics
from proxy.predictions import Prediction, PredictionStore
from proxy.request import parse_upload, request_method
from proxy.responses import (
    ApiError,
    error_response,
    internal_error,
    json_response,
    prediction_body,
)
from proxy.sagemaker import EndpointInvoker
from proxy.variants import Variants, client_id_from
from shared.api import DIRECT_STAGE, FEEDBACK, LABELS, PREDICT, VIA_CLOUDFRONT, VIA_EXECUTE_API

# The HTTP API answers the client itself 30 s after it received the request, whatever the
# Lambda timeout, and those 30 s also cover a cold start's init. So a request plans from
# API Gateway's receipt (`requestContext.timeEpoch`), never beyond this (less a margin for
# API Gateway's own work), and it is the budget when no Lambda context says how much time
# is left.
HTTP_API_TIMEOUT_MS = 30_000
HTTP_API_MARGIN_MS = 1_000
HTTP_API_BUDGET_MS = HTTP_API_TIMEOUT_MS - HTTP_API_MARGIN_MS
# A `timeEpoch` further than this from the Lambda's clock is not this request's receipt
# (no invocation lasts longer than Lambda's 15 minutes): the handler's start is used instead.
MAX_RECEIPT_AGE_S = 900.0
# Kept back from the deadline to build the response and write the log line.
RESPONSE_RESERVE = 0.2


@dataclass
class _Outcome:
    """What a request learned that its metrics need."""

    variant: str | None = None
    needs_review: bool | None = None
    verdict: str | None = None
    previous_verdict: str | None = None


@dataclass
class PredictProxy:
    config: ProxyConfig
    invokers: dict[str, EndpointInvoker]
    """One per variant, by name, sharing the container's clients."""
    access: Access = field(default_factory=Access)
    store: PredictionStore | None = None
    """Where predictions are recorded; None: not recorded, and no feedback taken."""
    labels: ModelLabels | None = None
    metrics: EmfMetrics | None = None
    rng: random.Random | None = None
    """Draws the variant of a request without a client id (the module's own by default)."""
    wall_clock: Callable[[], float] = time.time
    """Unix seconds, to tell how long ago API Gateway received the request."""

    @classmethod
    def create(
        cls,
        config: ProxyConfig,
        clients: Callable[[float], Any],
        *,
        access: Access | None = None,
        store: PredictionStore | None = None,
        labels: ModelLabels | None = None,
        metrics: EmfMetrics | None = None,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
        **invoker_options: Any,
    ) -> PredictProxy:
        """The proxy `config` describes; `clients(read_timeout)` returns a runtime client.

        `access` is the config's unless given; its API key cache runs on the invoker's clock.
        `labels` are `MODEL_LABELS_DIR`'s unless given; `metrics` are the config's service's.
        """
        invokers = {
            variant.name: EndpointInvoker(
                clients=clients,
                endpoint_name=variant.endpoint,
                max_attempts=config.max_attempts,
                read_timeout=config.read_timeout,
                connect_timeout=config.connect_timeout,
                **invoker_options,
            )
            for variant in config.variant_set.variants
        }
        first = next(iter(invokers.values()))
        if access is None:
            access = Access.from_config(config, first.clock)
        if labels is None and config.model_labels_dir is not None:
            labels = ModelLabels(config.model_labels_dir)
        if metrics is None:
            metrics = EmfMetrics(config.metrics_service)
        return cls(config, invokers, access, store, labels, metrics, rng, wall_clock)

    @property
    def variants(self) -> Variants:
        return self.config.variant_set

    @property
    def invoker(self) -> EndpointInvoker:
        """The first variant's invoker (all share the clients, the clock and the options)."""
        return next(iter(self.invokers.values()))

    def handle(self, event: Any, context: Any) -> dict[str, Any]:
        clock = self.invoker.clock
        start = clock()
        waited = _waited_seconds(event, self.wall_clock())
        # When the answer must be out, as a `clock` value.
        end = start + _budget_seconds(context, waited or 0.0)
        request_id = _request_id(event, context)
        route = _route(event)
        outcome = _Outcome()
        with request_context(
            request_id=request_id,
            lambda_request_id=getattr(context, "aws_request_id", None),
            route=route,
            **_via(event),
        ):
            if waited is not None:
                append_keys(before_handler_ms=_ms(waited))
            bug: Exception | None = None
            try:
                # Before anything else: a caller who may not use the API learns nothing more.
                self.access.admit(event)
                if route == FEEDBACK:
                    response = self._feedback(event, request_id, outcome)
                elif route == LABELS:
                    response = self._labels(event, request_id)
                else:
                    response = self._predict(event, start, end, request_id, outcome)
            except ApiError as error:
                response = error_response(error, request_id)
                append_keys(error=error.code)
            except Exception as exc:
                bug = exc
                failure = internal_error()
                failure.variant = outcome.variant if route == PREDICT else None
                response = error_response(failure, request_id)
                append_keys(error=failure.code, detail=f"{type(exc).__name__}: {exc}")
            status = response["statusCode"]
            total_ms = _ms(clock() - start)
            append_keys(status=status, total_ms=total_ms)
            metrics = self._metrics(route, outcome, status, total_ms)
            append_keys(**metrics)
            level = _level(status)
            if log.isEnabledFor(level):
                log.log(level, "request", exc_info=bug)
            elif metrics:
                write_past_level("metrics", metrics)
        return response

    def _predict(
        self, event: Any, start: float, end: float, request_id: str, outcome: _Outcome
    ) -> dict[str, Any]:
        clock = self.invoker.clock
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
        # The client id picks the variant and is forgotten: it is never logged or stored.
        headers = event.get("headers")
        variant = self.variants.pick(
            client_id_from(headers if isinstance(headers, dict) else None), self.rng
        )
        outcome.variant = variant.name
        append_keys(variant=variant.name, endpoint=variant.endpoint)
        deadline = end - RESPONSE_RESERVE
        try:
            try:
                payload = self.invokers[variant.name].invoke(
                    upload.data, upload.media_type, deadline
                )
            finally:
                append_keys(sagemaker_ms=_ms(clock() - validated))
            body = prediction_body(payload, self.config.review_threshold)
        except ApiError as error:
            error.variant = variant.name
            raise
        body["model"] = {**body["model"], "variant": variant.name}
        body["request_id"] = request_id
        outcome.needs_review = body["needs_review"]
        append_keys(model_version=body["model"].get("version"), needs_review=body["needs_review"])
        self._record(body, variant.name, _ms(clock() - start))
        return json_response(200, body, request_id)

    def _record(self, body: dict[str, Any], variant: str, latency_ms: float) -> None:
        """Store the prediction's record; a failure is logged, and the answer goes out."""
        if self.store is None:
            return
        try:
            self.store.put(Prediction.from_response(body, variant=variant, latency_ms=latency_ms))
        except Exception as exc:  # the client gets its answer whatever failed
            append_keys(recorded=False)
            log.warning(
                "prediction_store_error",
                extra={"fields": {"message": f"{type(exc).__name__}: {exc}"}},
            )
            return
        append_keys(recorded=True)

    def _feedback(self, event: Any, request_id: str, outcome: _Outcome) -> dict[str, Any]:
        method = request_method(event)
        append_keys(method=method)
        if self.store is None:
            raise disabled()
        if method != "POST":
            raise ApiError(
                405, "method_not_allowed", f"{method} is not allowed here; use POST{_path(event)}."
            )
        taken = take_feedback(event, self.store, self.labels)
        outcome.variant = taken.prediction.variant
        outcome.verdict = taken.prediction.verdict
        outcome.previous_verdict = taken.previous_verdict
        return json_response(200, {**taken.body(), "request_id": request_id}, request_id)

    def _labels(self, event: Any, request_id: str) -> dict[str, Any]:
        method = request_method(event)
        append_keys(method=method)
        if method != "GET":
            raise ApiError(
                405,
                "method_not_allowed",
                f"{method} is not allowed here; use GET{_path(event)}.",
                headers={"allow": "GET"},
            )
        body = list_labels(event, self.labels)
        return json_response(
            200,
            {**body, "request_id": request_id},
            request_id,
            {"cache-control": LABELS_CACHE_CONTROL},
        )

    def _metrics(
        self, route: str, outcome: _Outcome, status: int, total_ms: float
    ) -> dict[str, Any]:
        """The EMF members of this request's line: a request a variant handled, or a
        verdict on one's prediction; none for a request refused before either."""
        if self.metrics is None or outcome.variant is None:
            return {}
        if route == PREDICT:
            return self.metrics.request(
                outcome.variant,
                status=status,
                latency_ms=total_ms,
                needs_review=outcome.needs_review if status == 200 else None,
            )
        if route == FEEDBACK and outcome.verdict is not None and status == 200:
            return self.metrics.feedback(
                outcome.variant, outcome.verdict, previous=outcome.previous_verdict
            )
        return {}


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


def _route(event: Any) -> str:
    """`feedback` or `labels` when the path's last segment says so, else `predict` (the
    proxy has always answered whatever route the HTTP API sends it with a prediction)."""
    try:
        path = event["requestContext"]["http"]["path"]
    except (KeyError, TypeError):
        return PREDICT
    if not isinstance(path, str):
        return PREDICT
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return last if last in (FEEDBACK, LABELS) else PREDICT


def _path(event: Any) -> str:
    """A space and the request's own path as its caller wrote it, or nothing: the proxy
    serves whatever route the HTTP API sends it (`/api/predict`, and `/predict` where a
    stack still routes it). A named stage's segment, which API Gateway puts before the
    path, is left out: the site stage's name is CloudFront's secret, not the visitor's."""
    try:
        path = event["requestContext"]["http"]["path"]
    except (KeyError, TypeError):
        return ""
    if not isinstance(path, str) or not path.startswith("/") or len(path) >= 200:
        return ""
    stage = _stage(event)
    if stage not in (None, DIRECT_STAGE) and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    return f" {path}"


def _stage(event: Any) -> str | None:
    try:
        stage = event["requestContext"]["stage"]
    except (KeyError, TypeError):
        return None
    return stage if isinstance(stage, str) else None


def _via(event: Any) -> dict[str, str]:
    """`via` for the log: `execute-api` on the direct stage, `cloudfront` on another (the
    site's, whose name is never logged); nothing for an event without a stage."""
    stage = _stage(event)
    if stage is None:
        return {}
    return {"via": VIA_EXECUTE_API if stage == DIRECT_STAGE else VIA_CLOUDFRONT}


def _waited_seconds(event: Any, now: float) -> float | None:
    """How long ago API Gateway received the request (0 when its clock is ahead of ours),
    or None when the event carries no usable `requestContext.timeEpoch` (Unix ms)."""
    try:
        received = event["requestContext"]["timeEpoch"]
    except (KeyError, TypeError):
        return None
    if not isinstance(received, int) or isinstance(received, bool):
        return None
    waited = now - received / 1000
    if abs(waited) > MAX_RECEIPT_AGE_S:
        return None
    return max(waited, 0.0)


def _budget_seconds(context: Any, waited: float) -> float:
    """The seconds from the handler's start until the answer must be out: what is left of
    the HTTP API's budget after `waited`, and never more than the Lambda has left."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    milliseconds = remaining() if callable(remaining) else HTTP_API_BUDGET_MS
    return min(milliseconds / 1000, HTTP_API_BUDGET_MS / 1000 - waited)


def _level(status: int) -> int:
    """ERROR for our faults and the model's, WARNING for capacity, INFO for clients' mistakes."""
    if status in (503, 504):
        return logging.WARNING
    return logging.ERROR if status >= 500 else logging.INFO


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)
