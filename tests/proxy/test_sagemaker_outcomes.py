"""SageMaker outcomes through a real botocore client, stubbed with botocore's `Stubber`."""

import io
import json
import time

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from proxy.sagemaker import RuntimeClients
from tests.proxy.photos import encoded
from tests.proxy.support import ENDPOINT, LambdaContext, LogLines, body_of, build_proxy, http_event
from tests.proxy.support import prediction_payload as payload

LOG_STREAM = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/x"


@pytest.fixture
def stubbed(aws_env):
    clients = RuntimeClients(read_timeout=20.0, connect_timeout=2.0)
    stubber = Stubber(clients(20.0))
    sleeps = []
    logs = LogLines()
    proxy = build_proxy(clients, time.monotonic, sleeps.append)
    with stubber:
        yield stubber, proxy, sleeps, logs
        stubber.assert_no_pending_responses()


def success(stubber, body=None):
    data = body or payload()
    stubber.add_response(
        "invoke_endpoint",
        {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": "application/json"},
        {
            "EndpointName": ENDPOINT,
            "Body": encoded("chelsea"),
            "ContentType": "image/jpeg",
            "Accept": "application/json",
        },
    )


def error(stubber, code, status, message="", **modeled):
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code=code,
        service_message=message or code,
        http_status_code=status,
        modeled_fields=modeled or None,
    )


def call(proxy):
    event = http_event(encoded("chelsea"))
    response = proxy.handle(event, LambdaContext(time.monotonic))
    return response, body_of(response)


def logged(logs):
    (record,) = logs.records()
    return record


def test_success_passes_the_model_answer_on(stubbed):
    stubber, proxy, sleeps, logs = stubbed
    success(stubber)
    response, body = call(proxy)
    assert response["statusCode"] == 200
    assert body["predictions"] == json.loads(payload())["predictions"]
    assert body["needs_review"] is True
    assert logged(logs)["attempts"] == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        ("ModelNotReadyException", 429, "model_not_ready"),
        ("ThrottlingException", 400, "throttled"),
        ("ServiceUnavailable", 503, "service_unavailable"),
    ],
)
def test_transient_failures_are_retried_until_success(stubbed, code, status, reason):
    stubber, proxy, sleeps, logs = stubbed
    error(stubber, code, status)
    error(stubber, code, status)
    success(stubber)
    response, _ = call(proxy)
    assert response["statusCode"] == 200
    assert len(sleeps) == 2
    assert sleeps[0] < sleeps[1]
    record = logged(logs)
    assert (record["attempts"], record["failures"]) == (3, [reason, reason])


@pytest.mark.parametrize(
    ("code", "status", "answer", "retry_after"),
    [
        ("ModelNotReadyException", 429, "model_not_ready", "5"),
        ("ThrottlingException", 400, "model_busy", "2"),
        ("ServiceUnavailable", 503, "model_unavailable", "5"),
    ],
)
def test_persistent_failures_end_in_503_with_retry_after(
    stubbed, code, status, answer, retry_after
):
    stubber, proxy, sleeps, logs = stubbed
    for _ in range(4):
        error(stubber, code, status)
    response, body = call(proxy)
    assert response["statusCode"] == 503
    assert response["headers"]["retry-after"] == retry_after
    assert body["error"]["code"] == answer
    assert len(sleeps) == 3
    assert logged(logs)["attempts"] == 4


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (400, "corrupt_image", "The JPEG image is truncated or corrupt and cannot be decoded."),
        (413, "image_too_large", "The image (20000x20000) has more than 50000000 pixels."),
        (415, "unsupported_image", "The body is not a JPEG, PNG, WebP or GIF image."),
    ],
)
def test_the_model_handlers_4xx_reaches_the_client(stubbed, status, code, message):
    stubber, proxy, sleeps, _ = stubbed
    original = json.dumps({"error": {"code": code, "message": message}})
    original += '\nTraceback (most recent call last):\n  File "/opt/ml/code/inference.py"'
    error(
        stubber,
        "ModelError",
        424,
        f'Received client error ({status}) from primary with message "{original}".',
        OriginalStatusCode=status,
        OriginalMessage=original,
        LogStreamArn=LOG_STREAM,
    )
    response, body = call(proxy)
    assert response["statusCode"] == status
    assert body["error"] == {"code": code, "message": message}
    assert sleeps == []
    assert "Traceback" not in response["body"]


def test_a_model_handler_crash_is_a_502_without_its_details(stubbed):
    stubber, proxy, _, logs = stubbed
    error(
        stubber,
        "ModelError",
        424,
        'Received server error (500) from primary with message "Traceback: boom at /opt/ml".',
        OriginalStatusCode=500,
        OriginalMessage="Traceback: boom at /opt/ml",
        LogStreamArn=LOG_STREAM,
    )
    response, body = call(proxy)
    assert (response["statusCode"], body["error"]["code"]) == (502, "model_error")
    assert "boom" not in response["body"]
    assert "boom" in logged(logs)["detail"]


def test_a_missing_endpoint_is_a_clear_503(stubbed):
    stubber, proxy, sleeps, logs = stubbed
    error(
        stubber,
        "ValidationError",
        400,
        f"Endpoint {ENDPOINT} of account 123456789012 not found.",
    )
    response, body = call(proxy)
    assert (response["statusCode"], body["error"]["code"]) == (503, "endpoint_not_found")
    assert response["headers"]["retry-after"] == "60"
    assert "123456789012" not in response["body"]
    assert ENDPOINT not in response["body"]
    assert sleeps == []
    assert logged(logs)["level"] == "WARNING"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ValidationError", 400),
        ("AccessDeniedException", 400),
        ("InternalFailure", 500),
        ("InternalDependencyException", 530),
    ],
)
def test_anything_else_is_a_502(stubbed, code, status):
    stubber, proxy, sleeps, logs = stubbed
    error(stubber, code, status, "User: arn:aws:sts::123456789012:assumed-role/x is not allowed")
    response, body = call(proxy)
    assert (response["statusCode"], body["error"]["code"]) == (502, "upstream_error")
    assert "arn:aws" not in response["body"]
    assert sleeps == []
    assert logged(logs)["level"] == "ERROR"


def test_a_model_answer_that_is_not_the_contract_is_a_502(stubbed):
    stubber, proxy, _, _ = stubbed
    success(stubber, b"<html>502 Bad Gateway</html>")
    response, body = call(proxy)
    assert (response["statusCode"], body["error"]["code"]) == (502, "bad_model_response")
