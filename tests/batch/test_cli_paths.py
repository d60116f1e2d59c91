"""`python -m batch` as a user runs it off the happy path: output paths that cannot be
written, outcome folders around the input, messages that point the right way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from local.ports import free_port
from tests.batch.support import photo, write
from tests.conftest import ROOT


def batch_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "batch", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    return done.stderr


@pytest.mark.parametrize("kind", ["unwritable", "a file"])
def test_run_refuses_an_out_it_cannot_write_before_any_work(tmp_path, kind):
    folder = write(tmp_path / "in", {"a.jpg": photo()})
    out = Path("/proc/nope/o")
    if kind == "a file":
        out = tmp_path / "taken"
        out.write_text("mine")
    # A dead model server would be said first if the check came after it.
    dead = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    refused = batch_cli("run", str(folder), "--out", str(out), "--model-server", dead)
    assert refused.returncode == 2
    assert one_line(refused).startswith(f"error: --out {out}: ")
    if kind == "a file":
        assert "is a file, not a folder" in refused.stderr
        assert out.read_text() == "mine"


def test_export_refuses_an_out_it_cannot_write(tmp_path):
    (tmp_path / "out1").mkdir()
    refused = batch_cli("export", "--from", str(tmp_path / "out1"), "--out", "/proc/nope/t")
    assert refused.returncode == 2
    assert one_line(refused).startswith("error: --out /proc/nope/t: ")


@pytest.mark.parametrize("command", [["list"], ["resolve", "a.jpg", "--label", "cat"]])
def test_review_says_a_file_is_not_a_folder(tmp_path, command):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    refused = batch_cli("review", *command, "--out", str(taken))
    assert refused.returncode == 2
    assert one_line(refused) == f"error: --out {taken}: is a file, not a folder\n"
