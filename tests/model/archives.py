"""Archives built by the packaging CLI, once per change of the model sources, shared by
every test that needs them (tests/model and tests/container), and a real `serving.serve`
to run them.

Building an architecture takes 10-40 s of the two shared cores, so each archive is built
by `python -m model.package` in a child process (torch stays out of the test process),
cached under build/test-cache by a hash of model/ and the command, and reused by later
sessions until the sources change.
"""

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
from dataclasses import dataclass
from pathlib import Path

from machine.ports import free_port
from tests.conftest import MODEL_SOURCES

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / "test-cache"
SOURCES = MODEL_SOURCES
BUILD_SECONDS = 900
START_SECONDS = 60
STALE_SECONDS = 600


def _digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def sources_key() -> str:
    return _digest(
        *(
            path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes()
            for path in SOURCES
            if path.is_file()
        )
    )


def package(*args: str, key_files: tuple[Path, ...] = ()) -> Path:
    """`python -m model.package ARGS --out CACHED`: the cached archive, built if needed.
    ``key_files`` are inputs (weights, labels) whose bytes the cache key must cover."""
    sources = sources_key()
    inputs = _digest(*(arg.encode() for arg in args), *(p.read_bytes() for p in key_files))
    cached = CACHE / f"archive-{sources}-{inputs}.tar.gz"
    if cached.is_file():
        return cached
    CACHE.mkdir(parents=True, exist_ok=True)
    _prune(sources)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        built = Path(scratch) / "model.tar.gz"
        result = subprocess.run(
            [sys.executable, "-m", "model.package", *args, "--out", str(built)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=BUILD_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"model.package {' '.join(args)} failed:\n{result.stderr}")
        os.replace(built, cached)
    return cached


def _prune(sources: str) -> None:
    """Drop archives of older sources, once no session can still be opening them."""
    for stale in CACHE.glob("archive-*.tar.gz"):
        with contextlib.suppress(FileNotFoundError):  # another session pruned it first
            old = not stale.name.startswith(f"archive-{sources}-")
            if old and time.time() - stale.stat().st_mtime > STALE_SECONDS:
                stale.unlink()


def arch_archive(arch: str, precision: str = "fp32") -> Path:
    """A random-weights archive of ``arch``. fp32 by default: the exact export, which
    every architecture builds (int8 is refused for some, see docs/model.md)."""
    return package("--arch", arch, "--weights", "random", "--precision", precision)


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def peak_rss_mib(self) -> float:
        """The server's peak resident memory so far (VmHWM)."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024


@contextlib.contextmanager
def served(archive: Path) -> Iterator[Server]:
    """`python -m serving.serve --artifact ARCHIVE` on a free port, as a user starts it."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.serve", "--artifact", str(archive), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    server = Server(f"http://127.0.0.1:{port}", process.pid)
    try:
        deadline = time.monotonic() + START_SECONDS
        while not _ping(server.url):
            if process.poll() is not None:
                raise RuntimeError(f"serving.serve exited: {process.stderr.read().decode()}")
            assert time.monotonic() < deadline, "serving.serve did not answer /ping"
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()


def _ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
