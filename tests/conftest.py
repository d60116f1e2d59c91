"""Session fixtures shared by every part's tests: a random-weights model archive, a real
``python -m serving.serve`` running on it, and ``python -m moto.server``."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from machine.model_server import ModelServer, ModelServerError
from machine.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "test-cache"
PRODUCT_PACKAGES = (
    "admin",
    "artifact",
    "batch",
    "bench",
    "components",
    "hosting",
    "local",
    "machine",
    "model",
    "pipeline",
    "proxy",
    "serving",
    "shared",
)
"""The product's Python packages, but the policy pack (it runs alone, in a virtualenv of
its own) and the wheel's front `image_classifier` (names only)."""
# Everything the archive's bytes depend on; a change to any of them rebuilds it.
MODEL_SOURCES = [
    *sorted((ROOT / "model").glob("*.py")),
    *sorted((ROOT / "artifact").glob("*.py")),
    *sorted((ROOT / "serving" / "code").iterdir()),
]
SERVER_START_SECONDS = 60
MOTO_START_SECONDS = 60
STALE_SECONDS = 600


def _sources_key() -> str:
    digest = hashlib.sha256()
    for path in MODEL_SOURCES:
        if path.is_file():
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_random_archive(out: Path) -> None:
    """Run the packaging CLI as a user would (and keep torch out of the test process)."""
    subprocess.run(
        [sys.executable, "-m", "model.package", "--weights", "random", "--out", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def model_artifact() -> Path:
    """A random-weights ``model.tar.gz`` of the default precision (int8), built once and
    cached by a hash of the sources."""
    cached = CACHE / f"model-random-{_sources_key()}.tar.gz"
    if not cached.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
            built = Path(scratch) / "model.tar.gz"
            build_random_archive(built)
            os.replace(built, cached)
        _prune(keep=cached)
    return cached


def _prune(keep: Path) -> None:
    """Drop archives of older sources, once no session can still be opening them."""
    for stale in CACHE.glob("model-random-*.tar.gz"):
        with contextlib.suppress(FileNotFoundError):  # another session pruned it first
            if stale != keep and time.time() - stale.stat().st_mtime > STALE_SECONDS:
                stale.unlink()


@pytest.fixture(scope="session")
def model_server_url(
    model_artifact: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Base URL of a real ``python -m serving.serve`` on ``model_artifact``."""
    server = ModelServer(model_artifact)
    log = tmp_path_factory.mktemp("model-serve") / "server.log"
    with log.open("wb") as sink:
        try:
            server.start(SERVER_START_SECONDS, output=sink)
        except ModelServerError:
            server.stop()
            raise RuntimeError(log.read_text(errors="replace")) from None
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m moto.server` on a free loopback port."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_for(url, process, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    end = time.monotonic() + MOTO_START_SECONDS
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"moto.server exited:\n{log.read_text(errors='replace')}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError),
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2),
        ):
            return
        time.sleep(0.1)
    raise RuntimeError(f"moto.server did not answer in {MOTO_START_SECONDS} s")
