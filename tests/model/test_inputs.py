"""What the packager reads besides a network: a labels file and preprocessing values
(for imported models), each refused with a message that says what to fix. Fast: no torch
(the preprocessing values are checked without torchvision)."""

from __future__ import annotations

import json

import pytest

from artifact.labels import LabelsError, read_labels
from model.package import main
from model.preprocessing import (
    IMAGENET_DEFAULTS,
    Preprocessing,
    PreprocessingError,
    read_preprocessing_file,
)


def test_labels_one_per_line(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("\n cat \r\ndog\nsea otter\n\n", encoding="utf-8")
    assert read_labels(path) == ["cat", "dog", "sea otter"]


def test_labels_saved_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeffcat\ndog\n".encode())
    assert read_labels(path) == ["cat", "dog"]


def test_duplicate_labels_are_allowed_as_in_imagenet(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("crane\ncrane\n")
    assert read_labels(path) == ["crane", "crane"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("cat\n", r"1 label\(s\); a classifier needs at least 2"),
        ("", r"0 label\(s\)"),
        ("cat\n\ndog\n", "line 2 is blank"),
        ("cat\n" + "x" * 201 + "\n", "line 2 is longer than 200"),
        (b"\xff\xfe\x00", "cannot read it as UTF-8"),
    ],
)
def test_unusable_labels_files(tmp_path, content, message):
    path = tmp_path / "labels.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(LabelsError, match=message):
        read_labels(path)


def test_a_missing_labels_file(tmp_path):
    with pytest.raises(LabelsError, match="no such file"):
        read_labels(tmp_path / "labels.txt")


def test_imagenet_defaults():
    assert IMAGENET_DEFAULTS.as_metadata() == {
        "resize_size": 256,
        "crop_size": 224,
        "interpolation": "bilinear",
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"crop_size": 300}, "crop_size 300 is larger than resize_size 256"),
        ({"resize_size": "256"}, "resize_size must be a whole number"),
        ({"crop_size": 0}, "crop_size must be a whole number of pixels from 1"),
        ({"interpolation": "cubic"}, "interpolation must be one of nearest"),
        ({"mean": [0.5, 0.5]}, r"mean must be 3 numbers"),
        ({"std": [0.2, 0, 0.2]}, "std must be positive"),
        ({"std": [0.2, float("nan"), 0.2]}, "std must be 3 finite numbers"),
        ({"size": 224}, "unknown preprocessing key"),
    ],
)
def test_bad_preprocessing_values(values, message):
    with pytest.raises(PreprocessingError, match=message):
        Preprocessing.from_mapping(values, IMAGENET_DEFAULTS)


def test_a_preprocessing_file_over_the_defaults(tmp_path):
    path = tmp_path / "prep.json"
    path.write_text(json.dumps({"resize_size": 160, "crop_size": 128, "mean": [0.5] * 3}))
    prep = Preprocessing.from_mapping(read_preprocessing_file(path), IMAGENET_DEFAULTS)
    assert (prep.resize_size, prep.crop_size, prep.mean) == (160, 128, (0.5, 0.5, 0.5))
    assert (prep.interpolation, prep.std) == ("bilinear", IMAGENET_DEFAULTS.std)


def test_flags_override_the_file_which_overrides_the_defaults(tmp_path, capsys):
    path = tmp_path / "prep.json"
    path.write_text(json.dumps({"resize_size": 200, "crop_size": 190}))
    argv = ["--onnx", "m.onnx", "--labels", "l.txt", "--preprocessing", str(path)]
    assert main([*argv, "--crop-size", "300", "--out", "unused.tar.gz"]) == 2
    err = capsys.readouterr().err
    assert "preprocessing: crop_size 300 is larger than resize_size 200" in err


@pytest.mark.parametrize(
    ("content", "message"), [("{", "not JSON"), ("[1]", "must hold a JSON object")]
)
def test_unusable_preprocessing_files(tmp_path, content, message):
    path = tmp_path / "prep.json"
    path.write_text(content)
    with pytest.raises(PreprocessingError, match=message):
        read_preprocessing_file(path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--onnx", "m.onnx"], "--onnx needs --labels"),
        (["--onnx", "m.onnx", "--labels", "l.txt", "--arch", "resnet18"], "--arch is for"),
        (["--weights", "random", "--crop-size", "160"], "--crop-size: with --weights"),
        (["--weights", "random", "--onnx", "m.onnx"], "not allowed with argument"),
        (["--labels", "l.txt"], "one of the arguments --weights --onnx is required"),
        (["--onnx", "m.onnx", "--labels", "l.txt", "--mean", "1,2"], "is not 3 numbers"),
    ],
)
def test_flags_that_do_not_go_together(capsys, argv, message):
    with pytest.raises(SystemExit) as raised:
        main([*argv, "--out", "unused.tar.gz"])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
