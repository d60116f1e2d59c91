"""The serving image, run exactly as SageMaker runs it, answers as `serving.serve` does.

Every container here is `IMAGE serve` as the image's unprivileged user, with the extracted
archive mounted read-only at /opt/ml/model and nothing writable at all: a read-only root
filesystem and no tmpfs (see conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
import skimage.data
from botocore.config import Config
from botocore.exceptions import ClientError
from PIL import Image

from local.container import MODEL_DIR
from serving import serve
from tests.container.containers import Container, StartContainer, podman
from tests.serving import images
from tests.serving.asgi import TestClient

pytestmark = pytest.mark.slow

SIGTERM_SECONDS = 5
# Seconds from `podman run --detach` to SIGTERM: the runtime's exec, python's imports, the
# model load, serving.
STOP_DELAYS = (0, 0.05, 0.1, 0.3, 1.0)
# Photos scikit-image ships (no download), besides the cat every image test uses.
PHOTOS = ("astronaut", "coffee", "rocket", "chelsea")
SERVING_USER = "10001:10001"
"""The image's USER: not root, and no entry in /etc/passwd needed."""
PYTHON = "/opt/venv/bin/python"
SERVER = [PYTHON, "-m", "serving.serve", "--model-dir", "/opt/ml/model", "--host", "0.0.0.0"]
INIT = ["/usr/local/bin/tini", "-e", "143", "--"]
"""PID 1: forwards SIGTERM to the server; a server stopped by it before its handler (143)
counts as a clean stop."""
ENTRYPOINT = [*INIT, *SERVER]


@pytest.fixture(scope="module")
def container(start_container: StartContainer) -> Container:
    return start_container()


@pytest.fixture(scope="module")
def in_process(model_artifact: Path) -> Iterator[TestClient]:
    """`serving.serve` in this process on the same archive: what the container must equal."""
    with TestClient(serve.create_app(model_artifact), raise_server_exceptions=False) as client:
        yield client


def photo_cases() -> list[images.Good]:
    photos = [
        images.Good(
            name,
            images.encode(Image.fromarray(getattr(skimage.data, name)()), "JPEG"),
            "image/jpeg",
        )
        for name in PHOTOS
    ]
    return photos + list(images.good_cases())


def post(target: httpx.Client | TestClient, path: str, case: images.Good | images.Bad):
    headers = {"content-type": case.content_type} if case.content_type else {}
    return target.post(path, content=case.body, headers=headers)


def test_the_image_is_what_sagemaker_runs(serving_image):
    config = json.loads(podman("image", "inspect", serving_image).stdout)[0]["Config"]
    assert config["Entrypoint"] == ENTRYPOINT  # exec form: the init is PID 1
    assert config["Cmd"] == ["serve"]
    assert config["User"] == SERVING_USER  # an unprivileged user, numeric: any base has it
    probe = podman(
        "run", "--rm", "--network=none", "--read-only", "--entrypoint", PYTHON,
        serving_image, "-c",
        "import importlib.util as u, json;"
        "print(json.dumps([m for m in ('pip', 'setuptools', 'torch', 'torchvision')"
        " if u.find_spec(m)]))",
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout) == []


def test_ping_answers_with_no_network_at_all(start_container: StartContainer):
    """Nothing is installed or downloaded at start: it serves with no network."""
    isolated = start_container(network="none", wait=False)
    probe = (
        "import time, urllib.request\n"
        "for _ in range(300):\n"
        "    try:\n"
        "        print(urllib.request.urlopen('http://127.0.0.1:8080/ping').status); break\n"
        "    except OSError: time.sleep(0.05)\n"
    )
    result = isolated.exec_python(probe.replace("8080", str(isolated.port)))
    assert result.stdout.strip() == "200", result.stderr + isolated.logs()
    pid1 = podman("exec", isolated.id, "cat", "/proc/1/cmdline").stdout.split("\0")
    assert pid1[: len(ENTRYPOINT)] == ENTRYPOINT
    children = podman("exec", isolated.id, "cat", "/proc/1/task/1/children").stdout.split()
    (server,) = children
    cmdline = podman("exec", isolated.id, "cat", f"/proc/{server}/cmdline").stdout.split("\0")
    assert cmdline[: len(SERVER)] == SERVER


@pytest.mark.parametrize("case", photo_cases(), ids=lambda case: case.name)
def test_predictions_equal_the_in_process_handlers(container, in_process, case):
    with httpx.Client(base_url=container.url) as client:
        response = post(client, "/invocations", case)
    expected = post(in_process, "/invocations", case)
    assert response.status_code == expected.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected.json()


@pytest.mark.parametrize("case", images.bad_cases(), ids=lambda case: case.name)
def test_bad_input_gets_the_same_json_4xx(container, in_process, case):
    with httpx.Client(base_url=container.url) as client:
        for path in ("/invocations", "/endpoints/image-classifier/invocations"):
            response, expected = post(client, path, case), post(in_process, path, case)
            assert (response.status_code, response.json()) == (
                expected.status_code,
                expected.json(),
            )
            assert response.headers["content-type"] == "application/json"
            assert 400 <= response.status_code < 500


def test_a_stock_boto3_client_works_against_the_container(container, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", container.url)
    client = boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )
    jpeg = images.good_cases()[0]
    response = client.invoke_endpoint(
        EndpointName="image-classifier", Body=jpeg.body, ContentType="image/jpeg"
    )
    assert response["InvokedProductionVariant"] == "AllTraffic"
    assert len(json.loads(response["Body"].read())["predictions"]) == 5
    empty = images.bad_cases()[0]
    with pytest.raises(ClientError) as raised:
        client.invoke_endpoint(EndpointName="image-classifier", Body=b"", ContentType="image/jpeg")
    error = raised.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == empty.status
    assert json.loads(error["OriginalMessage"])["error"]["code"] == empty.code


def test_it_runs_as_the_images_unprivileged_user_and_reads_the_model(container):
    """PID 1 is the image's user, not root, and that user reads every file SageMaker
    extracted to /opt/ml/model (owned by another user, as there)."""
    uid, gid = SERVING_USER.split(":")
    status = podman("exec", container.id, "cat", "/proc/1/status").stdout
    assert f"\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n" in status, status
    assert f"\nGid:\t{gid}\t{gid}\t{gid}\t{gid}\n" in status, status
    read = container.exec_python(
        "import os, pathlib; files = [p for p in pathlib.Path('/opt/ml/model').rglob('*')"
        " if p.is_file()]; assert files; [p.read_bytes() for p in files];"
        " print(os.getuid(), len(files), pathlib.Path('/opt/ml/model').stat().st_uid)"
    )
    assert read.returncode == 0, read.stderr
    reader, count, owner = read.stdout.split()
    assert reader == uid
    assert int(count) >= 3  # model.onnx, metadata.json, code/inference.py
    assert owner != uid


def test_a_model_the_images_user_cannot_read_is_one_clear_line(
    start_container: StartContainer, model_dir: Path, tmp_path: Path
):
    """Should SageMaker extract a file the image's user may not read (decision 12's risk),
    the container stops at once with one line saying which file and what to do."""
    private = shutil.copytree(model_dir, tmp_path / "model")
    (private / "model.onnx").chmod(0o600)
    failing = start_container(network="none", wait=False, model=private)
    waited = podman("wait", failing.id)
    assert waited.stdout.strip() == "2", failing.logs()
    assert failing.logs().strip() == (
        f"error: cannot read {MODEL_DIR}/model.onnx as uid {SERVING_USER.split(':')[0]}: "
        "make the model directory and its files readable by others (chmod -R a+rX), or "
        "run the image as root (USER root in serving/Dockerfile)"
    )


def test_it_writes_nothing_and_needs_no_writable_path(container):
    """Nothing is writable, not even /tmp (podman mounts no tmpfs there), and the server
    still answers: no bytecode, no ONNX Runtime telemetry database, no temporary files,
    and nothing complained about a read-only file system."""
    with httpx.Client(base_url=container.url) as client:
        assert post(client, "/invocations", images.good_cases()[0]).status_code == 200
    listing = podman("exec", container.id, "find", "/tmp", "-mindepth", "1")
    assert (listing.returncode, listing.stdout) == (0, "")
    probe = container.exec_python("open('/tmp/probe', 'w')")
    assert "Read-only file system" in probe.stderr
    logs = container.logs()
    assert "Read-only file system" not in logs
    assert "telemetry" not in logs.lower()


def test_sigterm_finishes_the_request_in_flight_then_stops(start_container: StartContainer):
    server = start_container()
    body = images.good_cases()[0].body
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = (
            "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        sock.sendall(head + body[:1000])  # the request is in flight: half its body sent
        time.sleep(0.3)
        stopped = time.monotonic()
        assert podman("kill", "--signal", "TERM", server.id).returncode == 0
        time.sleep(0.3)
        sock.sendall(body[1000:])
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200 "), response[:200]
    assert b'"predictions"' in response
    waited = podman("wait", server.id, timeout=SIGTERM_SECONDS + 5)
    elapsed = time.monotonic() - stopped
    assert waited.stdout.strip() == "0", server.logs()
    assert elapsed < SIGTERM_SECONDS, f"stopped after {elapsed:.1f} s"


@pytest.fixture
def busy_cpus() -> Iterator[None]:
    """Every CPU kept busy by another process, as on a loaded CI runner or laptop: the
    container's start takes longer, so a stop lands in every part of it."""
    loop = "import time\nend = time.monotonic() + 120\nwhile time.monotonic() < end: pass"
    spinners = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(os.cpu_count() or 1)]
    yield
    for spinner in spinners:
        spinner.kill()
        spinner.wait()


@pytest.mark.parametrize("delay", STOP_DELAYS, ids=lambda delay: f"{delay}s")
def test_sigterm_at_any_moment_of_the_start_stops_it(
    start_container: StartContainer, busy_cpus: None, delay: float
):
    """A stop is never lost, wherever in the start it lands, on a loaded machine: from the
    runtime's exec (PID 1 a minimal init that takes signals over within microseconds)
    through python's imports and the model load to serving. A clean stop exits 0."""
    starting = start_container(network="none", wait=False)
    time.sleep(delay)
    stopped = time.monotonic()
    assert podman("kill", "--signal", "TERM", starting.id).returncode == 0
    try:
        waited = podman("wait", starting.id, timeout=SIGTERM_SECONDS + 5)
    except subprocess.TimeoutExpired:
        pytest.fail(f"SIGTERM {delay} s into the start was lost:\n{starting.logs()}")
    assert waited.stdout.strip() == "0", starting.logs()
    assert time.monotonic() - stopped < SIGTERM_SECONDS
    assert "Traceback" not in starting.logs()


def test_archive_extraction_is_safe_on_the_images_python(serving_image, model_artifact):
    """The base's Python may predate tarfile's extraction filters (bookworm's 3.11.2):
    artifact.archive.extract still lays out the model and refuses an escaping link."""
    script = (
        "import io, sys, tarfile, pathlib\n"
        "from artifact.archive import extract, UnsafeArchiveError\n"
        "extract('/input/model.tar.gz', '/tmp/model')\n"
        "print(sorted(p.name for p in pathlib.Path('/tmp/model').rglob('*')))\n"
        "with tarfile.open('/tmp/evil.tar.gz', 'w:gz') as tar:\n"
        "    link = tarfile.TarInfo('evil'); link.type = tarfile.SYMTYPE\n"
        "    link.linkname = '/etc/passwd'; tar.addfile(link)\n"
        "try:\n"
        "    extract('/tmp/evil.tar.gz', '/tmp/evil'); print('extracted')\n"
        "except tarfile.TarError as error:\n"
        "    print('refused', type(error).__name__)\n"
        "print(sys.version_info[:3], hasattr(tarfile, 'data_filter'))\n"
    )
    result = podman(
        "run", "--rm", "--network=none", "--read-only", "--tmpfs", "/tmp",
        "--volume", f"{model_artifact}:/input/model.tar.gz:ro",
        "--entrypoint", PYTHON, serving_image, "-c", script,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    listing, refused, _version = result.stdout.splitlines()
    assert listing == str(sorted(["code", "inference.py", "metadata.json", "model.onnx"]))
    assert refused.startswith("refused ")
