"""`python -m batch` as a user runs it off the happy path: output paths that cannot be
written, outcome folders around the input, messages that point the right way."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from machine.ports import free_port
from tests.batch.standin import stand_in
from tests.batch.support import batch_cli, oversized_jpeg, photo, write


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


@pytest.mark.parametrize("out", [".", ".."])
def test_run_refuses_an_out_that_holds_dir(tmp_path, out):
    folder = write(tmp_path / "imgs" / "sub dir", {"a.jpg": photo()})
    refused = batch_cli("run", str(folder), "--out", str(folder / out))
    assert refused.returncode == 2
    assert one_line(refused).startswith(f"error: --out {folder / out}: holds DIR")
    assert not (tmp_path / "imgs" / "summary.json").exists()


def test_outcomes_a_run_wrote_around_the_input_are_never_input(tmp_path):
    """A run of an earlier version wrote into a parent of its DIR: in DIR itself (and any
    folder along a file's path) the marked folder's outcome entries are not images, its
    other files are."""
    imgs = write(
        tmp_path / "imgs",
        {
            "sub dir/a.jpg": photo(),
            "results/sub dir/a.jpg.json": b"{}",
            "failed/sub dir/b.jpg.json": b"{}",
            "model_labels/0123.json": b"[]",
            "summary.json": b"{}",
            "model-server.log": b"started",
            ".batch-outcomes": b"",
            "deeper/c.jpg": photo(),
            "deeper/.batch-outcomes": b"",
            "deeper/review/c.jpg.json": b"{}",
        },
    )
    with stand_in() as model:
        done = batch_cli(
            "run", str(imgs), "--out", str(tmp_path / "out5"), "--model-server", model.url
        )
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "out5" / "summary.json").read_text())
    assert (document["files"], document["counts"]["review"]) == (2, 2)
    assert not (tmp_path / "out5" / "failed").exists()


def test_outcome_files_are_readable_by_others_like_any_file(tmp_path):
    from pipeline.storage import LocalStorage

    out = LocalStorage(tmp_path)
    out.write_json("summary.json", {"counts": {}})
    out.write_json("results/a.jpg.json", {})
    for name in ("summary.json", "results/a.jpg.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644


@pytest.mark.parametrize(
    ("size", "said"),
    [
        (3 * 1024 * 1024 + 10, "pass --max-image-bytes up to 4194304"),
        (5 * 1024 * 1024, "more than --max-image-bytes allows (4194304"),
    ],
)
def test_a_photo_over_the_limit_names_the_flag_that_raises_it(tmp_path, size, said):
    folder = write(tmp_path / "in", {"big.jpg": oversized_jpeg(size)})
    with stand_in() as model:
        done = batch_cli(
            "run", str(folder), "--out", str(tmp_path / "out"), "--model-server", model.url
        )
    assert done.returncode == 0, done.stderr
    failure = json.loads((tmp_path / "out" / "failed" / "big.jpg.json").read_text())
    assert failure["error"]["code"] == "payload_too_large"
    assert said in failure["error"]["message"]
    assert "scale it down" in failure["error"]["message"]


def test_run_says_errors_in_one_style_as_model_package_does(tmp_path):
    """argparse's own usage errors carry its prefix after the usage; every other error
    (the folders, the flags' values, the model server) is one line `error: …`."""
    folder = write(tmp_path / "in", {"a.jpg": photo()})
    taken = tmp_path / "taken"
    taken.write_text("mine")
    dead = f"http://127.0.0.1:{free_port('127.0.0.1')}"
    for args in (
        [str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
        [str(folder), "--out", str(taken)],
        [str(folder), "--out", str(tmp_path / "o"), "--max-image-bytes", "0"],
        [str(folder), "--out", str(tmp_path / "o"), "--model-server", dead],
        [str(folder), "--out", str(tmp_path / "o"), "--artifact", str(taken)],
    ):
        refused = batch_cli("run", *args)
        assert refused.returncode in (1, 2)
        assert one_line(refused).startswith("error: "), refused.stderr
    parsing = batch_cli("run", str(folder), "--out", str(tmp_path / "o"), "--workers", "0")
    assert parsing.returncode == 2
    assert parsing.stderr.splitlines()[-1].startswith(
        "python -m batch run: error: argument --workers"
    )


def test_the_advice_for_a_large_photo_works_as_given(tmp_path):
    folder = write(tmp_path / "in", {"big.jpg": oversized_jpeg(), "a.jpg": photo()})
    out = tmp_path / "out"
    with stand_in() as model:
        run = ("run", str(folder), "--out", str(out), "--model-server", model.url)
        assert batch_cli(*run).returncode == 0
        assert (out / "failed" / "big.jpg.json").is_file()
        again = batch_cli(*run, "--max-image-bytes", "4194304")
    assert again.returncode == 0, again.stderr
    document = json.loads((out / "summary.json").read_text())
    assert document["this_run"]["processed"] == 1
    assert (out / "review" / "big.jpg.json").is_file()
    assert not (out / "failed" / "big.jpg.json").exists()
