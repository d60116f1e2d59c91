"""Session fixtures shared by every part's tests: a random-weights model archive and a
real ``python -m model.serve`` running on it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "build" / "test-cache"
# Everything the archive's bytes depend on; a change to any of them rebuilds it.
MODEL_SOURCES = sorted((ROOT / "model").glob("*.py")) + sorted((ROOT / "model" / "code").iterdir())
SERVER_START_SECONDS = 60
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_ping(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"model.serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"model.serve did not answer /ping within {timeout} s")


@pytest.fixture(scope="session")
def model_server_url(
    model_artifact: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Base URL of a real ``python -m model.serve`` on ``model_artifact``."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("model-serve") / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "model.serve",
                "--artifact",
                str(model_artifact),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_ping(url, process, SERVER_START_SECONDS)
        except Exception:
            process.kill()
            process.wait()
            raise RuntimeError(log.read_text(errors="replace")) from None
        try:
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
