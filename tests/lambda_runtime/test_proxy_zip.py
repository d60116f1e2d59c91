"""The proxy's zip under awslambdaric: a photo through CloudFront's origin header, a direct
call refused, feedback on a fresh prediction recorded in the stack's table (moto)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from machine.lambda_runtime_api import Invocation, LambdaFunction
from tests.infra.conftest import StackRun
from tests.lambda_runtime.conftest import aws_clients
from tests.lambda_runtime.harness import FUNCTION, TABLE
from tests.proxy.photos import encoded
from tests.proxy.support import http_event, json_event, via_cloudfront

pytestmark = pytest.mark.slow

NAME = "api-function"


@pytest.fixture(scope="module")
def proxy(start_function) -> LambdaFunction:
    return start_function(NAME)


@pytest.fixture(scope="module")
def origin_secret(stack: StackRun) -> str:
    return stack.one(FUNCTION, NAME).inputs["environment"]["variables"]["ORIGIN_SECRET"]


def answer(invocation: Invocation) -> tuple[int, dict[str, Any]]:
    """The HTTP API's response the function returned: its status and JSON body."""
    assert invocation.kind == "response", invocation
    response = invocation.body
    assert response["headers"]["content-type"].startswith("application/json")
    return response["statusCode"], json.loads(response["body"])


def predict(proxy: LambdaFunction, secret: str | None) -> tuple[int, dict[str, Any]]:
    event = http_event(encoded("chelsea"), "image/jpeg", path="/api/predict")
    return answer(proxy.invoke(via_cloudfront(event, secret) if secret else event))


def test_the_proxy_starts_under_the_runtime_client(proxy: LambdaFunction):
    assert proxy.init_seconds is not None
    assert proxy.api.init_error is None


def test_a_photo_through_the_origin_header_gets_its_top_5(proxy, origin_secret):
    status, body = predict(proxy, origin_secret)
    assert status == 200, body
    assert len(body["predictions"]) == 5
    assert body["request_id"]
    probabilities = [p["probability"] for p in body["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True)


def test_a_direct_call_without_the_header_is_refused(proxy):
    status, body = predict(proxy, None)
    assert status == 403
    assert body["error"]["code"] == "forbidden"


def test_feedback_on_a_fresh_prediction_is_recorded(proxy, origin_secret, stack, moto_url):
    status, body = predict(proxy, origin_secret)
    assert status == 200, body
    request_id = body["request_id"]
    label = body["predictions"][1]["label"]
    feedback = json_event(
        {"request_id": request_id, "verdict": "wrong", "label": label}, path="/api/feedback"
    )
    status, answered = answer(proxy.invoke(via_cloudfront(feedback, origin_secret)))
    assert status == 200, answered
    assert answered["feedback"]["label"] == label
    _s3, dynamodb = aws_clients(moto_url)
    item = dynamodb.get_item(
        TableName=stack.one(TABLE).inputs["name"], Key={"request_id": {"S": request_id}}
    )["Item"]
    assert (item["verdict"]["S"], item["feedback_label"]["S"]) == ("wrong", label)
    assert item["model_version"]["S"] == body["model"]["version"]
