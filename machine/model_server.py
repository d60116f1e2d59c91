"""`python -m serving.serve` as a child process: the local stand-in for SageMaker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from machine.artifact import REPO_ROOT
from machine.ports import free_port

START_TIMEOUT_SECONDS = 120
PING_TIMEOUT_SECONDS = 2.0

# How the server ends with us, whatever ends us:
# - our Ctrl-C or SIGTERM: our handler stops it in order (`stop`, to its process group);
# - our SIGKILL or a crash, which no handler sees: the kernel sends it SIGTERM (Linux's
#   PR_SET_PDEATHSIG, = 1), set by this shim, which then execs the server's command in
#   the same process. A pipe the server watches would work too, but needs the server's
#   cooperation (serving.serve, and the serving image's `serve`); this needs none. A shim
#   rather than subprocess's preexec_fn, which is unsafe once threads exist. It fires when
#   the thread that started the server ends: start servers from the main thread.
# Sharing our process group instead would not do: a SIGTERM or SIGKILL to our pid alone
# still orphans it, and a terminal's Ctrl-C would kill it under the requests in flight.
_DIE_WITH_PARENT = """\
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)  # the parent was already gone before prctl
os.execvp(sys.argv[2], sys.argv[2:])
"""


class ModelServerError(Exception):
    """The model server did not start or stopped on its own."""


def ping(url: str, timeout: float = PING_TIMEOUT_SECONDS) -> str | None:
    """None when `GET url/ping` answers 200; else what went wrong, in a few words."""
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=timeout) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except urllib.error.URLError as error:
        return f"no answer to GET /ping ({getattr(error.reason, 'strerror', None) or error.reason})"
    except (OSError, ValueError) as error:
        return f"no answer to GET /ping ({error})"
    return None if status == 200 else f"GET /ping answered {status}, not 200"


def dying_with_us(command: list[str]) -> list[str]:
    """`command`, run so that it ends when this process does (on Linux)."""
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *command]


class ModelServer:
    """Start, watch and stop one model server on a free loopback port."""

    description = "python -m serving.serve, the endpoint stand-in"

    def __init__(
        self,
        artifact: Path,
        host: str = "127.0.0.1",
        environment: Mapping[str, str] | None = None,
    ) -> None:
        """`environment`: variables set for the server beyond this process's own (a
        transform job's, `serving.batch_transform`)."""
        self.artifact = artifact
        self.host = host
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.environment = dict(environment or {})
        self._process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        """The command that runs the server in the foreground on `self.port`."""
        return [
            sys.executable,
            "-m",
            "serving.serve",
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
        self,
        timeout: float = START_TIMEOUT_SECONDS,
        output: IO[bytes] | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        """Start the server and wait until `GET /ping` answers 200 (or `cancelled()`, which
        stops it). Its output goes to `output` (a file), or to this process's own."""
        # Its own process group: Ctrl-C in the terminal reaches only us, so the requests in
        # flight can finish before we stop the server (see `_DIE_WITH_PARENT` for the rest).
        self._process = subprocess.Popen(  # noqa: S603
            dying_with_us(self.command()),
            cwd=REPO_ROOT,
            process_group=0,
            stdout=output,
            stderr=output,
            env={**os.environ, **self.environment},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ModelServerError(
                    f"the model server exited with code {self._process.returncode} (see above)"
                )
            if cancelled():
                self.stop()
                raise ModelServerError("stopped while the model server was starting")
            if ping(self.url) is None:
                return
            time.sleep(0.1)
        self.stop()
        raise ModelServerError(f"the model server did not answer /ping within {timeout:.0f} s")

    @property
    def exit_code(self) -> int | None:
        """None while it runs; its exit code once it has stopped."""
        return None if self._process is None else self._process.poll()

    def stop(self, grace: float = 10) -> None:
        """SIGTERM (it finishes what it is doing), SIGKILL after `grace` seconds: to its
        whole process group, so that processes of its own (workers) end with it."""
        if self._process is None or self._process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self._process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """End it at once (SIGKILL), without waiting for anything."""
        if self._process is not None and self._process.poll() is None:
            self._signal(signal.SIGKILL)
            self._process.wait()

    def _signal(self, sig: signal.Signals) -> None:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
            os.killpg(self._process.pid, sig)
