"""`python -m batch run` stopped as users stop it: Ctrl-C (the terminal's SIGINT to the
whole foreground process group), SIGTERM (a service manager, `kill`), twice, and SIGKILL.
Each run is the CLI in a subprocess on a few hundred small images; the checks are its exit
status, its last line, no traceback, `summary.json`, and that no process it started lives
on (its descendants, read from /proc while it runs)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.batch.standin import stand_in
from tests.batch.test_runner import batch_cli
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

IMAGES = 300
EXIT_SECONDS = 60  # a bound for a hung CLI, not a timing: a stop takes about a second
STOPPED = re.compile(r"^stopped: (\d+) done, (\d+) pending; run again to resume$")


def small_images(folder: Path, count: int = IMAGES) -> Path:
    folder.mkdir(parents=True)
    for n in range(count):
        colour = ((n * 37) % 256, (n * 91) % 256, (n * 13) % 256)
        Image.new("RGB", (32, 32), colour).save(folder / f"{n:04}.jpg")
    return folder


def descendants(pid: int) -> set[int]:
    """Every process under `pid`, from /proc (each thread's children)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found |= {child} | descendants(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def outcomes(out: Path) -> int:
    return sum(1 for folder in ("results", "review", "failed") for _ in (out / folder).rglob("*"))


class Run:
    """The CLI in its own session, as a shell runs a foreground job."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "batch", "run", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.children: set[int] = set()

    def wait_for(self, out: Path, count: int) -> None:
        deadline = time.monotonic() + EXIT_SECONDS
        while outcomes(out) < count:
            assert self.process.poll() is None, self.process.communicate()
            assert time.monotonic() < deadline, f"fewer than {count} outcomes"
            self.children |= descendants(self.process.pid)
            time.sleep(0.02)
        self.children |= descendants(self.process.pid)

    def ctrl_c(self) -> None:
        """What a terminal does: SIGINT to the foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def finish(self) -> tuple[int, str, float]:
        started = time.monotonic()
        try:
            _, stderr = self.process.communicate(timeout=EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"still running {EXIT_SECONDS} s after the signal")
        return self.process.returncode, stderr, time.monotonic() - started

    def leftovers(self) -> list[int]:
        deadline = time.monotonic() + 5  # the kernel's SIGTERM to an orphan takes a moment
        while any(alive(pid) for pid in self.children) and time.monotonic() < deadline:
            time.sleep(0.05)
        return sorted(pid for pid in self.children if alive(pid))


@pytest.mark.parametrize(
    ("how", "status", "name"),
    [("ctrl-c", 130, "SIGINT"), ("sigterm", 143, "SIGTERM")],
)
def test_a_stop_finishes_the_images_in_flight_and_says_what_is_pending(
    tmp_path, model_artifact, how, status, name
):
    folder, out = small_images(tmp_path / "in"), tmp_path / "out"
    run = Run(str(folder), "--out", str(out), "--artifact", str(model_artifact))
    run.wait_for(out, 20)
    assert run.children, "the model server is a child of the CLI"
    if how == "ctrl-c":
        run.ctrl_c()
    else:
        run.process.send_signal(signal.SIGTERM)

    code, stderr, _seconds = run.finish()

    assert code == status, stderr
    assert "Traceback" not in stderr
    last = stderr.splitlines()[-1]
    done, pending = map(int, STOPPED.match(last).groups())
    assert done + pending == IMAGES
    assert pending > 0
    document = json.loads((out / "summary.json").read_text())
    assert document["interrupted"] == name
    counts = document["counts"]
    assert counts["pending"] == pending
    assert counts["results"] + counts["review"] + counts["failed"] == done == outcomes(out)
    assert counts["failed"] == 0  # a stop is no image's failure
    assert run.leftovers() == []

    # It resumes where it stopped.
    again = batch_cli("run", str(folder), "--out", str(out), "--artifact", str(model_artifact))
    assert again.returncode == 0, again.stderr
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["this_run"]["processed"] == pending
    assert resumed["interrupted"] is None


def test_the_model_server_ends_with_a_killed_cli(tmp_path, model_artifact):
    folder, out = small_images(tmp_path / "in"), tmp_path / "out"
    run = Run(str(folder), "--out", str(out), "--artifact", str(model_artifact))
    run.wait_for(out, 5)
    run.process.kill()
    run.finish()
    assert run.children
    assert run.leftovers() == []


def test_a_second_ctrl_c_stops_at_once(tmp_path):
    folder, out = small_images(tmp_path / "in", 40), tmp_path / "out"
    with stand_in(delay=30.0) as model:
        run = Run(str(folder), "--out", str(out), "--model-server", model.url)
        assert model.called.wait(EXIT_SECONDS)  # two images in flight, for 30 s
        run.ctrl_c()
        time.sleep(0.5)
        assert run.process.poll() is None, "the first Ctrl-C waits for the images in flight"
        run.ctrl_c()
        code, stderr, seconds = run.finish()
    assert code == 130
    assert "Traceback" not in stderr
    assert stderr.splitlines()[-1] == "stopped at once; run again to resume"
    assert seconds < 10, "it did not wait for the images in flight"


def test_a_stop_gives_up_the_retries_of_a_failing_model(tmp_path):
    folder, out = small_images(tmp_path / "in", 10), tmp_path / "out"
    with stand_in(status=503) as model:
        run = Run(str(folder), "--out", str(out), "--model-server", model.url)
        assert model.called.wait(EXIT_SECONDS)
        time.sleep(1)  # into the retries: several seconds per image before it fails
        run.process.send_signal(signal.SIGTERM)
        code, stderr, _seconds = run.finish()
    assert code == 143, stderr
    assert "Traceback" not in stderr
    assert STOPPED.match(stderr.splitlines()[-1]).groups() == ("0", "10")
    assert json.loads((out / "summary.json").read_text())["counts"]["pending"] == 10
