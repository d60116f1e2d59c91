"""`python -m model.serve` as a child process: the local stand-in for SageMaker."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from local.artifact import REPO_ROOT
from local.ports import free_port

START_TIMEOUT_SECONDS = 120


class ModelServerError(Exception):
    """The model server did not start or stopped on its own."""


class ModelServer:
    """Start, watch and stop one model server on a free loopback port."""

    description = "python -m model.serve, the endpoint stand-in"

    def __init__(self, artifact: Path, host: str = "127.0.0.1") -> None:
        self.artifact = artifact
        self.host = host
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self._process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """The command that runs the server in the foreground on `self.port`."""
        return [
            sys.executable,
            "-m",
            "model.serve",
            "--artifact",
            str(self.artifact),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]

    def start(
        self, timeout: float = START_TIMEOUT_SECONDS, output: IO[bytes] | None = None
    ) -> None:
        """Start the server and wait until `GET /ping` answers 200. Its output goes to
        `output` (a file), or to this process's own."""
        # Its own process group: Ctrl-C in the terminal reaches only us, and we stop
        # the server in order, after the API has stopped sending it requests.
        self._process = subprocess.Popen(  # noqa: S603
            self.command(), cwd=REPO_ROOT, process_group=0, stdout=output, stderr=output
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ModelServerError(
                    f"the model server exited with code {self._process.returncode} (see above)"
                )
            if self._ping():
                return
            time.sleep(0.1)
        self.stop()
        raise ModelServerError(f"the model server did not answer /ping within {timeout:.0f} s")

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    @property
    def exit_code(self) -> int | None:
        """None while it runs; its exit code once it has stopped."""
        return None if self._process is None else self._process.poll()

    def stop(self, grace: float = 10) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(grace)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
