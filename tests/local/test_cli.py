"""`python -m local` as a user runs it: flags, a busy port, a missing artifact."""

import socket
import subprocess
import sys

import pytest

from local.cli import parse_args
from tests.local.runtime import ROOT


def run_local(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "local", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_defaults():
    args = parse_args([])
    assert (args.site_port, args.api_port, args.host) == (8000, 8001, "127.0.0.1")
    assert args.artifact is None
    assert args.weights is None


@pytest.mark.parametrize(
    "argv",
    [["--site-port", "9000", "--api-port", "9000"], ["--artifact", "a", "--weights", "random"]],
)
def test_contradictory_flags_are_refused(argv):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2


def test_a_port_in_use_is_explained_in_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_local("--api-port", str(port), "--site-port", "0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in lines[0]
    assert "--api-port" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_a_missing_artifact_is_explained_in_one_line(tmp_path):
    missing = tmp_path / "nope.tar.gz"
    result = run_local("--artifact", str(missing), "--site-port", "0", "--api-port", "0")
    assert result.returncode == 1
    assert result.stderr.strip() == f"local: --artifact {missing}: no such file"
