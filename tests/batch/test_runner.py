"""`python -m batch run`: a folder of real photos and bad files, each to exactly one of
results/, review/, failed/, the summary's counts, resuming without redoing anything."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from batch.labels import labels_path
from batch.runner import Progress, folder_jobs, outcome_counts, outcome_keys, process_new, summary
from machine.ports import free_port
from pipeline.storage import LocalStorage
from proxy.labels import write_labels_file
from tests.batch.standin import stand_in
from tests.batch.support import (
    LABELS,
    VERSION,
    FakeRuntime,
    answer,
    batch_cli,
    classifier,
    client_error,
    huge_declared_png,
    model_error,
    oversized_jpeg,
    photo,
    truncated_jpeg,
    write,
)

FOLDERS = ("results", "review", "failed")


def mixed_folder(root: Path) -> Path:
    """Real photos in every format the API takes, and every kind of bad file."""
    return write(
        root,
        {
            "cat.jpg": photo("chelsea"),
            "coffee.png": photo("coffee", "PNG"),
            "trips/astronaut.webp": photo("astronaut", "WEBP"),
            "trips/china.gif": photo("china", "GIF"),
            "camera-gray.jpg": photo("camera"),
            "notes.txt": b"not a photo at all\n",
            "broken.jpg": truncated_jpeg(),
            "bomb.png": huge_declared_png(),
            "huge.jpg": oversized_jpeg(),
            "empty.jpg": b"",
            ".DS_Store": b"\x00\x00\x00\x01Bud1",
        },
    )


EXPECTED_FAILURES = {
    "notes.txt": "not_an_image",
    "broken.jpg": "corrupt_image",
    "bomb.png": "image_too_large",
    "huge.jpg": "payload_too_large",
    "empty.jpg": "empty_body",
}
PHOTOS = ("cat.jpg", "coffee.png", "trips/astronaut.webp", "trips/china.gif", "camera-gray.jpg")


def fake_model(body: bytes, content_type: str) -> bytes | Exception:
    """JPEGs confident, other photos not; what the real model refuses, refused."""
    if body == truncated_jpeg():
        return model_error(400, "corrupt_image", "The JPEG image is truncated or corrupt.")
    if body == huge_declared_png():
        return model_error(413, "image_too_large", "The image has too many pixels.")
    return answer(0.97 if content_type == "image/jpeg" else 0.5)


def where(out: Path, name: str) -> list[str]:
    return [folder for folder in FOLDERS if (out / folder / f"{name}.json").is_file()]


def test_every_file_ends_in_exactly_one_place_and_a_second_pass_does_nothing(tmp_path):
    source = LocalStorage(mixed_folder(tmp_path / "in"))
    out = LocalStorage(tmp_path / "out")
    runtime = FakeRuntime(fake_model)

    first = process_new(source, out, classifier(runtime))

    assert first.count == 10
    assert dict(first.processed) == {"result": 2, "review": 3, "failed": 5}
    for name in PHOTOS:
        assert len(where(out.root, name)) == 1
    for name, code in EXPECTED_FAILURES.items():
        assert where(out.root, name) == ["failed"]
        assert out.read_json(f"failed/{name}.json")["error"]["code"] == code
    assert where(out.root, ".DS_Store") == []
    # A file, not a request: the message says what is wrong with it.
    empty = out.read_json("failed/empty.jpg.json")["error"]["message"]
    assert empty == "The file is empty (0 bytes)."
    calls = len(runtime.calls)

    again = process_new(source, out, classifier(runtime))
    assert (again.count, again.skipped) == (0, 10)
    assert len(runtime.calls) == calls

    document = summary(list(folder_jobs(source, out)), out, again, {})
    assert document["files"] == 10
    assert sum(document["counts"].values()) == 10
    assert document["counts"] == {"results": 2, "review": 3, "failed": 5, "pending": 0}
    assert document["failed_codes"] == dict(
        sorted({c: 1 for c in EXPECTED_FAILURES.values()}.items())
    )


def test_a_changed_file_and_a_retryable_failure_are_done_again(tmp_path):
    source = LocalStorage(write(tmp_path / "in", {"a.jpg": photo(), "b.jpg": photo("coffee")}))
    out = LocalStorage(tmp_path / "out")
    busy = FakeRuntime(lambda *_: client_error("ThrottlingException", 400))
    first = process_new(source, out, classifier(busy), retries=())
    assert first.processed["failed"] == 2
    assert out.read_json("failed/a.jpg.json")["retryable"] is True

    (tmp_path / "in" / "b.jpg").write_bytes(b"now a text file")
    working = FakeRuntime(fake_model)
    second = process_new(source, out, classifier(working), retries=())
    assert dict(second.processed) == {"result": 1, "failed": 1}
    assert where(out.root, "a.jpg") == ["results"]
    assert out.read_json("failed/b.jpg.json")["error"]["code"] == "not_an_image"


def test_files_still_being_copied_wait_for_the_next_pass(tmp_path):
    source = LocalStorage(write(tmp_path / "in", {"old.jpg": photo(), "new.jpg": photo()}))
    old = time.time() - 60
    os.utime(tmp_path / "in" / "old.jpg", (old, old))
    out = LocalStorage(tmp_path / "out")
    watched = process_new(source, out, classifier(FakeRuntime(fake_model)), settle_seconds=5)
    assert (watched.count, watched.waiting) == (1, 1)
    assert where(out.root, "new.jpg") == []


def test_an_out_folder_inside_the_input_is_not_input(tmp_path):
    root = write(tmp_path / "in", {"a.jpg": photo()})
    source = LocalStorage(root, exclude=root / "out")
    out = LocalStorage(root / "out")
    process_new(source, out, classifier(FakeRuntime(fake_model)))
    assert process_new(source, out, classifier(FakeRuntime(fake_model))).skipped == 1
    assert outcome_counts(folder_jobs(source, out), outcome_keys(out))[0] == 1


def test_a_stop_leaves_the_rest_pending(tmp_path):
    source = LocalStorage(write(tmp_path / "in", {"a.jpg": photo(), "b.jpg": photo()}))
    out = LocalStorage(tmp_path / "out")
    stopped = process_new(
        source, out, classifier(FakeRuntime(fake_model)), should_stop=lambda: True
    )
    assert stopped.stopped
    assert stopped.count == 0
    assert outcome_counts(folder_jobs(source, out), outcome_keys(out))[1]["pending"] == 2


def test_progress_is_plain_text_lines_off_a_terminal():
    stream = io.StringIO()
    ticks = iter(range(100))
    bar = Progress(20, stream, clock=lambda: float(next(ticks)))
    for n in range(20):
        bar.update("failed" if n % 5 == 0 else "review")
    bar.finish()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # the first, one per tenth, the last
    assert lines[-1].startswith("[########################] 20/20 100%")
    assert "review 16  failed 4" in lines[-1]
    assert "\r" not in stream.getvalue()


def snapshot(out: Path) -> dict[str, int]:
    return {
        str(path.relative_to(out)): path.stat().st_mtime_ns
        for folder in FOLDERS
        for path in (out / folder).rglob("*.json")
    }


@pytest.mark.slow
def test_run_against_the_real_model_server(tmp_path, model_server_url, model_artifact):
    folder = mixed_folder(tmp_path / "in")
    out = tmp_path / "out"

    first = batch_cli("run", str(folder), "--out", str(out), "--model-server", model_server_url)

    assert first.returncode == 0, first.stderr
    assert "10/10 100%" in first.stderr  # the progress bar
    document = json.loads((out / "summary.json").read_text())
    # Untrained weights are never confident: every photo is for review.
    assert document["counts"] == {"results": 0, "review": 5, "failed": 5, "pending": 0}
    assert document["files"] == sum(document["counts"].values()) == 10
    assert document["this_run"]["processed"] == 10
    assert document["this_run"]["latency_ms"]["p95"] >= document["this_run"]["latency_ms"]["p50"]
    assert document["this_run"]["images_per_second"] > 0
    for name in PHOTOS:
        assert where(out, name) == ["review"]
        item = json.loads((out / "review" / f"{name}.json").read_text())
        assert len(item["predictions"]) == 5
        assert item["model"]["weights"] == "random"
    for name, code in EXPECTED_FAILURES.items():
        assert where(out, name) == ["failed"], name
        failure = json.loads((out / "failed" / f"{name}.json").read_text())
        assert failure["error"]["code"] == code, name
    before = snapshot(out)

    # Nothing left to do: no model server is even started (no log), nothing rewritten.
    second = batch_cli("run", str(folder), "--out", str(out), "--artifact", str(model_artifact))
    assert second.returncode == 0, second.stderr
    again = json.loads((out / "summary.json").read_text())
    assert again["this_run"]["processed"] == 0
    assert again["this_run"]["skipped"] == 10
    assert again["counts"] == document["counts"]
    assert snapshot(out) == before
    assert not (out / "model-server.log").exists()

    # A new photo: a server of its own is started on the archive, whose labels are kept.
    (folder / "later.jpg").write_bytes(photo("rocket"))
    third = batch_cli(
        "run", str(folder), "--out", str(out), "--artifact", str(model_artifact), "--threshold", "0"
    )
    assert third.returncode == 0, third.stderr
    latest = json.loads((out / "summary.json").read_text())
    assert latest["this_run"]["processed"] == 1
    assert latest["counts"] == {"results": 1, "review": 5, "failed": 5, "pending": 0}
    assert where(out, "later.jpg") == ["results"]
    version = json.loads((out / "results" / "later.jpg.json").read_text())["model"]["version"]
    assert latest["model_version"] == document["model_version"] == version
    assert len(json.loads(labels_path(out, version).read_text())) == 1000


def test_usage_errors_exit_2(tmp_path):
    missing = batch_cli("run", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert missing.returncode == 2
    assert "no such folder" in missing.stderr
    no_archive = batch_cli(
        "run", str(tmp_path), "--out", str(tmp_path / "o"), "--artifact", str(tmp_path / "x.tgz")
    )
    assert no_archive.returncode == 2
    assert "no model archive" in no_archive.stderr
    assert batch_cli("run", str(tmp_path), "--out", str(tmp_path), "--workers", "0").returncode == 2


def test_a_file_that_is_no_archive_is_named_once(tmp_path):
    (tmp_path / "in").mkdir()
    bogus = tmp_path / "notes.tar.gz"
    bogus.write_text("not an archive")
    refused = batch_cli(
        "run", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--artifact", str(bogus)
    )
    assert refused.returncode == 1
    assert refused.stderr.startswith(f"error: {bogus} is not a model archive")
    assert len(refused.stderr.splitlines()) == 1


def a_few_photos(folder: Path) -> Path:
    return write(
        folder, {"a.jpg": photo(), "b.jpg": photo("coffee"), "c.png": photo("rocket", "PNG")}
    )


def test_a_dead_model_server_is_said_before_any_work(tmp_path):
    folder, out = a_few_photos(tmp_path / "in"), tmp_path / "out"
    closed = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    with stand_in(ping_status=503) as failing:
        for url, said in ((closed, "Connection refused"), (failing.url, "answered 503, not 200")):
            refused = batch_cli("run", str(folder), "--out", str(out), "--model-server", url)
            assert refused.returncode == 1
            assert refused.stderr.startswith(f"error: --model-server {url}: "), refused.stderr
            assert said in refused.stderr
            assert len(refused.stderr.splitlines()) == 1
            assert not failing.called.is_set()
            assert not (out / "summary.json").exists()
    typo = batch_cli("run", str(folder), "--out", str(out), "--model-server", "localhost:8080")
    assert typo.returncode == 2
    assert "--model-server localhost:8080: not a URL like http://HOST:PORT" in typo.stderr


def test_a_run_against_a_stand_in_model_server(tmp_path):
    folder, out = a_few_photos(tmp_path / "in"), tmp_path / "out"
    with stand_in() as model:
        done = batch_cli("run", str(folder), "--out", str(out), "--model-server", model.url + "/")
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "summary.json").read_text())["counts"]["review"] == 3


def test_outcome_folders_inside_the_input_are_never_input(tmp_path):
    folder = a_few_photos(tmp_path / "in")
    with stand_in() as model:

        def run_into(out: str) -> dict:
            done = batch_cli(
                "run", str(folder), "--out", str(folder / out), "--model-server", model.url
            )
            assert done.returncode == 0, done.stderr
            return json.loads((folder / out / "summary.json").read_text())

        assert run_into("out")["this_run"]["processed"] == 3
        again = run_into("out")
        assert (again["files"], again["this_run"]["processed"]) == (3, 0)
        # Another --out: the first run's JSON files and log are not images to classify.
        other = run_into("other")
        assert (other["files"], other["counts"]["failed"]) == (3, 0)
        # Nor are those of a run before the folders were marked: its summary.json says so.
        (folder / "out" / ".batch-outcomes").unlink()
        (folder / "other" / ".batch-outcomes").unlink()
        assert run_into("third")["files"] == 3


def test_a_rerun_with_another_model_is_refused_until_reclassify(tmp_path):
    folder, out = a_few_photos(tmp_path / "in"), tmp_path / "out"
    new = "0123456789ab"

    def run(model_url: str, *flags: str) -> subprocess.CompletedProcess:
        return batch_cli("run", str(folder), "--out", str(out), "--model-server", model_url, *flags)

    with stand_in() as old_model:
        assert run(old_model.url).returncode == 0
    assert json.loads((out / "summary.json").read_text())["model_version"] == VERSION
    write_labels_file(out / "model_labels", VERSION, LABELS)
    resolved = batch_cli("review", "resolve", "a.jpg", "--label", "lynx", "--out", str(out))
    assert resolved.returncode == 0, resolved.stderr
    before = snapshot(out)

    with stand_in(version=new) as new_model:
        refused = run(new_model.url)
        assert refused.returncode == 2
        assert refused.stderr == (
            f"error: {out} holds outcomes of another model (2 of model version {VERSION}); "
            f"this run's model is version {new}. Pass --reclassify to classify those files "
            "again with it, or choose another --out\n"
        )
        assert snapshot(out) == before

        redone = run(new_model.url, "--reclassify")
    assert redone.returncode == 0, redone.stderr
    document = json.loads((out / "summary.json").read_text())
    assert document["model_version"] == new
    assert document["this_run"]["processed"] == 2
    for name in ("b.jpg", "c.png"):
        assert json.loads((out / "review" / f"{name}.json").read_text())["model"]["version"] == new
    # A person's decision is not the model's outcome: it stays.
    assert json.loads((out / "results" / "a.jpg.json").read_text())["reviewed"]["label"] == "lynx"


@pytest.mark.slow
def test_another_archive_is_refused_before_its_server_starts(tmp_path, model_artifact):
    folder, out = a_few_photos(tmp_path / "in"), tmp_path / "out"
    with stand_in() as model:
        assert (
            batch_cli("run", str(folder), "--out", str(out), "--model-server", model.url).returncode
            == 0
        )
    refused = batch_cli("run", str(folder), "--out", str(out), "--artifact", str(model_artifact))
    assert refused.returncode == 2
    assert f"(3 of model version {VERSION})" in refused.stderr
    assert "--reclassify" in refused.stderr
    assert not (out / "model-server.log").exists()
