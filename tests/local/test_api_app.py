"""The local HTTP API around a stand-in handler: CORS, routing, limits, Lambda context."""

import json

import pytest
from starlette.testclient import TestClient

from hosting.cors import CorsPolicy
from local.api import create_api_app
from local.lambda_context import TIMEOUT_SECONDS

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
    app = create_api_app(handler, CorsPolicy(allow_origins=(SITE,)), max_payload_bytes=1000)
    return TestClient(app)


def preflight(client, origin):
    return client.options(
        "/predict",
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )


def test_preflight_from_the_site_gets_the_policy(client, handler):
    response = preflight(client, SITE)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SITE
    assert response.headers["access-control-allow-methods"] == "POST"
    assert response.headers["access-control-allow-headers"] == "content-type"
    assert response.headers["access-control-max-age"] == "3600"
    assert handler.calls == [], "API Gateway answers preflight itself"


def test_preflight_from_a_foreign_origin_gets_no_cors_headers(client):
    response = preflight(client, FOREIGN)
    assert response.status_code == 204
    assert not [h for h in response.headers if h.startswith("access-control-")]


def test_an_allowed_request_gets_the_origin_and_exposed_headers(client, handler):
    response = client.post(
        "/predict?x=1",
        content=b"\xff\xd8\xff",
        headers={"origin": SITE, "content-type": "image/jpeg"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SITE
    assert response.headers["access-control-expose-headers"] == "retry-after,x-request-id"
    assert response.headers["x-request-id"] == "r1"
    assert response.headers["apigw-requestid"]
    event, context, remaining = handler.calls[0]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["headers"]["origin"] == SITE
    assert context.aws_request_id
    assert context.function_name
    assert 0 < remaining <= TIMEOUT_SECONDS * 1000


def test_a_foreign_request_still_reaches_the_handler_but_gets_no_cors(client, handler):
    response = client.post("/predict", content=b"x", headers={"origin": FOREIGN})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert len(handler.calls) == 1


def test_backend_cors_headers_are_ignored(handler, client):
    handler.result = {
        "statusCode": 200,
        "headers": {"access-control-allow-origin": "*"},
        "body": "{}",
    }
    response = client.post("/predict", content=b"x", headers={"origin": FOREIGN})
    assert "access-control-allow-origin" not in response.headers
    response = client.post("/predict", content=b"x", headers={"origin": SITE})
    assert response.headers.get_list("access-control-allow-origin") == [SITE]


def test_the_routed_methods_are_the_stacks():
    from components.proxy_api import ROUTE_KEY, WRONG_METHOD_ROUTE_KEYS
    from local.api import ROUTED_METHODS

    assert {f"{method} /predict" for method in ROUTED_METHODS} == {
        ROUTE_KEY,
        *WRONG_METHOD_ROUTE_KEYS,
    }


@pytest.mark.parametrize("method", ["POST", "GET", "PUT", "PATCH", "DELETE"])
def test_routed_methods_reach_the_handler_with_their_route_key(client, handler, method):
    client.request(method, "/predict")
    event = handler.calls[-1][0]
    assert event["requestContext"]["http"]["method"] == method
    assert event["routeKey"] == f"{method} /predict"


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
def test_unrouted_methods_are_a_404_as_on_the_http_api(client, handler, method):
    response = client.request(method, "/predict")
    assert response.status_code == 404
    assert handler.calls == []


def test_other_paths_are_a_json_404(client, handler):
    response = client.post("/elsewhere", content=b"x")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert handler.calls == []


def test_bodies_above_the_gateway_limit_are_refused_before_the_handler(client, handler):
    response = client.post("/predict", content=b"x" * 1001, headers={"origin": SITE})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.headers["access-control-allow-origin"] == SITE
    assert handler.calls == []


def test_a_raising_handler_is_a_json_500_without_internals():
    app = create_api_app(
        RecordingHandler(error=RuntimeError("secret detail")), CorsPolicy(allow_origins=(SITE,))
    )
    response = TestClient(app).post("/predict", content=b"x")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "The service failed to process the request."}
    }
    assert "secret" not in response.text
