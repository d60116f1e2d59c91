"""`python -m local --inbox DIR`: a folder that classifies what arrives, as the batch
pipeline's S3 inbox does, against the runtime's own model server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from batch.runner import ENDPOINT_NAME, runtime_environment
from local.inbox import InboxWatcher
from local.process import local_runtime
from tests.batch.standin import stand_in
from tests.proxy.photos import encoded

pytestmark = pytest.mark.slow

WAIT_SECONDS = 60


def _outcome(out: Path, name: str) -> tuple[str, dict] | None:
    for folder in ("results", "review", "failed"):
        path = out / folder / f"{name}.json"
        if path.is_file():
            return folder, json.loads(path.read_text())
    return None


def test_images_dropped_into_the_inbox_land_in_exactly_one_outcome(model_artifact, tmp_path):
    inbox = tmp_path / "inbox"
    with local_runtime(model_artifact, ["--inbox", str(inbox)]) as runtime:
        assert runtime.logged("Inbox")
        (inbox / "cat.jpg").write_bytes(encoded("chelsea"))
        (inbox / "notes.txt").write_text("not an image")
        out = runtime.data_dir / "batch"
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            outcomes = {name: _outcome(out, name) for name in ("cat.jpg", "notes.txt")}
            if all(outcomes.values()):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"no outcome after {WAIT_SECONDS} s:\n{runtime.output}")

    cat_folder, cat = outcomes["cat.jpg"]
    assert cat_folder in ("results", "review")
    assert len(cat["predictions"]) == 5
    notes_folder, notes = outcomes["notes.txt"]
    assert notes_folder == "failed"
    assert notes["error"]["code"] == "not_an_image"  # the API's code for it
    # One line per file, with its outcome.
    assert runtime.logged("inbox: notes.txt -> failed/notes.txt.json (not_an_image)")
    assert runtime.logged(f"inbox: cat.jpg -> {cat_folder}/cat.jpg.json (")


def test_a_stop_gives_up_the_retries_in_flight(model_artifact, tmp_path, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_ENDPOINT_NAME", ENDPOINT_NAME)
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    with stand_in(status=503) as model, runtime_environment(model.url):
        watcher = InboxWatcher(inbox, out, model_artifact)
        watcher.start()
        (inbox / "cat.jpg").write_bytes(encoded("chelsea"))
        assert model.called.wait(WAIT_SECONDS)
        started = time.monotonic()
        watcher.stop()
        # Not the minute of retries a failing model gets before its image fails.
        assert time.monotonic() - started < 10
    assert _outcome(out, "cat.jpg") is None  # pending: the next start classifies it
