"""The local HTTP API around a stand-in handler: routing, limits, Lambda context, no CORS."""

import asyncio
import json
import time

import pytest
from starlette.testclient import TestClient

from hosting.origin import PREDICT_PATH
from local.api import FEEDBACK_PATH, LABELS_PATH, create_api_app
from local.lambda_context import TIMEOUT_SECONDS
from tests.event_loop import run_apart

SITE = "http://127.0.0.1:8000"
FOREIGN = "https://evil.example"


class RecordingHandler:
    def __init__(self, result=None, error: Exception | None = None):
        self.result = result or {
            "statusCode": 200,
            "headers": {"content-type": "application/json", "x-request-id": "r1"},
            "body": json.dumps({"predictions": []}),
        }
        self.error = error
        self.calls = []

    def __call__(self, event, context):
        self.calls.append((event, context, context.get_remaining_time_in_millis()))
        if self.error:
            raise self.error
        return self.result


@pytest.fixture
def handler():
    return RecordingHandler()


@pytest.fixture
def client(handler):
    return TestClient(create_api_app(handler, max_payload_bytes=1000))


def test_the_predict_path_is_the_sites_api_path():
    assert PREDICT_PATH == "/api/predict"


def test_a_request_reaches_the_handler_as_a_payload_2_event(client, handler):
    response = client.post(
        "/api/predict?x=1",
        content=b"\xff\xd8\xff",
        headers={"origin": SITE, "content-type": "image/jpeg"},
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "r1"
    assert response.headers["apigw-requestid"]
    event, context, remaining = handler.calls[0]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["rawPath"] == "/api/predict"
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["headers"]["origin"] == SITE
    assert context.aws_request_id
    assert context.function_name
    assert 0 < remaining <= TIMEOUT_SECONDS * 1000


def test_no_cors_headers_are_added_for_any_origin(client, handler):
    """The stack's HTTP API has no CORS configuration: the site is on the same origin."""
    for origin in (SITE, FOREIGN):
        response = client.post(PREDICT_PATH, content=b"x", headers={"origin": origin})
        assert response.status_code == 200
        assert not [name for name in response.headers if name.startswith("access-control-")]
    assert len(handler.calls) == 2


def test_a_preflight_is_an_unrouted_404_that_never_reaches_the_handler(client, handler):
    response = client.options(
        PREDICT_PATH,
        headers={
            "origin": FOREIGN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert response.status_code == 404
    assert not [name for name in response.headers if name.startswith("access-control-")]
    assert handler.calls == []


def test_the_backends_headers_pass_as_an_http_api_without_cors_passes_them(handler, client):
    handler.result = {
        "statusCode": 200,
        "headers": {"access-control-allow-origin": "*", "content-length": "99"},
        "body": "{}",
    }
    response = client.post(PREDICT_PATH, content=b"x", headers={"origin": FOREIGN})
    # Passed on, so a proxy that ever sent one would show here as in the cloud.
    assert response.headers.get_list("access-control-allow-origin") == ["*"]
    assert response.headers["content-length"] == "2", "framing is the gateway's own"


@pytest.mark.parametrize("method", ["POST", "GET", "PUT", "PATCH", "DELETE"])
def test_routed_methods_reach_the_handler_with_their_route_key(client, handler, method):
    client.request(method, PREDICT_PATH)
    event = handler.calls[-1][0]
    assert event["requestContext"]["http"]["method"] == method
    assert event["routeKey"] == f"{method} /api/predict"


@pytest.mark.parametrize("path", [FEEDBACK_PATH, LABELS_PATH])
@pytest.mark.parametrize("method", ["POST", "GET", "PUT", "PATCH", "DELETE"])
def test_feedback_and_labels_are_routed_like_predict(client, handler, method, path):
    client.request(method, f"{path}?version=3f9a1c2b4d5e")
    event = handler.calls[-1][0]
    assert event["routeKey"] == f"{method} {path}"
    assert event["rawPath"] == path
    assert event["queryStringParameters"] == {"version": "3f9a1c2b4d5e"}


def test_the_three_paths_are_under_the_sites_api_path():
    assert (FEEDBACK_PATH, LABELS_PATH) == ("/api/feedback", "/api/labels")


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
def test_unrouted_methods_are_a_404_as_on_the_http_api(client, handler, method):
    response = client.request(method, PREDICT_PATH)
    assert response.status_code == 404
    assert handler.calls == []


@pytest.mark.parametrize("path", ["/predict", "/api/classify", "/elsewhere"])
def test_other_paths_are_a_json_404(client, handler, path):
    response = client.post(path, content=b"x")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "/api/predict" in response.json()["error"]["message"]
    assert handler.calls == []


def test_bodies_above_the_gateway_limit_are_refused_before_the_handler(client, handler):
    response = client.post(PREDICT_PATH, content=b"x" * 1001)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert handler.calls == []


def test_a_raising_handler_is_a_json_500_without_internals():
    app = create_api_app(RecordingHandler(error=RuntimeError("secret detail")))
    response = TestClient(app).post(PREDICT_PATH, content=b"x")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "The service failed to process the request."}
    }
    assert "secret" not in response.text


def test_time_epoch_is_when_the_request_arrived_not_when_its_body_had(handler):
    # API Gateway stamps `timeEpoch` on receipt; the proxy's deadline starts there.
    app = create_api_app(handler)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PREDICT_PATH,
        "raw_path": PREDICT_PATH.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8001"), (b"content-type", b"image/jpeg")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8001),
    }
    slow_body = 0.5

    async def scenario() -> float:
        parts = [{"type": "http.request", "body": b"\xff\xd8\xff", "more_body": False}]

        async def receive():
            if parts:
                await asyncio.sleep(slow_body)
                return parts.pop()
            return {"type": "http.disconnect"}

        async def send(message):
            pass

        arrived = time.time()
        await app(scope, receive, send)
        return arrived

    arrived_ms = run_apart(scenario()) * 1000
    ((event, _, _),) = handler.calls
    received_ms = event["requestContext"]["timeEpoch"]
    assert arrived_ms - 5 <= received_ms < arrived_ms + slow_body * 1000 / 2
