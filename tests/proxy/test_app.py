"""The response contract of every request: shapes, headers, logs, and no crash ever."""

import base64
import random

import pytest

from proxy.app import HTTP_API_BUDGET_MS, RESPONSE_RESERVE
from tests.proxy.photos import encoded
from tests.proxy.support import (
    METRICS_EPOCH,
    SERVICE,
    FakeClock,
    LambdaContext,
    LogLines,
    ScriptedRuntime,
    body_of,
    build_proxy,
    client_error,
    http_event,
    json_event,
    prediction_payload,
)

EMF_MEMBERS = {
    "_aws",
    "Service",
    "Variant",
    "Requests",
    "Errors",
    "Latency",
    "NeedsReview",
    "FeedbackCorrect",
    "FeedbackWrong",
}


def emf(names):
    """The `_aws` member and the service dimension of a request's metrics `names`."""
    units = {"Latency": "Milliseconds"}
    return {
        "_aws": {
            "Timestamp": int(METRICS_EPOCH * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "ImageClassifier",
                    "Dimensions": [["Service", "Variant"]],
                    "Metrics": [{"Name": n, "Unit": units.get(n, "Count")} for n in names],
                }
            ],
        },
        "Service": SERVICE,
    }


class Harness:
    """A proxy on a fake clock and a scripted endpoint that answers with a prediction."""

    def __init__(self):
        self.clock = FakeClock()
        self.runtime = ScriptedRuntime(self.clock, [prediction_payload()])
        self.logs = LogLines()

    def proxy(self, **config):
        return build_proxy(self.runtime, self.clock, self.clock.sleep, **config)

    def call(self, event, **config):
        return self.proxy(**config).handle(event, LambdaContext(self.clock))

    def records(self):
        return self.logs.records()


@pytest.fixture
def harness():
    return Harness()


def test_200_body(harness):
    response = harness.call(http_event(encoded("chelsea")))
    assert response["statusCode"] == 200
    body = body_of(response)
    assert set(body) == {"predictions", "model", "needs_review", "request_id"}
    assert body["predictions"][0] == {"label": "tabby", "index": 281, "probability": 0.71}
    assert body["model"] == {
        "name": "mobilenet_v2",
        "version": "3f9a1c2b",
        "weights": "IMAGENET1K_V2",
        "variant": "main",
    }
    assert body["request_id"] == "JKJaXmPLvHcESHA=" == response["headers"]["x-request-id"]
    (call,) = harness.runtime.calls
    assert call == {
        "EndpointName": "image-classifier-dev",
        "Body": encoded("chelsea"),
        "ContentType": "image/jpeg",
        "Accept": "application/json",
    }


@pytest.mark.parametrize(
    ("top1", "threshold", "needs_review"),
    [(0.95, 0.93, False), (0.93, 0.93, False), (0.929, 0.93, True), (0.6, 0.5, False)],
)
def test_needs_review_below_the_threshold(harness, top1, threshold, needs_review):
    harness.runtime.script = [prediction_payload(top1)]
    response = harness.call(http_event(encoded("chelsea")), review_threshold=threshold)
    assert body_of(response)["needs_review"] is needs_review


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS", "HEAD"])
def test_other_methods_get_405_with_allow(harness, method):
    response = harness.call(http_event(None, method=method))
    assert response["statusCode"] == 405
    assert response["headers"]["allow"] == "POST"
    assert body_of(response)["error"]["code"] == "method_not_allowed"
    assert harness.runtime.calls == []


def every_kind_of_response():
    return [
        http_event(encoded("chelsea")),
        json_event({"image": base64.b64encode(encoded("coffee", "PNG")).decode()}),
        http_event(None, method="GET"),
        http_event(b"GIF89a" + bytes(4 * 1024 * 1024)),
        http_event("plain text", "text/plain"),
        http_event(b"\x00\x00\x00\x18ftypheic"),
        http_event(b"not an image"),
        http_event("!!!", base64_encoded=True),
        {"not": "an event"},
    ]


@pytest.mark.parametrize("event", every_kind_of_response())
def test_every_response_has_the_contract_headers_and_no_cors(harness, event):
    response = harness.call(event)
    headers = response["headers"]
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"]
    assert not [name for name in headers if name.lower().startswith("access-control-")]
    assert all(name == name.lower() for name in headers)
    body = body_of(response)
    assert body["request_id"] == headers["x-request-id"]
    if response["statusCode"] != 200:
        assert set(body) == {"error", "request_id"}
        # A 413 also says its limit (docs/api.md#errors).
        limit = {"limit_bytes"} if response["statusCode"] == 413 else set()
        assert set(body["error"]) == {"code", "message"} | limit
        assert 400 <= response["statusCode"] < 500


def test_validation_failures_never_reach_sagemaker(harness):
    for event in every_kind_of_response()[2:]:
        harness.call(event)
    assert harness.runtime.calls == []


def test_request_id_falls_back_to_lambdas(harness):
    event = http_event(encoded("chelsea"))
    del event["requestContext"]["requestId"]
    response = harness.call(event)
    assert response["headers"]["x-request-id"] == "c6af9ac6-7b61-11e6-9a41-93e812345678"


def test_a_bug_is_a_500_without_a_stack_trace(harness):
    harness.runtime.script = [ZeroDivisionError("secret internal detail")]
    response = harness.call(http_event(encoded("chelsea")))
    assert response["statusCode"] == 500
    assert body_of(response)["error"]["code"] == "internal_error"
    assert "secret" not in response["body"]
    assert "Traceback" not in response["body"]
    (record,) = harness.records()
    assert "ZeroDivisionError" in record["traceback"]
    assert record["level"] == "ERROR"
    assert (record["status"], record["error"]) == (500, "internal_error")
    assert record["detail"] == "ZeroDivisionError: secret internal detail"
    assert body_of(response)["variant"] == "main"
    assert set(record) - EMF_MEMBERS == {
        "level",
        "event",
        "request_id",
        "lambda_request_id",
        "route",
        "via",
        "viewer_ip",
        "variant",
        "endpoint",
        "access",
        "method",
        "form",
        "media_type",
        "bytes",
        "validation_ms",
        "sagemaker_ms",
        "error",
        "detail",
        "traceback",
        "status",
        "total_ms",
    }


def test_one_json_log_line_per_request_without_image_bytes(harness):
    image = encoded("astronaut")
    harness.call(http_event(image))
    harness.call(http_event(b"nope"))
    text = harness.logs.text
    first, second = harness.records()
    assert base64.b64encode(image)[:40].decode() not in text
    assert first == {
        "level": "INFO",
        "event": "request",
        "request_id": "JKJaXmPLvHcESHA=",
        "lambda_request_id": "c6af9ac6-7b61-11e6-9a41-93e812345678",
        "via": "execute-api",
        "viewer_ip": "203.0.113.7",
        "route": "predict",
        "access": "open",
        "method": "POST",
        "form": "raw",
        "media_type": "image/jpeg",
        "bytes": len(image),
        "validation_ms": 0.0,
        "variant": "main",
        "endpoint": "image-classifier-dev",
        "sagemaker_ms": 50.0,
        "attempts": 1,
        "failures": [],
        "model_version": "3f9a1c2b",
        "needs_review": True,
        "status": 200,
        "total_ms": 50.0,
        **emf(["Requests", "Errors", "Latency", "NeedsReview"]),
        "Variant": "main",
        "Requests": 1,
        "Errors": 0,
        "Latency": 50.0,
        "NeedsReview": 1,
    }
    assert (second["status"], second["error"]) == (422, "not_an_image")
    assert not set(second) & EMF_MEMBERS, "refused before a variant: no metrics"


def test_a_failed_invocation_logs_its_attempts_and_what_sagemaker_said(harness):
    harness.runtime.script = [client_error("ModelNotReadyException", 429, "Not ready yet.")]
    harness.call(http_event(encoded("chelsea")), max_attempts=2)
    (record,) = harness.records()
    assert record == {
        "level": "WARNING",
        "event": "request",
        "request_id": "JKJaXmPLvHcESHA=",
        "lambda_request_id": "c6af9ac6-7b61-11e6-9a41-93e812345678",
        "via": "execute-api",
        "viewer_ip": "203.0.113.7",
        "route": "predict",
        "access": "open",
        "method": "POST",
        "form": "raw",
        "media_type": "image/jpeg",
        "bytes": len(encoded("chelsea")),
        "validation_ms": 0.0,
        "variant": "main",
        "endpoint": "image-classifier-dev",
        "sagemaker_ms": 287.5,
        "attempts": 2,
        "failures": ["model_not_ready", "model_not_ready"],
        "detail": "ModelNotReadyException: Not ready yet.",
        "error": "model_not_ready",
        "status": 503,
        "total_ms": 287.5,
        **emf(["Requests", "Errors", "Latency"]),
        "Variant": "main",
        "Requests": 1,
        "Errors": 1,
        "Latency": 287.5,
    }


def test_a_client_mistake_logs_what_was_known_before_it(harness):
    harness.call(http_event("plain text", "text/plain"))
    (record,) = harness.records()
    assert record == {
        "level": "INFO",
        "event": "request",
        "request_id": "JKJaXmPLvHcESHA=",
        "lambda_request_id": "c6af9ac6-7b61-11e6-9a41-93e812345678",
        "via": "execute-api",
        "viewer_ip": "203.0.113.7",
        "route": "predict",
        "access": "open",
        "method": "POST",
        "error": "unsupported_media_type",
        "status": 415,
        "total_ms": 0.0,
    }


def test_log_level_filters_routine_lines_but_never_their_metrics(harness):
    harness.logs = LogLines("WARNING")
    harness.call(http_event(encoded("chelsea")))
    harness.call(http_event(b"nope"))
    (metrics,) = harness.records()
    assert metrics == {
        "level": "INFO",
        "event": "metrics",
        "request_id": "JKJaXmPLvHcESHA=",
        "route": "predict",
        **emf(["Requests", "Errors", "Latency", "NeedsReview"]),
        "Variant": "main",
        "Requests": 1,
        "Errors": 0,
        "Latency": 50.0,
        "NeedsReview": 1,
    }
    harness.runtime.script = [client_error("ThrottlingException", 400)]
    harness.call(http_event(encoded("chelsea")))
    assert [(r["level"], r.get("status")) for r in harness.records()] == [
        ("INFO", None),
        ("WARNING", 503),
    ]


def test_without_a_lambda_context_the_http_api_limit_is_the_budget(harness):
    harness.runtime.script = [client_error("ModelNotReadyException", 429)]
    response = harness.proxy().handle(http_event(encoded("chelsea")), None)
    assert response["statusCode"] == 503
    assert harness.clock.now - 1000.0 <= HTTP_API_BUDGET_MS / 1000 - RESPONSE_RESERVE


def test_a_lambda_timeout_above_the_http_apis_is_not_planned_for(harness):
    harness.runtime.script = [client_error("ModelNotReadyException", 429)]
    context = LambdaContext(harness.clock, timeout_ms=900_000)
    response = harness.proxy(max_attempts=10).handle(http_event(encoded("chelsea")), context)
    assert response["statusCode"] == 503
    assert harness.clock.now - 1000.0 <= HTTP_API_BUDGET_MS / 1000 - RESPONSE_RESERVE


JUNK = [None, "", "x", 0, 1.5, True, [], {}, b"\xff\xd8\xff", "%%", {"a": None}, ["POST"]]


@pytest.mark.parametrize("seed", range(300))
def test_no_event_makes_it_crash(harness, seed):
    rng = random.Random(seed)
    event = http_event(encoded("chelsea")[: rng.randint(0, 3000)], rng.choice(["image/png", None]))
    for _ in range(rng.randint(1, 4)):
        path = rng.choice(
            [
                ("body",),
                ("headers",),
                ("isBase64Encoded",),
                ("requestContext",),
                ("requestContext", "http"),
                ("requestContext", "http", "method"),
                ("requestContext", "requestId"),
                ("headers", "content-type"),
            ]
        )
        target = event
        for key in path[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target[path[-1]] = rng.choice(JUNK)
    response = harness.call(event)
    assert response["statusCode"] in (200, 400, 405, 413, 415, 422), response
    assert body_of(response)["request_id"]
