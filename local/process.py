"""`python -m local` in a child process, as a user starts it: on ports the OS picks, its
URLs read from what it prints. For what drives the runtime from outside: the benchmarks
(`bench/keep_alive.py`, `bench/local_load.py`, `bench/batch.py`) and the tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from machine.artifact import REPO_ROOT

START_SECONDS = 120


@dataclass
class LocalRuntime:
    process: subprocess.Popen
    site_url: str = ""
    """The one origin: the web UI, and the API under /api/ with the origin header added."""
    direct_url: str = ""
    """The API called directly, the execute-api stand-in: `{direct_url}/predict`."""
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    data_dir: Path | None = None
    """`--data-dir`: the prediction records (`predictions.sqlite3`) and the labels."""

    @property
    def predictions_file(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "predictions.sqlite3"

    @property
    def api_url(self) -> str:
        """The API through the site, as the page calls it: `{api_url}/predict`."""
        return f"{self.site_url}/api"

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def logged(self, text: str, timeout: float = 5) -> bool:
        """Whether a line with `text` is printed within `timeout` (the reader may lag)."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in list(self.lines)):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        if self.reader is not None:
            self.reader.join(5)  # every line printed before exit is in `lines`
        return code


def _drain(runtime: LocalRuntime, ready: threading.Event) -> None:
    assert runtime.process.stdout is not None
    for raw in runtime.process.stdout:
        line = raw.rstrip("\n")
        runtime.lines.append(line)
        if match := re.match(r"Site\s+(http://\S+)", line):
            runtime.site_url = match.group(1)
        elif match := re.match(r"API\s+(http://\S+)/predict", line):
            runtime.direct_url = match.group(1)
        elif line.startswith("Ready:"):
            ready.set()
    ready.set()


def launch(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 (this interpreter, our own module)
        [sys.executable, "-m", "local", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )


@contextmanager
def local_runtime(
    artifact: Path,
    extra: Sequence[str] = (),
    env: dict[str, str] | None = None,
    data_dir: Path | None = None,
) -> Iterator[LocalRuntime]:
    """A running `python -m local --artifact ...` on ports the OS picks, keeping its records
    in `data_dir` (a temporary directory by default: never the repository's build/)."""
    if data_dir is None:
        with (
            tempfile.TemporaryDirectory(prefix="local-data-") as scratch,
            local_runtime(artifact, extra, env, Path(scratch)) as runtime,
        ):
            yield runtime
        return
    arguments = ["--artifact", str(artifact), "--port", "0", "--api-port", "0"]
    process = launch([*arguments, "--data-dir", str(data_dir), *extra], env)
    runtime = LocalRuntime(process, data_dir=data_dir)
    ready = threading.Event()
    runtime.reader = threading.Thread(target=_drain, args=(runtime, ready), daemon=True)
    runtime.reader.start()
    try:
        deadline = time.monotonic() + START_SECONDS
        while not ready.wait(0.1):
            if time.monotonic() > deadline:
                raise TimeoutError(f"python -m local was not ready:\n{runtime.output}")
        if process.poll() is not None or not (runtime.site_url and runtime.direct_url):
            raise RuntimeError(f"python -m local did not start:\n{runtime.output}")
        yield runtime
    finally:
        if process.poll() is None:
            runtime.stop()
