"""`python -m local --container`: the whole product with the serving image as the endpoint."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from artifact.archive import write_reproducible_tar_gz
from local.cli import parse_args
from local.container import DEBIAN_BASE, ContainerModelServer, Engine, image_ref
from local.process import local_runtime
from machine.model_server import ModelServerError
from tests.container.containers import podman
from tests.serving import images


@pytest.mark.slow
def test_the_local_runtime_serves_from_the_image(serving_image: str, model_artifact: Path):
    # The session's image: same tree, same base, so the runtime finds it built.
    assert serving_image == image_ref(DEBIAN_BASE)
    with local_runtime(model_artifact, ["--container", "--base-image", DEBIAN_BASE]) as runtime:
        assert f"{serving_image} in podman, as SageMaker runs it" in runtime.output
        response = httpx.post(
            f"{runtime.api_url}/predict",
            content=images.good_cases()[0].body,
            headers={"content-type": "image/jpeg"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert len(response.json()["predictions"]) == 5
        name = next(
            line.split()[-1]
            for line in podman("ps", "--format", "{{.Names}}").stdout.splitlines()
            if line.startswith("image-classifier-model-")
        )
        assert runtime.stop(signal.SIGTERM) == 0, runtime.output
    assert "Stopped." in runtime.output
    assert podman("container", "exists", name).returncode == 1  # stopped and removed


def test_base_image_needs_container(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--base-image", "debian"])
    assert "--base-image needs --container" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("engine", "network", "serve"),
    [
        ("podman", ["--network=host", "--env"], ["--host", "127.0.0.1"]),
        ("docker", ["--publish"], []),
    ],
)
def test_the_model_server_runs_the_image_as_sagemaker_does(engine, network, serve):
    server = ContainerModelServer(Engine(engine, f"/usr/bin/{engine}"), "img:1", Path("m.tar.gz"))
    command = server.command()
    assert command[:2] == [f"/usr/bin/{engine}", "run"]
    image_at = command.index("img:1")
    assert command[image_at + 1 :] == ["serve", "--log-level", "warning", *serve]
    options = command[2:image_at]
    for flag in ["--read-only", "--tmpfs", *network]:
        assert flag in options
    assert options[options.index("--tmpfs") + 1] == "/tmp"
    assert options[options.index("--volume") + 1].endswith(":/opt/ml/model:ro,z")
    server.stop()


def test_an_engine_failure_says_how_to_configure_the_engine(tmp_path):
    fake = tmp_path / "podman"
    fake.write_text("#!/bin/sh\necho 'Error: OCI permission denied' >&2\nexit 126\n")
    fake.chmod(0o755)
    write_reproducible_tar_gz({"metadata.json": b"{}"}, tmp_path / "model.tar.gz")
    server = ContainerModelServer(Engine("podman", str(fake)), "img:1", tmp_path / "model.tar.gz")
    with pytest.raises(ModelServerError, match=r"exit 126.*CONTAINERS_CONF"):
        server.start(timeout=10, output=subprocess.DEVNULL)
    server.stop()
