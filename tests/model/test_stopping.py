"""Ctrl-C and SIGTERM to `model.package` and `model.finetune`, as a user sends them from
a terminal (to the process group): one line, exit 128 + the signal, no traceback, no
partial file; during torch's import too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.model.datasets import make_dataset

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def stop(command: list[str], sig: signal.Signals, lines: int) -> tuple[int, str]:
    """Start the CLI in a session of its own, signal its group after its first ``lines``
    progress lines, and return its exit status and stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", *command],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        for _ in range(lines):
            assert process.stdout.readline(), "it printed fewer progress lines"
        os.killpg(process.pid, sig)
        _stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode, stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
# Its first line comes before torch's import, its second before the ONNX export.
@pytest.mark.parametrize("lines", [1, 2], ids=["importing-torch", "exporting"])
def test_package_stops_in_one_line(tmp_path, sig, lines):
    out = tmp_path / "out" / "model.tar.gz"
    status, stderr = stop(["model.package", "--weights", "random", "--out", str(out)], sig, lines)
    assert (status, stderr) == (128 + sig, "model.package: stopped; nothing written\n")
    assert list(out.parent.iterdir()) == [], "no archive, no partial file"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_finetune_stops_in_one_line(tmp_path, sig):
    data = make_dataset(tmp_path / "photos", ("cat", "coffee"), 8)
    out = tmp_path / "out" / "weights.pt"
    command = ["model.finetune", "--data", str(data), "--out", str(out), "--backbone", "random"]
    status, stderr = stop([*command, "--epochs", "50"], sig, lines=1)
    assert (status, stderr) == (128 + sig, "model.finetune: stopped; nothing written\n")
    assert list(out.parent.iterdir()) == [], "no weights, labels or partial file"
