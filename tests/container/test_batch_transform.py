"""The serving image as SageMaker Batch Transform runs it: `IMAGE serve` with
`SAGEMAKER_BATCH=true` and the job's variables, nothing writable (conftest.py).

It answers `GET /execution-parameters` from its CPUs, memory limit and body limit, a
record the model cannot use with 200 and the API's error, and what is not the record's
fault (the job's content type) still with its 4xx.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serving import batch_transform, serve
from tests.container.containers import Container, StartContainer
from tests.serving import images
from tests.serving.asgi import TestClient

pytestmark = pytest.mark.slow

BATCH = ("--env", f"{batch_transform.BATCH_ENV}=true")
WORKERS_LINE = re.compile(r"serving up to (\d+) requests at once")


def memory_mb(model_dir: Path, requests: int) -> int:
    """A memory limit that holds ``requests`` at the archive's ``peak_rss_mb`` each."""
    peak = json.loads((model_dir / "metadata.json").read_text())["peak_rss_mb"]
    return requests * peak + 64


def post(container: Container, body: bytes, content_type: str | None) -> httpx.Response:
    headers = {"content-type": content_type} if content_type else {}
    return httpx.post(f"{container.url}/invocations", content=body, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def job_container(start_container: StartContainer, model_dir: Path) -> Container:
    """Two CPUs, but memory for one request at a time."""
    return start_container(
        options=(*BATCH, "--cpus", "2", "--memory", f"{memory_mb(model_dir, 1)}m")
    )


def test_execution_parameters_follow_the_memory_limit(job_container):
    response = httpx.get(f"{job_container.url}/execution-parameters", timeout=10)
    assert response.status_code == 200
    assert response.json() == {
        "MaxConcurrentTransforms": 1,
        "BatchStrategy": "SINGLE_RECORD",
        "MaxPayloadInMB": serve.MAX_BODY_BYTES // 2**20,
    }


def test_execution_parameters_follow_the_cpus_and_the_jobs_payload(start_container):
    container = start_container(
        options=(*BATCH, "--cpus", "2", "--env", f"{batch_transform.MAX_PAYLOAD_ENV}=1")
    )
    parameters = httpx.get(f"{container.url}/execution-parameters", timeout=10).json()
    assert parameters["MaxConcurrentTransforms"] == 2
    assert parameters["MaxPayloadInMB"] == 1
    response = post(container, b"\xff\xd8\xff" + bytes(2**20), "image/jpeg")
    assert response.status_code == 200
    assert response.json()["error"]["code"] == "payload_too_large"


def test_max_concurrent_transforms_sets_the_requests_at_once(start_container):
    container = start_container(
        options=(*BATCH, "--cpus", "2", "--env", f"{batch_transform.MAX_CONCURRENT_ENV}=1")
    )
    match = WORKERS_LINE.search(container.logs())
    assert match, container.logs()
    assert int(match.group(1)) == 1


@pytest.fixture(scope="module")
def serverless(model_artifact: Path) -> Iterator[TestClient]:
    """`serving.serve` in this process without SAGEMAKER_BATCH, as a Serverless endpoint."""
    with TestClient(serve.create_app(model_artifact), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("case", images.bad_cases(), ids=lambda case: case.name)
def test_a_bad_record_answers_200_with_the_apis_error(job_container, serverless, case):
    response = post(job_container, case.body, case.content_type)
    # The same code and message as the Serverless endpoint's 4xx for the same bytes.
    expected = serverless.post(
        "/invocations", content=case.body, headers={"content-type": case.content_type}
    )
    assert expected.status_code == case.status
    if case.code in batch_transform.JOB_ERROR_CODES:
        assert response.status_code == case.status
        assert response.json() == expected.json()
        return
    assert response.status_code == 200, response.text
    assert response.json() == {"error": {**expected.json()["error"], "status": case.status}}


def test_a_good_record_is_a_prediction(job_container):
    case = images.good_cases()[0]
    response = post(job_container, case.body, case.content_type)
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 5


def test_ping_is_unchanged(job_container):
    assert httpx.get(f"{job_container.url}/ping", timeout=10).status_code == 200
