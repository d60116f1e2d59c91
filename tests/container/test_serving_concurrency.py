"""How many requests the serving image runs at once, as SageMaker would start it.

`serving.serve` runs one request per CPU at once, but no more than the container's memory
limit holds at the archive's `peak_rss_mb` each; a Serverless endpoint sized to the
archive's `memory_mb_min` therefore still runs one at a time, as that bound assumes.
The server logs the number it chose when it starts.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from machine.ports import free_port
from serving import serve
from tests.container.containers import Container, ping, podman
from tests.serving import images

pytestmark = pytest.mark.slow

START_SECONDS = 60
MODEL_DIR = "/opt/ml/model"
WORKERS_LINE = re.compile(r"serving up to (\d+) requests at once")


@pytest.fixture
def run_image(serving_image: str, model_dir: Path) -> Iterator[Callable[..., Container]]:
    """`IMAGE serve` as start_container runs it, with extra `podman run` options."""
    started: list[str] = []

    def run(*options: str) -> Container:
        port = free_port()
        result = podman(
            "run",
            "--detach",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--volume",
            f"{model_dir}:{MODEL_DIR}:ro",
            "--network=host",
            "--env",
            f"{serve.PORT_ENV}={port}",
            *options,
            serving_image,
            "serve",
        )
        assert result.returncode == 0, result.stderr
        container = Container(result.stdout.strip(), port)
        started.append(container.id)
        deadline = time.monotonic() + START_SECONDS
        while not ping(container.url):
            assert time.monotonic() < deadline, f"no /ping answer:\n{container.logs()}"
            time.sleep(0.05)
        return container

    yield run
    for container_id in started:
        podman("rm", "--force", container_id)


def workers(container: Container) -> int:
    match = WORKERS_LINE.search(container.logs())
    assert match, container.logs()
    return int(match.group(1))


def metadata(model_dir: Path) -> dict:
    return json.loads((model_dir / "metadata.json").read_text())


def test_at_memory_mb_min_it_runs_one_request_at_a_time(run_image, model_dir):
    container = run_image("--memory", f"{metadata(model_dir)['memory_mb_min']}m", "--cpus", "2")
    assert workers(container) == 1


def test_with_memory_for_two_it_runs_two_at_once(run_image, model_dir):
    memory = 2 * metadata(model_dir)["peak_rss_mb"] + 64
    container = run_image("--memory", f"{memory}m", "--cpus", "2")
    assert workers(container) == 2


def test_the_cpu_quota_bounds_it(run_image):
    assert workers(run_image("--cpus", "1")) == 1


def test_sagemaker_model_server_workers_sets_it_and_requests_run_together(run_image):
    container = run_image("--env", f"{serve.WORKERS_ENV}=3", "--cpus", "1")
    assert workers(container) == 3
    case = images.good_cases()[0]

    def predict(_index: int) -> int:
        response = httpx.post(
            f"{container.url}/invocations",
            content=case.body,
            headers={"content-type": case.content_type or "image/jpeg"},
            timeout=30,
        )
        return response.status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(predict, range(6))) == [200] * 6
