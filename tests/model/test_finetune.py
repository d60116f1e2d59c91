"""`python -m model.finetune` on a tiny dataset made here (three photos that scikit-image
ships, augmented into three classes), from a random backbone: it trains (the loss falls),
and what it writes packages with `--labels` and serves exactly three predictions through
the handler, `serving.serve` and the local API's real proxy. Bad data is refused clearly.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from model.finetune import EXIT_DATA, blocks, main
from serving.serve import LoadedHandler
from tests.model.archives import ROOT, package, served
from tests.model.datasets import make_dataset
from tests.serving import images

pytestmark = pytest.mark.slow
CLASSES = ("cat", "coffee", "rocket")
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)  train loss ([\d.]+) accuracy ([\d.]+)  val loss")


def run_finetune(root: Path, classes: tuple[str, ...], damaged: bool = False) -> tuple[Path, str]:
    """The CLI run as a user runs it: weights.pt, and its output."""
    data = make_dataset(root / "photos", classes, per_class=8)
    if damaged:
        (data / "cat" / "damaged.jpg").write_bytes(b"\xff\xd8\xff not really a JPEG")
        (data / "cat" / "notes.txt").write_text("not an image: ignored, as ImageFolder does")
    out = root / "out dir" / "weights.pt"  # a space, as in a user's folder names
    result = subprocess.run(
        [sys.executable, "-m", "model.finetune", "--data", str(data), "--out", str(out),
         "--backbone", "random", "--epochs", "4", "--unfreeze", "1", "--batch-size", "8",
         "--val-fraction", "0.25", "--seed", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out, result.stdout


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return run_finetune(tmp_path_factory.mktemp("finetune"), CLASSES, damaged=True)


@pytest.fixture(scope="module")
def finetuned_two(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return run_finetune(tmp_path_factory.mktemp("finetune-2"), CLASSES[:2])


@pytest.fixture(scope="module")
def archive(finetuned) -> Path:
    weights, _output = finetuned
    labels = weights.with_name("labels.txt")
    return package(
        "--arch", "mobilenet_v2", "--weights", str(weights), "--labels", str(labels),
        "--precision", "fp32", "--name", "cat or coffee",
        key_files=(weights, labels, weights.with_name("weights.pt.json")),
    )  # fmt: skip


def test_it_trains_and_reports_each_epoch(finetuned):
    weights, output = finetuned
    epochs = [EPOCH_LINE.match(line) for line in output.splitlines()]
    losses = [float(match.group(3)) for match in epochs if match]
    assert len(losses) == 4
    assert losses[-1] < losses[0], f"the training loss did not fall: {losses}"
    assert "24 photos in 3 classes (cat, coffee, rocket): 18 to train on, 6 held out" in output
    assert "skipped 1 unreadable image file(s):" in output
    assert "damaged.jpg" in output
    assert "NO pretrained mobilenet_v2 backbone" in output, "a random start is loud"
    assert "training the head and the last 1 block(s) (features.18)" in output
    assert weights.is_file()
    assert weights.with_name("labels.txt").read_text() == "cat\ncoffee\nrocket\n"
    assert output.strip().splitlines()[-1] == (
        f"next: python -m model.package --arch mobilenet_v2 --weights {shlex.quote(str(weights))} "
        f"--labels {shlex.quote(str(weights.with_name('labels.txt')))} --out build/model.tar.gz"
    )
    assert json.loads(weights.with_name("weights.pt.json").read_text())["backbone"] == "random"


@pytest.mark.parametrize("fixture", ["finetuned_two", "finetuned"])
def test_the_next_step_it_prints_packages_at_int8(request, tmp_path, fixture):
    """The "next:" command, run as printed (int8, the default): 2 and 3 classes pass the
    int8 check, whose rankings are min(5, classes) deep."""
    _weights, output = request.getfixturevalue(fixture)
    command = shlex.split(output.strip().splitlines()[-1].removeprefix("next: python "))
    out = tmp_path / "model.tar.gz"
    command[-1] = str(out)
    result = subprocess.run(
        [sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr
    (agreement,) = [line for line in result.stdout.splitlines() if "int8 agrees" in line]
    classes = 2 if fixture == "finetuned_two" else 3
    assert f"k {classes}, top1 agreement " in agreement
    with __import__("tarfile").open(out) as tar:
        metadata = json.loads(tar.extractfile("metadata.json").read())
    assert (metadata["precision"], metadata["num_classes"]) == ("int8", classes)


def test_only_the_head_and_the_unfrozen_block_changed(finetuned):
    import torch

    from model.weights import random_network

    weights, _output = finetuned
    trained = torch.load(weights, weights_only=True)
    start = dict(random_network("mobilenet_v2", 3).module.named_parameters())
    changed = {name for name, value in start.items() if not torch.equal(value, trained[name])}
    assert changed
    assert all(name.startswith(("features.18.", "classifier.1.")) for name in changed)
    assert {"classifier.1.weight", "classifier.1.bias"} <= changed


def test_the_packaged_model_answers_with_its_three_labels(archive):
    with __import__("tarfile").open(archive) as tar:
        metadata = json.loads(tar.extractfile("metadata.json").read())
    assert metadata["labels"] == list(CLASSES)
    assert (metadata["num_classes"], metadata["label_set"]) == (3, "custom")
    assert metadata["name"] == "cat or coffee"
    assert metadata["weights"] == "random", "fine-tuned on a random backbone: untrained"

    loaded = LoadedHandler(archive)
    try:
        image = loaded.module.input_fn(images.good_cases()[0].body, "image/jpeg")
        result = loaded.module.predict_fn(image, loaded.model)
    finally:
        loaded.close()
    assert [p["label"] for p in sorted(result["predictions"], key=lambda p: p["index"])] == [
        "cat",
        "coffee",
        "rocket",
    ]
    assert sum(p["probability"] for p in result["predictions"]) == pytest.approx(1.0)

    with served(archive) as server:
        response = httpx.post(
            f"{server.url}/invocations",
            content=images.good_cases()[0].body,
            headers={"content-type": "image/jpeg"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    assert response.json() == result


def test_the_proxy_passes_three_predictions_on(archive):
    from local.process import local_runtime

    with local_runtime(archive) as runtime:
        response = httpx.post(
            f"{runtime.api_url}/predict",
            content=images.good_cases()[0].body,
            headers={"content-type": "image/jpeg"},
            timeout=30,
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(p["label"] for p in body["predictions"]) == list(CLASSES)
    assert (body["model"]["num_classes"], body["model"]["label_set"]) == (3, "custom")
    assert body["model"]["weights"] == "random", "the page and the API label it untrained"
    top = max(p["probability"] for p in body["predictions"])
    assert body["needs_review"] is (top < 0.93)


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (None, "no such folder"),
        ({}, "it has no class folders"),
        ({"cat": 3}, "1 class folder(s) (cat); a classifier needs at least 2"),
        ({"cat": 3, "dog": 0}, "class folder(s) dog hold no readable images"),
        ({"cat": 3, "dog": "broken"}, "class folder(s) dog hold no readable images"),
    ],
)
def test_unusable_data_is_refused(tmp_path, capsys, layout, message):
    data = tmp_path / "photos"
    if layout is not None:
        data.mkdir()
        for name, content in layout.items():
            folder = data / name
            folder.mkdir()
            if content == "broken":
                (folder / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
            elif content:
                make_dataset(tmp_path / "made", ("cat",), content)
                for photo in (tmp_path / "made" / "cat").iterdir():
                    photo.rename(folder / photo.name)
    status = main(["--data", str(data), "--out", str(tmp_path / "w.pt"), "--backbone", "random"])
    assert status == EXIT_DATA
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "w.pt").exists()


def test_an_unknown_architecture_is_refused(tmp_path, capsys):
    data = make_dataset(tmp_path / "photos", ("cat", "coffee"), 2)
    assert main(["--data", str(data), "--out", str(tmp_path / "w.pt"), "--arch", "nope"]) == 2
    assert "--arch nope: not a torchvision classification model" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arch", "last"),
    [
        ("mobilenet_v2", "features.18"),
        ("resnet18", "layer4.1"),
        ("efficientnet_b0", "features.8"),
        ("convnext_tiny", "classifier.0"),
    ],
)
def test_blocks_end_just_before_the_head(arch, last):
    import torch
    import torchvision

    from model.weights import head_parameters

    with torch.device("meta"):
        network = torchvision.models.get_model(arch)
    found = [name for name, _ in blocks(network, set(head_parameters(arch)))]
    assert found[-1] == last
    assert len(found) == len(set(found)) > 3


def test_without_the_pretrained_backbone_it_starts_random_and_says_so(tmp_path, monkeypatch):
    """Offline, --backbone imagenet (the default) falls back within seconds."""
    import torch

    from model import weights
    from model.finetune import Training, finetune

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(weights, "reachable", lambda _host, _port: False)
    data = make_dataset(tmp_path / "photos", ("cat", "coffee"), 2)
    lines: list[str] = []
    result = finetune(data, tmp_path / "w.pt", training=Training(epochs=1), log=lines.append)
    assert result.backbone == "random"
    said = "\n".join(lines)
    assert "NO pretrained mobilenet_v2 backbone: --backbone imagenet needs to download" in said
    assert "--weights" not in said, "model.package's flag; model.finetune has --backbone"
    assert (tmp_path / "w.pt").is_file()
