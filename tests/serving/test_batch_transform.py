"""``serving.serve`` under SageMaker Batch Transform (``serving.batch_transform``): the
execution parameters, a bad record as a 200 with the API's error object, the payload and
concurrency the job sets, and the Serverless endpoint unchanged without ``SAGEMAKER_BATCH``."""

from __future__ import annotations

import json

import pytest

from serving import batch_transform, serve
from tests.serving import images
from tests.serving.asgi import TestClient

JPEG = images.good_cases()[0]
# The bad cases that are the record's own fault: its bytes, not the job's headers.
RECORD_CASES = [case for case in images.bad_cases() if case.code != "unsupported_content_type"]
JOB_CASES = [case for case in images.bad_cases() if case.code == "unsupported_content_type"]


def batch_env(**values: str) -> dict[str, str]:
    return {batch_transform.BATCH_ENV: "true", **values}


@pytest.fixture(scope="module")
def batch_client(tiny_model_dir):
    settings = batch_transform.BatchSettings.from_environment(batch_env())
    app = serve.create_app(tiny_model_dir, workers=2, batch=settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("case", RECORD_CASES, ids=lambda case: case.name)
def test_a_bad_record_is_a_200_with_the_api_error(batch_client, case):
    response = batch_client.post(
        "/invocations", content=case.body, headers={"content-type": case.content_type}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == case.code
    assert error["status"] == case.status
    assert error["message"]
    assert "Traceback" not in response.text


def test_a_good_record_is_the_usual_prediction(batch_client):
    response = batch_client.post(
        "/invocations", content=JPEG.body, headers={"content-type": "image/jpeg"}
    )
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 5


@pytest.mark.parametrize("case", JOB_CASES, ids=lambda case: case.name)
def test_a_wrong_content_type_for_the_job_still_fails_loudly(batch_client, case):
    response = batch_client.post(
        "/invocations", content=case.body, headers={"content-type": case.content_type}
    )
    assert response.status_code == case.status


def test_a_wrong_accept_for_the_job_still_fails_loudly(batch_client):
    response = batch_client.post(
        "/invocations",
        content=JPEG.body,
        headers={"content-type": "image/jpeg", "accept": "text/csv"},
    )
    assert response.status_code == 406


def test_a_model_failure_is_still_a_500(batch_client, monkeypatch):
    def explode(_data, _model):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(batch_client.app.state.handler.module, "predict_fn", explode)
    response = batch_client.post(
        "/invocations", content=JPEG.body, headers={"content-type": "image/jpeg"}
    )
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


def test_execution_parameters_follow_the_servers_capacity(batch_client):
    response = batch_client.get("/execution-parameters")
    assert response.status_code == 200
    assert response.json() == {
        "MaxConcurrentTransforms": 2,
        "BatchStrategy": "SINGLE_RECORD",
        "MaxPayloadInMB": serve.MAX_BODY_BYTES // 2**20,
    }


@pytest.mark.parametrize(
    ("workers", "limit_mb", "concurrent", "payload"),
    [(1, 6, 1, 6), (8, 6, 8, 6), (16, 6, 16, 6), (64, 6, 16, 6), (4, 100, 1, 100), (3, 1, 3, 1)],
)
def test_execution_parameters_stay_within_batch_transforms_limit(
    workers, limit_mb, concurrent, payload
):
    parameters = batch_transform.execution_parameters(workers, limit_mb * 2**20)
    assert parameters["MaxConcurrentTransforms"] == concurrent
    assert parameters["MaxPayloadInMB"] == payload
    assert concurrent * payload <= batch_transform.MAX_TRANSFORM_PAYLOAD_MB


def test_a_body_above_the_jobs_payload_is_refused_as_the_records_error(tiny_model_dir):
    settings = batch_transform.BatchSettings.from_environment(
        batch_env(**{batch_transform.MAX_PAYLOAD_ENV: "1"})
    )
    app = serve.create_app(tiny_model_dir, workers=1, batch=settings)
    body = b"\xff\xd8\xff" + bytes(2**20)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/invocations", content=body, headers={"content-type": "image/jpeg"})
        assert response.status_code == 200
        assert response.json()["error"]["code"] == "payload_too_large"
        assert response.json()["error"]["status"] == 413
        assert client.get("/execution-parameters").json()["MaxPayloadInMB"] == 1


def test_max_concurrent_transforms_sets_the_workers_within_the_capacity(tiny_model_dir):
    for wanted in (1, 10_000):
        settings = batch_transform.BatchSettings.from_environment(
            batch_env(**{batch_transform.MAX_CONCURRENT_ENV: str(wanted)})
        )
        app = serve.create_app(tiny_model_dir, batch=settings)
        capacity = app.state.handler.capacity
        assert app.state.handler.workers == min(wanted, capacity)
        app.state.handler.close()


def test_without_sagemaker_batch_nothing_changes(tiny_model_dir):
    settings = batch_transform.BatchSettings.from_environment({})
    assert not settings.enabled
    with TestClient(
        serve.create_app(tiny_model_dir, batch=settings), raise_server_exceptions=False
    ) as client:
        for case in images.bad_cases():
            response = client.post(
                "/invocations", content=case.body, headers={"content-type": case.content_type}
            )
            assert response.status_code == case.status
        assert client.get("/ping").status_code == 200


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (batch_transform.MAX_PAYLOAD_ENV, "six"),
        (batch_transform.MAX_PAYLOAD_ENV, "-1"),
        (batch_transform.MAX_CONCURRENT_ENV, "1.5"),
    ],
)
def test_a_bad_batch_variable_is_a_usage_error(monkeypatch, capsys, name, value):
    monkeypatch.setenv(batch_transform.BATCH_ENV, "true")
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as raised:
        serve.parse_args([])
    assert raised.value.code == 2
    assert f"{name}={value!r} is not a whole number" in capsys.readouterr().err


@pytest.mark.parametrize(("value", "enabled"), [("true", True), ("TRUE", True), ("false", False)])
def test_sagemaker_batch_turns_the_batch_behaviour_on(monkeypatch, value, enabled):
    monkeypatch.setenv(batch_transform.BATCH_ENV, value)
    assert serve.parse_args([]).batch.enabled is enabled


def test_the_error_object_is_json_the_sorter_can_read(batch_client):
    response = batch_client.post(
        "/invocations", content=b"", headers={"content-type": "image/jpeg"}
    )
    assert json.loads(response.content) == {
        "error": {"code": "empty_body", "message": "The request body is empty.", "status": 400}
    }
