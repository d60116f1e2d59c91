"""The serving image, built once per session with podman, and containers run from it
the way SageMaker runs them.

Public registries cannot be reached from our machines, so the base is Debian bookworm
made with mmdebstrap (`local.container.make_debian_base`, kept in podman's store between
runs). Without podman or mmdebstrap these tests skip, or fail where REQUIRE_CONTAINER=1
(CI) says a container engine must be there.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from artifact.archive import extract
from local.container import (
    DEBIAN_BASE,
    MODEL_DIR,
    ContainerError,
    Engine,
    build_image,
    make_debian_base,
)
from machine.ports import free_port
from serving.serve import PORT_ENV
from tests.container.containers import Container, StartContainer, ping, podman

HERE = Path(__file__).resolve().parent
START_SECONDS = 30


def _missing_tools() -> str | None:
    for tool in ("podman", "mmdebstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman runc mmdebstrap)"
    return None


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    """podman, configured for hosts like ours unless CONTAINERS_CONF says otherwise."""
    missing = _missing_tools()
    if missing is not None:
        if os.environ.get("REQUIRE_CONTAINER") == "1":
            pytest.fail(f"REQUIRE_CONTAINER=1 but {missing}")
        pytest.skip(f"container tests need podman and mmdebstrap: {missing}")
    with pytest.MonkeyPatch.context() as patch:
        # Only where runc is there to select: crun-only hosts keep their own defaults.
        if "CONTAINERS_CONF" not in os.environ and shutil.which("runc"):
            patch.setenv("CONTAINERS_CONF", str(HERE / "containers.conf"))
        yield Engine("podman", shutil.which("podman") or "podman")


@pytest.fixture(scope="session")
def build_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("image") / "build.log"


@pytest.fixture(scope="session")
def serving_image(engine: Engine, build_log: Path) -> str:
    """The image of this working tree on the Debian base (built unless it exists)."""
    with build_log.open("wb") as output:
        try:
            make_debian_base(engine, DEBIAN_BASE, lambda _message: None, output)
            return build_image(engine, DEBIAN_BASE, lambda _message: None, output)
        except ContainerError:
            output.flush()
            pytest.fail(f"building the image failed:\n{build_log.read_text(errors='replace')}")


@pytest.fixture(scope="session")
def model_dir(model_artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The archive extracted, as SageMaker extracts it before mounting it read-only."""
    directory = tmp_path_factory.mktemp("opt-ml-model")
    extract(model_artifact, directory)
    return directory


@pytest.fixture(scope="session")
def start_container(serving_image: str, model_dir: Path) -> Iterator[StartContainer]:
    """Start containers as SageMaker does: `IMAGE serve` as the image's own (unprivileged)
    user, the model (``model_dir``, or another extracted archive) read-only at
    /opt/ml/model, and nothing writable at all: a read-only root and no tmpfs (podman's
    --read-only would mount one on /tmp); reachable from the host on a free port given in
    SAGEMAKER_BIND_TO_PORT, or with no network at all; ``options`` are more `podman run`
    options (e.g. the environment of a transform job, a memory limit)."""
    started: list[str] = []

    def start(
        network: str = "host",
        wait: bool = True,
        model: Path = model_dir,
        options: Sequence[str] = (),
    ) -> Container:
        port = free_port()
        # Owned by another user than the server's, like SageMaker's /opt/ml/model; readable
        # by others, like the archive's files (0644), which the image's user relies on.
        model.chmod(0o755)
        result = podman(
            "run",
            "--detach",
            "--read-only",
            "--read-only-tmpfs=false",
            "--volume",
            f"{model}:{MODEL_DIR}:ro",
            f"--network={network}",
            "--env",
            f"{PORT_ENV}={port}",
            *options,
            serving_image,
            "serve",
        )
        assert result.returncode == 0, result.stderr
        container = Container(result.stdout.strip(), port)
        started.append(container.id)
        if wait and network == "host":
            deadline = time.monotonic() + START_SECONDS
            while not ping(container.url):
                assert time.monotonic() < deadline, f"no /ping answer:\n{container.logs()}"
                time.sleep(0.05)
        return container

    yield start
    for container_id in started:
        podman("rm", "--force", container_id)
