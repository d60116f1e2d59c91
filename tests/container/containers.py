"""podman from the tests: its command line, and a container of the serving image."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass


def podman(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass(frozen=True)
class Container:
    id: str
    port: int
    """SAGEMAKER_BIND_TO_PORT: the port it listens on, in its own network or the host's."""

    @property
    def url(self) -> str:
        """Where the host reaches it (host network); unreachable with no network."""
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        result = podman("logs", self.id)
        return result.stdout + result.stderr

    def exec_python(self, code: str) -> subprocess.CompletedProcess[str]:
        """Run Python inside the running container, as the image's user, like the server."""
        return podman("exec", self.id, "/opt/venv/bin/python", "-c", code)


StartContainer = Callable[..., Container]
"""`start_container(network="host", wait=True, model=<the default archive, extracted>,
options=())`: a new container of the serving image, with more `podman run` options."""
