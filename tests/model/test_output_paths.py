"""Output paths and input files of `model.package` and `model.finetune`, off the happy
path: a bad `--out` is one line and exit 2 before any work starts, a failed write leaves
no `.partial` file, and a weights file torch cannot read is one line, not torch's text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from artifact.archive import write_reproducible_tar_gz
from artifact.output import OutputPathError, check_output_path, write_whole
from tests.model.datasets import make_dataset

ROOT = Path(__file__).resolve().parents[2]
EXIT_USAGE = 2


def run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == EXIT_USAGE, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def bad_outs(tmp_path: Path) -> list[tuple[Path, str]]:
    """(an --out, what its message says) for each way an output path can be unusable."""
    folder = tmp_path / "existing"
    folder.mkdir(parents=True)
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    return [
        (folder, "is a folder"),
        (Path("/proc/nope/out.bin"), "cannot create its folder /proc/nope"),
        (Path("/proc/self/out.bin"), "cannot write in /proc/self"),
        (a_file / "out.bin", "is a file, not a folder"),
        (Path("/dev/null"), "is not a regular file"),
    ]


def test_check_output_path_accepts_a_new_file_and_makes_its_folder(tmp_path):
    out = tmp_path / "new" / "deeper" / "model.tar.gz"
    check_output_path(out)
    assert out.parent.is_dir()
    assert list(out.parent.iterdir()) == [], "the probe leaves nothing behind"
    out.write_bytes(b"old")
    check_output_path(out)  # an existing file is replaced


def test_check_output_path_names_the_flag_and_the_cause(tmp_path):
    for out, message in bad_outs(tmp_path):
        with pytest.raises(OutputPathError) as raised:
            check_output_path(out, "--out")
        assert str(raised.value).startswith(f"--out {out}: "), raised.value
        assert message in str(raised.value)


def test_a_failed_write_leaves_no_partial_file(tmp_path):
    def fail_midway(file) -> None:
        file.write(b"half")
        raise KeyboardInterrupt

    out = tmp_path / "model.tar.gz"
    with pytest.raises(KeyboardInterrupt):
        write_whole(out, fail_midway)
    assert list(tmp_path.iterdir()) == []


def test_an_archive_over_a_folder_leaves_no_partial_file(tmp_path):
    """The rename at the end fails: the written bytes go, nothing is left beside it."""
    (tmp_path / "model.tar.gz").mkdir()
    with pytest.raises(IsADirectoryError):
        write_reproducible_tar_gz({"metadata.json": b"{}"}, tmp_path / "model.tar.gz")
    assert [path.name for path in tmp_path.iterdir()] == ["model.tar.gz"]


@pytest.mark.parametrize("source", ["weights", "onnx"])
def test_package_refuses_a_bad_out_before_it_starts(tmp_path, source):
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"checked after --out")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    inputs = (
        ["--weights", "random"]
        if source == "weights"
        else ["--onnx", str(onnx_file), "--labels", str(labels)]
    )
    for out, message in bad_outs(tmp_path / "outs"):
        result = run("model.package", *inputs, "--out", str(out))
        line = one_error_line(result)
        assert line.startswith(f"error: --out {out}: "), line
        assert message in line
        assert result.stdout == "", "nothing was loaded, exported or quantized"
    assert not list((tmp_path / "outs").rglob("*.partial"))


@pytest.mark.slow
def test_finetune_refuses_a_bad_out_before_it_trains(tmp_path):
    data = make_dataset(tmp_path / "photos", ("cat", "coffee"), 2)
    for out, message in bad_outs(tmp_path / "outs"):
        result = run(
            "model.finetune", "--data", str(data), "--out", str(out), "--backbone", "random"
        )
        line = one_error_line(result)
        assert line.startswith(f"error: --out {out}: "), line
        assert message in line
        assert result.stdout == "", "no photos were read, nothing was trained"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a checkpoint", "not a PyTorch state_dict (Unsupported operand"),
        ("a whole pickled network", "not a PyTorch state_dict (Unsupported global: GLOBAL "),
        ("/proc/self/mem", "cannot read it (Input/output error)"),
    ],
)
def test_an_unusable_weights_file_is_one_line(tmp_path, content, message):
    if content == "/proc/self/mem":
        weights = Path(content)  # a regular file that no read succeeds on, root's included
    else:
        weights = tmp_path / "weights.pt"
        if isinstance(content, bytes):
            weights.write_bytes(content)
        else:
            import torch
            import torchvision

            torch.save(torchvision.models.get_model("mobilenet_v2", num_classes=3), weights)
    out = tmp_path / "model.tar.gz"
    line = one_error_line(run("model.package", "--weights", str(weights), "--out", str(out)))
    assert line.startswith(f"error: --weights {weights}: {message}"), line
    assert not out.exists()


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("{tmp}/newdir/", "ends in /, which names a folder; give the archive's file name"),
        ("{tmp}/x.zip", "is not a .tar.gz name; SageMaker and the stack's model key"),
    ],
)
def test_package_refuses_an_out_that_is_not_an_archive_name(tmp_path, out, message):
    """`--out /tmp/newdir/` used to write a file named `newdir`, `--out x.zip` a tar.gz
    named .zip."""
    out = out.format(tmp=tmp_path)
    line = one_error_line(run("model.package", "--weights", "random", "--out", out))
    assert line.startswith(f"error: --out {out}: {message}"), line
    assert list(tmp_path.iterdir()) == [], "nothing written"
