"""``serving.serve``: the container contract and the SageMaker Runtime wire API.

Fast tests drive the ASGI app in process on the tiny model; slow ones talk HTTP to a
real ``python -m serving.serve`` on the packaged archive, with httpx and with boto3.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from artifact.archive import UnsafeArchiveError, extract, write_reproducible_tar_gz
from serving import serve
from tests.event_loop import run_apart
from tests.serving import images
from tests.serving.asgi import TestClient
from tests.serving.conftest import write_tiny_model_dir

JPEG = images.good_cases()[0]
REPO_ROOT = Path(__file__).resolve().parents[2]


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


def _post_at_once(app, count: int) -> list[httpx.Response]:
    """`count` predictions sent together to the ASGI app, as concurrent clients do."""

    async def send_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/invocations", content=JPEG.body, headers={"content-type": "image/jpeg"}
                    )
                    for _ in range(count)
                )
            )

    return run_apart(send_all())


def _meeting_predict_fn(module, parties: int, active: list[int]):
    """A predict_fn that runs only once `parties` requests are inside it together (a
    barrier: it fails, rather than waits forever, if they never are), and records the
    largest number of requests it held at once."""
    barrier = threading.Barrier(parties, timeout=10)
    lock = threading.Lock()
    inside = [0]
    original = module.predict_fn

    def predict_fn(data, model):
        with lock:
            inside[0] += 1
            active.append(inside[0])
        try:
            barrier.wait()
            return original(data, model)
        finally:
            with lock:
                inside[0] -= 1

    return predict_fn


def test_requests_run_concurrently_up_to_the_workers(tiny_model_dir, monkeypatch):
    app = serve.create_app(tiny_model_dir, workers=2)
    active: list[int] = []
    module = app.state.handler.module
    monkeypatch.setattr(module, "predict_fn", _meeting_predict_fn(module, 2, active))
    responses = _post_at_once(app, 4)
    assert [response.status_code for response in responses] == [200] * 4
    assert max(active) == 2, "two at a time, never more than the workers"


def test_one_worker_runs_requests_one_at_a_time(tiny_model_dir, monkeypatch):
    app = serve.create_app(tiny_model_dir, workers=1)
    active: list[int] = []
    module = app.state.handler.module
    monkeypatch.setattr(module, "predict_fn", _meeting_predict_fn(module, 1, active))
    responses = _post_at_once(app, 3)
    assert [response.status_code for response in responses] == [200] * 3
    assert max(active) == 1


@pytest.mark.parametrize(
    ("cpus", "memory_mib", "peak_rss_mib", "workers"),
    [
        (2, None, 1008, 2),  # no memory limit: the CPUs
        (4, None, None, 4),
        (2, 1024, 1008, 1),  # Serverless at the archive's memory_mb_min: one at a time
        (4, 2048, 1008, 2),  # memory for two of the largest images, not four
        (2, 6144, 1008, 2),
        (1, 6144, 1008, 1),
        (8, 512, 1008, 1),  # never fewer than one
    ],
)
def test_default_workers_are_the_cpus_the_memory_holds(cpus, memory_mib, peak_rss_mib, workers):
    assert serve.default_workers(cpus, memory_mib, peak_rss_mib) == workers


def _cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text + "\n")
    return tmp_path


@pytest.mark.parametrize(
    ("files", "cpus", "memory_mib"),
    [
        ({"cpu.max": "200000 100000", "memory.max": "2147483648"}, 2, 2048),
        ({"cpu.max": "150000 100000", "memory.max": "1073741824"}, 2, 1024),
        ({"cpu.max": "50000 100000"}, 1, None),
        ({"cpu.max": "max 100000", "memory.max": "max"}, None, None),
        (
            {
                "cpu/cpu.cfs_quota_us": "100000",
                "cpu/cpu.cfs_period_us": "100000",
                "memory/memory.limit_in_bytes": "3221225472",
            },
            1,
            3072,
        ),
        (
            {
                "cpu/cpu.cfs_quota_us": "-1",
                "cpu/cpu.cfs_period_us": "100000",
                "memory/memory.limit_in_bytes": str(2**63 - 4096),
            },
            None,
            None,
        ),
        ({}, None, None),
    ],
)
def test_container_limits_from_cgroup_v2_and_v1(tmp_path, files, cpus, memory_mib):
    root = _cgroup(tmp_path, files)
    assert serve.cgroup_cpu_limit(root) == cpus
    assert serve.cgroup_memory_limit_mib(root) == memory_mib


def test_workers_are_the_flag_else_sagemaker_model_server_workers(monkeypatch):
    monkeypatch.delenv(serve.WORKERS_ENV, raising=False)
    assert serve.parse_args([]).workers is None  # chosen when the model is loaded
    monkeypatch.setenv(serve.WORKERS_ENV, "3")
    assert serve.parse_args([]).workers == 3
    assert serve.parse_args(["--workers", "1"]).workers == 1


@pytest.mark.parametrize("value", ["many", "0", "-2", "1.5"])
def test_a_bad_worker_count_is_a_usage_error(monkeypatch, capsys, value):
    monkeypatch.setenv(serve.WORKERS_ENV, value)
    with pytest.raises(SystemExit) as raised:
        serve.parse_args([])
    assert raised.value.code == 2
    assert f"{serve.WORKERS_ENV}={value!r} is not a whole number of at least 1" in (
        capsys.readouterr().err
    )
    monkeypatch.delenv(serve.WORKERS_ENV)
    with pytest.raises(SystemExit):
        serve.parse_args(["--workers", value])
    assert "--workers" in capsys.readouterr().err


def test_an_archive_serves_as_many_requests_as_its_memory_holds(
    tiny_model_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(serve, "cgroup_memory_limit_mib", lambda: 1024)
    monkeypatch.setattr(serve, "usable_cpus", lambda: 4)
    assert serve.LoadedHandler(tiny_model_dir).workers == 4  # no peak_rss_mb recorded
    model_dir = shutil.copytree(tiny_model_dir, tmp_path / "model")
    metadata = json.loads((model_dir / "metadata.json").read_text())
    (model_dir / "metadata.json").write_text(json.dumps(metadata | {"peak_rss_mb": 500}))
    assert serve.LoadedHandler(model_dir).workers == 2
    assert serve.LoadedHandler(model_dir, workers=3).workers == 3


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


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may reach (pytest's own are private to their owner)."""
    with tempfile.TemporaryDirectory(prefix="model-serve-") as name:
        Path(name).chmod(0o755)
        yield Path(name)


def serve_as_another_user(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m serving.serve ARGS` as a user that owns nothing in `shared_dir`, as the
    image's user owns nothing in SageMaker's /opt/ml/model (root reads everything, so
    root drops to nobody)."""
    command = [sys.executable, "-m", "serving.serve", *args]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, cwd=REPO_ROOT
    )


def one_line_error(err: str) -> str:
    assert "Traceback" not in err, err
    (line,) = err.strip().splitlines()
    assert line.startswith("error: "), line
    return line


def test_a_missing_model_dir_is_one_line(tmp_path, capsys):
    assert serve.main(["--model-dir", str(tmp_path / "absent")]) == 2
    assert one_line_error(capsys.readouterr().err) == (
        f"error: {tmp_path / 'absent'} does not exist: give --model-dir the directory a "
        "model.tar.gz was extracted to"
    )


def test_a_model_dir_holding_no_model_is_one_line(tmp_path, capsys):
    (tmp_path / "README").write_text("not a model")
    assert serve.main(["--model-dir", str(tmp_path)]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert f"{tmp_path} holds no model (no code/inference.py)" in line
    assert "--model-dir" in line


def test_a_stop_while_a_c_extension_loads_is_a_clean_stop(tmp_path):
    """SIGTERM inside a C extension's import (ONNX Runtime's pybind11 module) comes out as
    that module's ImportError, "initialization failed": still a stop, not a broken model."""
    model_dir = write_tiny_model_dir(tmp_path)
    (model_dir / "code" / "inference.py").write_text(
        "import os, signal, time\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(5)\n"
        "except SystemExit as stop:\n"
        "    raise ImportError('initialization failed') from stop\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "serving.serve", "--model-dir", str(model_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert "error" not in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("missing", ["metadata.json", "model.onnx"])
def test_a_model_dir_missing_a_model_file_is_one_line(tmp_path, capsys, missing):
    model_dir = write_tiny_model_dir(tmp_path)
    (model_dir / missing).unlink()
    assert serve.main(["--model-dir", str(model_dir)]) == 1
    line = one_line_error(capsys.readouterr().err)
    assert f"cannot load the model in {model_dir}" in line
    assert missing in line
    assert "--log-level debug" in line


@pytest.mark.parametrize("unreadable", [".", "code", "model.onnx"])
def test_an_unreadable_model_dir_is_one_line(shared_dir, unreadable):
    """The server's user cannot read what SageMaker extracted: say which path, and what
    to do (make it readable, or run the image as root)."""
    model_dir = shared_dir / "model"
    model_dir.mkdir()
    write_tiny_model_dir(model_dir)
    for path in [model_dir, *model_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    target = model_dir / unreadable
    target.chmod(0o700 if target.is_dir() else 0o600)
    result = serve_as_another_user("--model-dir", str(model_dir))
    assert result.returncode == 2
    line = one_line_error(result.stderr)
    assert f"cannot read {target}" in line
    assert "chmod -R a+rX" in line
    assert "USER root" in line


def test_port_is_sagemaker_bind_to_port_else_8080(monkeypatch):
    monkeypatch.delenv(serve.PORT_ENV, raising=False)
    assert serve.parse_args([]).port == 8080
    monkeypatch.setenv(serve.PORT_ENV, "9123")
    assert serve.parse_args(["serve"]).port == 9123
    assert serve.parse_args(["--port", "9001"]).port == 9001


@pytest.mark.parametrize("value", ["http", "0", "70000", "-1"])
def test_a_bad_sagemaker_bind_to_port_is_a_usage_error(monkeypatch, capsys, value):
    monkeypatch.setenv(serve.PORT_ENV, value)
    with pytest.raises(SystemExit) as raised:
        serve.parse_args([])
    assert raised.value.code == 2
    assert f"{serve.PORT_ENV}={value!r} is not a TCP port" in capsys.readouterr().err


def test_the_container_command_line(tiny_model_dir):
    args = serve.parse_args(["--model-dir", str(tiny_model_dir), "--host", "0.0.0.0", "serve"])
    assert (args.model_dir, args.artifact, args.host) == (tiny_model_dir, None, "0.0.0.0")
    assert serve.parse_args([]).artifact == Path("build/model.tar.gz")


@pytest.mark.parametrize(
    "argv", [["train"], ["--artifact", "model.tar.gz", "--model-dir", "/opt/ml/model"]]
)
def test_other_commands_and_two_models_are_refused(argv):
    with pytest.raises(SystemExit) as raised:
        serve.parse_args(argv)
    assert raised.value.code == 2


def _tar_gz(path: Path, *members: tuple[tarfile.TarInfo, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _entry(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


@pytest.fixture(params=["data_filter", "without_filters"])
def extraction(request, monkeypatch):
    """Both ways `extract` works: tarfile's data filter, and the checks of its own on
    Pythons that predate extraction filters (Debian bookworm's 3.11.2, an image base)."""
    if request.param == "without_filters":
        monkeypatch.delattr(tarfile, "data_filter")
    return request.param


def test_extract_lays_out_the_model(extraction, tiny_model_dir, tmp_path):
    files = {
        path.relative_to(tiny_model_dir).as_posix(): path.read_bytes()
        for path in tiny_model_dir.rglob("*")
        if path.is_file()
    }
    write_reproducible_tar_gz(files, tmp_path / "model.tar.gz")
    extract(tmp_path / "model.tar.gz", tmp_path / "out")
    extracted = tmp_path / "out"
    assert {name: (extracted / name).read_bytes() for name in files} == files
    assert "code/inference.py" in files


# Entries that would write to <tmp>/evil, outside the destination <tmp>/out.
ESCAPES = {
    "absolute": lambda tmp: _entry(str(tmp / "evil")),
    "dot_dot": lambda tmp: _entry("code/../../evil"),
    "symlink_outside": lambda tmp: _entry("evil", tarfile.SYMTYPE, linkname=str(tmp / "evil")),
    "hardlink_outside": lambda tmp: _entry("evil", tarfile.LNKTYPE, linkname=str(tmp / "x")),
    "device": lambda tmp: _entry("evil", tarfile.CHRTYPE, devmajor=1, devminor=3),
}


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_extract_never_writes_outside_the_destination(extraction, tmp_path, escape):
    (tmp_path / "x").write_text("a file outside")
    archive = _tar_gz(tmp_path / "evil.tar.gz", (ESCAPES[escape](tmp_path), b"x"))
    # The data filter may extract a harmless form (an absolute name made relative).
    with contextlib.suppress(tarfile.TarError):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil").exists()
    assert (tmp_path / "x").read_text() == "a file outside"


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_extract_without_filters_refuses_any_escape(monkeypatch, tmp_path, escape):
    monkeypatch.delattr(tarfile, "data_filter")
    archive = _tar_gz(tmp_path / "evil.tar.gz", (ESCAPES[escape](tmp_path), b"x"))
    with pytest.raises(UnsafeArchiveError, match=r"outside the destination|link or a special"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_extract_drops_set_id_and_shared_write_bits(extraction, tmp_path):
    archive = _tar_gz(tmp_path / "m.tar.gz", (_entry("run.sh", mode=0o6777), b"#!/bin/sh\n"))
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "run.sh").stat().st_mode & 0o7777 == 0o755


def test_onnx_runtime_telemetry_is_off_wherever_the_model_runs():
    """ONNX Runtime reads the switch when it starts. The packager's and the model server's
    commands set it before either loads ONNX Runtime (importing them loads it not, and
    changes no environment); the serving image sets it in its ENV as well."""
    root = Path(__file__).resolve().parents[2]
    environment = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    for module in ("model.package", "serving.serve"):
        script = (
            f"import os, sys, {module} as cli\n"
            "imported = ('onnxruntime' in sys.modules, os.environ.get('ORT_DISABLE_TELEMETRY'))\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(*imported, os.environ.get('ORT_DISABLE_TELEMETRY'))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env=environment,
            cwd=root,
        )
        assert done.stdout.splitlines()[-1] == "False None 1", module
    assert "ORT_DISABLE_TELEMETRY=1" in (root / "serving" / "Dockerfile").read_text()
