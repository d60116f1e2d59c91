"""``model.serve``: the container contract and the SageMaker Runtime wire API.

Fast tests drive the ASGI app in process on the tiny model; slow ones talk HTTP to a
real ``python -m model.serve`` on the packaged archive, with httpx and with boto3.
"""

from __future__ import annotations

import json

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from model import serve
from tests.model import images
from tests.model.asgi import TestClient

JPEG = images.good_cases()[0]


@pytest.fixture(scope="module")
def client(tiny_model_dir):
    with TestClient(serve.create_app(tiny_model_dir), raise_server_exceptions=False) as client:
        yield client


def runtime_client(base_url: str):
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=base_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def assert_prediction(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert len(body["predictions"]) == 5
    return body


def assert_client_error(response: httpx.Response, case: images.Bad) -> None:
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == case.code
    assert "Traceback" not in response.text


def assert_model_error(response: httpx.Response, case: images.Bad) -> None:
    assert response.status_code == 424, response.text
    assert response.headers["x-amzn-errortype"].split(":")[0] == "ModelError"
    body = response.json()
    assert body["OriginalStatusCode"] == case.status
    assert json.loads(body["OriginalMessage"])["error"]["code"] == case.code
    assert f"({case.status})" in body["Message"]


def test_ping(client):
    assert client.get("/ping").status_code == 200


@pytest.mark.parametrize("case", images.good_cases(), ids=lambda case: case.name)
def test_invocations_accepts_every_format(client, case):
    headers = {"content-type": case.content_type} if case.content_type else {}
    assert_prediction(client.post("/invocations", content=case.body, headers=headers))


@pytest.mark.parametrize("case", images.bad_cases(), ids=lambda case: case.name)
def test_invocations_bad_input_is_a_json_4xx(client, case):
    response = client.post(
        "/invocations", content=case.body, headers={"content-type": case.content_type}
    )
    assert_client_error(response, case)


@pytest.mark.parametrize("case", images.bad_cases(), ids=lambda case: case.name)
def test_runtime_api_wraps_bad_input_in_model_error(client, case):
    response = client.post(
        "/endpoints/local/invocations",
        content=case.body,
        headers={"content-type": case.content_type},
    )
    assert_model_error(response, case)


def test_runtime_api_answers_like_sagemaker(client):
    response = client.post(
        "/endpoints/image-classifier/invocations",
        content=JPEG.body,
        headers={"content-type": "image/jpeg", "accept": "application/json"},
    )
    assert_prediction(response)
    assert response.headers["x-amzn-invoked-production-variant"] == "AllTraffic"
    assert response.headers["x-amzn-requestid"]


def test_unacceptable_accept_is_406(client):
    response = client.post(
        "/invocations",
        content=JPEG.body,
        headers={"content-type": "image/jpeg", "accept": "text/csv"},
    )
    assert response.status_code == 406
    assert response.json()["error"]["code"] == "unsupported_accept"


def test_oversized_body_is_refused_before_the_model(client):
    body = b"\xff\xd8\xff" + bytes(serve.MAX_BODY_BYTES)
    response = client.post("/invocations", content=body, headers={"content-type": "image/jpeg"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    response = client.post("/endpoints/e/invocations", content=body)
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"].startswith("ValidationError")


def test_invalid_endpoint_name_is_a_validation_error(client):
    response = client.post("/endpoints/bad_name!/invocations", content=JPEG.body)
    assert response.status_code == 400
    assert response.headers["x-amzn-errortype"].startswith("ValidationError")


def test_unknown_routes_and_methods(client):
    assert client.get("/invocations").status_code == 405
    assert client.get("/nope").status_code == 404


def test_a_handler_crash_is_a_500_without_a_traceback(client, monkeypatch):
    handler = client.app.state.handler

    def explode(_data, _model):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(handler.module, "predict_fn", explode)
    response = client.post(
        "/invocations", content=JPEG.body, headers={"content-type": "image/jpeg"}
    )
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "The model failed to process the request."}
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", images.good_cases(), ids=lambda case: case.name)
def test_real_server_accepts_every_format(model_server_url, case):
    headers = {"content-type": case.content_type} if case.content_type else {}
    response = httpx.post(f"{model_server_url}/invocations", content=case.body, headers=headers)
    assert assert_prediction(response)["model"]["weights"] == "random"


@pytest.mark.slow
@pytest.mark.parametrize("case", images.bad_cases(), ids=lambda case: case.name)
def test_real_server_bad_input(model_server_url, case):
    headers = {"content-type": case.content_type}
    response = httpx.post(f"{model_server_url}/invocations", content=case.body, headers=headers)
    assert_client_error(response, case)
    response = httpx.post(
        f"{model_server_url}/endpoints/e/invocations", content=case.body, headers=headers
    )
    assert_model_error(response, case)


@pytest.mark.slow
def test_boto3_invoke_endpoint(model_server_url):
    response = runtime_client(model_server_url).invoke_endpoint(
        EndpointName="image-classifier",
        Body=JPEG.body,
        ContentType="image/jpeg",
        Accept="application/json",
    )
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] == "AllTraffic"
    body = json.loads(response["Body"].read())
    assert len(body["predictions"]) == 5
    assert body["model"]["weights"] == "random"


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", [c for c in images.bad_cases() if c.name in ("empty", "truncated_jpeg", "png_bomb")]
)
def test_boto3_model_error(model_server_url, case):
    with pytest.raises(ClientError) as raised:
        runtime_client(model_server_url).invoke_endpoint(
            EndpointName="image-classifier", Body=case.body, ContentType=case.content_type
        )
    error = raised.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == case.status
    assert json.loads(error["OriginalMessage"])["error"]["code"] == case.code
    assert error["LogStreamArn"].startswith("arn:aws:logs:")


def test_cli_explains_a_missing_artifact(tmp_path, capsys):
    assert serve.main(["--artifact", str(tmp_path / "model.tar.gz")]) == 2
    assert "python -m model.package" in capsys.readouterr().err
