"""`python -m local --container`: the model server from the serving image (serving/Dockerfile),
run as SageMaker runs it, with podman or docker.

The image is built from this working tree when no image with its tag (a hash of what goes
into it, `serving.image.image_tag`) exists yet. Its base is `--base-image`, else the
Dockerfile's default (pulled); where that cannot be pulled (offline) and podman and
mmdebstrap are at hand, a Debian bookworm base with `python3` made by mmdebstrap and
kept in podman's store as `DEBIAN_BASE`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from artifact.archive import extract
from machine.artifact import REPO_ROOT
from machine.model_server import START_TIMEOUT_SECONDS, ModelServer, ModelServerError
from serving.image import DOCKERFILE, default_base_image, image_tag
from serving.serve import DEFAULT_PORT, PORT_ENV

ENGINES = ("podman", "docker")
LOCAL_REPOSITORY = "localhost/image-classifier-serving"
DEBIAN_BASE = "localhost/serving-base:bookworm"
# What serving/Dockerfile needs from a base: Python 3.11 with its venv module.
DEBIAN_PACKAGES = "python3,python3-venv,ca-certificates"
DEBIAN_SUITE = "bookworm"
# Where SageMaker puts the extracted model.tar.gz, read-only.
MODEL_DIR = "/opt/ml/model"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BUILD_TIMEOUT_SECONDS = 1800
# podman's and docker's own exit codes: the engine or the runtime failed, not the server.
ENGINE_EXIT_CODES = (125, 126, 127)
ENGINE_HINT = (
    "if the engine's default settings fail on this host (podman in a sandbox: rlimits, "
    "crun and cgroups), point CONTAINERS_CONF at a containers.conf such as "
    "tests/container/containers.conf"
)


class ContainerError(Exception):
    """No container engine, no base image, or a failed build; the message says what to do."""


@dataclass(frozen=True)
class Engine:
    """A container engine's command line: podman or docker."""

    name: str
    executable: str

    def run(
        self, *args: str, output: IO[bytes] | int | None = None, timeout: float | None = None
    ) -> int:
        """Run `ENGINE ARGS...`; its output goes to `output` (a file or `subprocess.DEVNULL`),
        or to ours."""
        command = [self.executable, *args]
        return subprocess.run(  # noqa: S603
            command, stdout=output, stderr=output, timeout=timeout, check=False
        ).returncode

    def has_image(self, ref: str) -> bool:
        if self.name == "podman":
            return self.run("image", "exists", ref) == 0
        return self.run("image", "inspect", ref, output=subprocess.DEVNULL) == 0


def find_engine() -> Engine:
    for name in ENGINES:
        executable = shutil.which(name)
        if executable is not None:
            return Engine(name, executable)
    raise ContainerError(
        "--container needs podman or docker on PATH; install one (e.g. apt-get install "
        "podman) or run without --container"
    )


def choose_base_image(
    engine: Engine,
    requested: str | None,
    say: Callable[[str], None],
    output: IO[bytes] | None = None,
) -> str:
    """`requested`, else the Dockerfile's default base if it is here or can be pulled,
    else a Debian base made with mmdebstrap (podman only)."""
    if requested:
        return requested
    default = default_base_image(REPO_ROOT)
    if engine.has_image(default):
        return default
    say(f"Pulling the base image {default} ...")
    if engine.run("pull", default, output=output) == 0:
        return default
    if engine.name == "podman" and shutil.which("mmdebstrap"):
        say(
            f"Cannot pull {default}; using a Debian {DEBIAN_SUITE} base with python3 "
            f"instead ({DEBIAN_BASE}, made once with mmdebstrap, then kept by podman)."
        )
        make_debian_base(engine, DEBIAN_BASE, say, output)
        return DEBIAN_BASE
    raise ContainerError(
        f"cannot pull the base image {default}; pass --base-image REF, an image with "
        "python3 and its venv module that is already on this machine"
    )


def make_debian_base(
    engine: Engine, ref: str, say: Callable[[str], None], output: IO[bytes] | None = None
) -> None:
    """Make `ref` from Debian packages (mmdebstrap, as root), unless podman has it."""
    if engine.has_image(ref):
        return
    say(f"Making {ref} with mmdebstrap (Debian packages {DEBIAN_PACKAGES}) ...")
    with tempfile.TemporaryDirectory(prefix="serving-base-") as scratch:
        tarball = Path(scratch) / "base.tar"
        command = [
            "mmdebstrap",
            "--variant=minbase",
            f"--include={DEBIAN_PACKAGES}",
            DEBIAN_SUITE,
            str(tarball),
        ]
        status = subprocess.run(  # noqa: S603
            command, stdout=output, stderr=output, check=False, timeout=BUILD_TIMEOUT_SECONDS
        ).returncode
        if status != 0:
            raise ContainerError(f"mmdebstrap failed (exit {status}); see its output above")
        if engine.run("import", str(tarball), ref, output=output) != 0:
            raise ContainerError(f"{engine.name} import of the Debian base failed")


def image_ref(base_image: str) -> str:
    return f"{LOCAL_REPOSITORY}:{image_tag(REPO_ROOT, base_image)}"


def build_image(
    engine: Engine,
    base_image: str,
    say: Callable[[str], None],
    output: IO[bytes] | None = None,
) -> str:
    """The serving image for this working tree on `base_image`, built unless an image with
    its content tag already exists. Returns its reference."""
    ref = image_ref(base_image)
    if engine.has_image(ref):
        say(f"Serving image {ref} is up to date.")
        return ref
    say(f"Building the serving image {ref} on {base_image} with {engine.name} ...")
    with tempfile.TemporaryDirectory(prefix="serving-build-") as scratch:
        args = ["build", "--file", DOCKERFILE, "--build-arg", f"BASE_IMAGE={base_image}"]
        if engine.name == "podman":
            args += ["--network=host", *_trust_host_certificates(Path(scratch))]
        args += ["--tag", ref, str(REPO_ROOT)]
        status = engine.run(*args, output=output, timeout=BUILD_TIMEOUT_SECONDS)
    if status != 0:
        raise ContainerError(
            f"building the serving image failed (exit {status}, see above); {ENGINE_HINT}"
        )
    return ref


def _trust_host_certificates(scratch: Path) -> list[str]:
    """podman build volumes that make pip trust what this host trusts, for hosts behind a
    TLS-inspecting proxy. The Dockerfile stays standard: pip reads /etc/pip.conf itself."""
    if not HOST_CA_BUNDLE.is_file():
        return []
    pip_conf = scratch / "pip.conf"
    pip_conf.write_text(f"[global]\ncert = {HOST_CA_BUNDLE}\n", encoding="utf-8")
    return [
        "--volume",
        f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro",
        "--volume",
        f"{pip_conf}:/etc/pip.conf:ro",
    ]


class ContainerModelServer(ModelServer):
    """The serving image as the model server: `serve` as the image's unprivileged user,
    the extracted archive mounted read-only at /opt/ml/model, a read-only root filesystem
    with a tmpfs /tmp."""

    def __init__(self, engine: Engine, image: str, artifact: Path, host: str = "127.0.0.1"):
        super().__init__(artifact, host)
        self.engine = engine
        self.image = image
        self.name = f"image-classifier-model-{self.port}"
        self.description = f"{image} in {engine.name}, as SageMaker runs it"
        self._model_dir = tempfile.TemporaryDirectory(prefix="model-")
        # The image's user is not root (nor this user): it reads the model as "others", as
        # it reads SageMaker's /opt/ml/model, so the directory may not stay private (0700).
        Path(self._model_dir.name).chmod(0o755)

    def command(self) -> list[str]:
        # ",z": SELinux hosts (Fedora) relabel the directory so the container may read it.
        volume = f"{self._model_dir.name}:{MODEL_DIR}:ro,z"
        # /tmp is the container's own tmpfs, the one place the server may write.
        run = ["run", "--rm", "--name", self.name, "--read-only", "--tmpfs", "/tmp"]  # noqa: S108
        run += ["--volume", volume]
        # The server's own flags after `serve` override the image's: quieter logs, and
        # with podman the loopback address.
        serve = ["serve", "--log-level", "warning"]
        if self.engine.name == "podman":
            # The host's network needs no port forwarding helpers (rootless podman's need
            # extra packages); the server then listens on loopback only.
            run += ["--network=host", "--env", f"{PORT_ENV}={self.port}"]
            serve += ["--host", self.host]
        else:
            run += ["--publish", f"{self.host}:{self.port}:{DEFAULT_PORT}"]
        return [self.engine.executable, *run, self.image, *serve]

    def start(
        self,
        timeout: float = START_TIMEOUT_SECONDS,
        output: IO[bytes] | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        # SageMaker extracts model.tar.gz before the container starts, as we do here.
        extract(self.artifact, Path(self._model_dir.name))
        try:
            super().start(timeout, output, cancelled)
        except ModelServerError as error:
            if self.exit_code in ENGINE_EXIT_CODES:
                raise ModelServerError(
                    f"{self.engine.name} could not run {self.image} (exit {self.exit_code}, "
                    f"see above); {ENGINE_HINT}"
                ) from error
            raise

    def stop(self, grace: float = 10) -> None:
        started = self._process is not None
        super().stop(grace)
        if started:
            # The client forwards SIGTERM and the container removes itself; if the client
            # had to be killed, the container may still be there (else this finds none).
            self.engine.run("rm", "--force", self.name, output=subprocess.DEVNULL)
        self._model_dir.cleanup()


def container_model_server(
    artifact: Path, base_image: str | None, say: Callable[[str], None]
) -> ContainerModelServer:
    """Find an engine, choose the base, build the image if needed: a server to start."""
    engine = find_engine()
    base = choose_base_image(engine, base_image, say)
    return ContainerModelServer(engine, build_image(engine, base, say), artifact)
