"""The review round trip: list the queue, resolve items (the verdict in the prediction
store), export the reviewed images as an ImageFolder that torchvision loads."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from pathlib import Path

import pytest

from batch import labels
from batch.__main__ import main
from batch.export import MANIFEST, label_folders, safe_name
from batch.review import item_name
from batch.runner import process_new
from machine.predictions_sqlite import SqlitePredictionStore
from pipeline.storage import LocalStorage, S3Storage
from pipeline.tasks import classify, inbox_job
from proxy.labels import write_labels_file
from shared.labels import MODEL_LABELS_DIR
from tests.batch.support import LABELS, VERSION, FakeRuntime, answer, classifier, photo, write
from tests.pipeline.conftest import BUCKET, REGION

ODD_LABEL = "a/b: c?"


def model(body: bytes, _type: str) -> bytes:
    """The rocket confidently a tabby; the rest unsure."""
    return answer(0.97 if body == photo("rocket") else 0.5, label="tabby")


@pytest.fixture
def out(tmp_path) -> Path:
    folder = write(
        tmp_path / "in",
        {
            "cats/a.jpg": photo("chelsea"),
            "b.png": photo("coffee", "PNG"),
            "dogs/a.jpg": photo("astronaut"),
            "anim.gif": photo("china", "GIF"),
            "rocket.jpg": photo("rocket"),
        },
    )
    target = LocalStorage(tmp_path / "out")
    process_new(LocalStorage(folder), target, classifier(FakeRuntime(model)))
    write_labels_file(target.root / MODEL_LABELS_DIR, VERSION, LABELS)  # as `run` keeps them
    return target.root


def cli(capsys, *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_the_review_round_trip(out, tmp_path, capsys):
    sqlite = str(tmp_path / "predictions.sqlite3")

    status, listing, _ = cli(capsys, "review", "list", "--out", str(out))
    assert status == 0
    header = ["NAME", "TOP", "LABEL", "PROB", "MODEL", "CLASSIFIED"]
    assert listing.splitlines()[0].split() == header
    assert [line.split()[0] for line in listing.splitlines()[1:5]] == [
        "anim.gif",
        "b.png",
        "cats/a.jpg",
        "dogs/a.jpg",
    ]
    assert "4 item(s) to review." in listing
    status, as_json, _ = cli(capsys, "review", "list", "--out", str(out), "--json")
    assert [item["name"] for item in json.loads(as_json)] == [
        "anim.gif",
        "b.png",
        "cats/a.jpg",
        "dogs/a.jpg",
    ]

    # The model's own top label: a correct verdict, and the store had no record yet.
    status, said, _ = cli(
        capsys, "review", "resolve", "cats/a.jpg", "--label", "tabby", "--by", "ana",
        "--out", str(out), "--sqlite", sqlite,
    )  # fmt: skip
    assert status == 0
    assert "cats/a.jpg: 'tabby' (correct), by ana" in said
    assert not (out / "review" / "cats" / "a.jpg.json").exists()
    result = json.loads((out / "results" / "cats" / "a.jpg.json").read_text())
    assert result["outcome"] == "reviewed"
    assert set(result["reviewed"]) == {"by", "at", "label", "verdict"}
    assert (result["reviewed"]["by"], result["reviewed"]["label"]) == ("ana", "tabby")
    assert result["reviewed"]["verdict"] == "correct"
    assert result["reviewed"]["at"].endswith("Z")

    # Another label of the model: wrong, with the right one; the review/ file as its name.
    status, said, _ = cli(
        capsys, "review", "resolve", "review/b.png.json", "--label", ODD_LABEL,
        "--out", str(out), "--sqlite", sqlite,
    )  # fmt: skip
    assert status == 0
    assert f"'{ODD_LABEL}' (wrong)" in said
    status, _, _ = cli(
        capsys, "review", "resolve", "dogs/a.jpg", "--label", "tabby", "--out", str(out)
    )
    assert status == 0
    status, _, _ = cli(
        capsys, "review", "resolve", "anim.gif", "--label", "lynx", "--out", str(out)
    )
    assert status == 0

    with SqlitePredictionStore(sqlite) as store:
        records = {record.request_id: record for record in store.records()}
    assert len(records) == 2
    cat = records[result["request_id"]]
    assert (cat.variant, cat.model_version, cat.label) == ("batch", VERSION, "tabby")
    assert (cat.verdict, cat.feedback_label, cat.needs_review) == ("correct", None, True)
    coffee = next(record for record in records.values() if record is not cat)
    assert (coffee.verdict, coffee.feedback_label) == ("wrong", ODD_LABEL)

    status, listing, _ = cli(capsys, "review", "list", "--out", str(out))
    assert listing.strip() == "Nothing to review."

    # Back to training: the reviewed images as an ImageFolder.
    train = tmp_path / "train"
    status, said, err = cli(capsys, "export", "--from", str(out), "--out", str(train))
    assert status == 0, err
    assert "skipped anim.gif: image/gif is not read by ImageFolder" in err
    assert f"python -m model.finetune --data {train}" in said
    dogs = f"tabby/a-{hashlib.sha256(b'dogs/a.jpg').hexdigest()[:8]}.jpg"  # a.jpg is taken
    assert sorted(str(p.relative_to(train)) for p in train.rglob("*") if p.is_file()) == sorted(
        ["a_b_ c_/b.png", MANIFEST, "tabby/a.jpg", dogs]
    )
    assert (train / "tabby" / "a.jpg").read_bytes() == photo("chelsea")
    assert (train / dogs).read_bytes() == photo("astronaut")
    manifest = json.loads((train / MANIFEST).read_text())
    assert manifest["folders"] == {"a_b_ c_": ODD_LABEL, "tabby": "tabby"}
    assert {entry["name"] for entry in manifest["files"]} == {"b.png", "cats/a.jpg", "dogs/a.jpg"}

    # An earlier export is replaced; a folder of other files is refused.
    (train / "tabby" / "a.jpg").unlink()
    status, _, _ = cli(capsys, "export", "--from", str(out), "--out", str(train))
    assert status == 0
    assert sorted(str(p.relative_to(train)) for p in train.rglob("*") if p.is_file()) == sorted(
        ["a_b_ c_/b.png", MANIFEST, "tabby/a.jpg", dogs]
    )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    status, _, err = cli(capsys, "export", "--from", str(out), "--out", str(tmp_path / "mine"))
    assert status == 2
    assert "not an export of ours" in err


def test_a_label_must_be_one_of_the_models(out, capsys):
    status, _, err = cli(
        capsys, "review", "resolve", "b.png", "--label", "tabbby", "--out", str(out)
    )
    assert status == 2
    assert "'tabbby' is not one of the 7 labels" in err
    assert "did you mean 'tabby'" in err
    assert (out / "review" / "b.png.json").is_file()


def test_only_waiting_items_are_resolved(out, capsys):
    status, _, err = cli(
        capsys, "review", "resolve", "nope.jpg", "--label", "lynx", "--out", str(out)
    )
    assert status == 3
    assert "not waiting for review" in err
    assert cli(capsys, "review", "resolve", "b.png", "--label", "lynx", "--out", str(out))[0] == 0
    status, _, err = cli(capsys, "review", "resolve", "b.png", "--label", "lynx", "--out", str(out))
    assert status == 3
    assert "was resolved by" in err
    status, _, err = cli(
        capsys, "review", "resolve", "rocket.jpg", "--label", "lynx", "--out", str(out)
    )
    assert status == 3  # confident: never in the queue


def test_labels_of_another_model_version_are_refused(out, tmp_path, capsys):
    other = tmp_path / "metadata.json"
    other.write_text(json.dumps({"name": "resnet18", "version": "0000aaaa", "labels": LABELS}))
    status, _, err = cli(
        capsys, "review", "resolve", "b.png", "--label", "lynx", "--out", str(out),
        "--labels-from", str(other),
    )  # fmt: skip
    assert status == 2
    assert "version 0000aaaa's labels" in err
    labels.labels_path(out, VERSION).unlink()
    status, _, err = cli(capsys, "review", "resolve", "b.png", "--label", "lynx", "--out", str(out))
    assert status == 2
    assert "pass --labels-from" in err


def test_review_on_the_bucket_with_the_dynamodb_store(s3, tmp_path, capsys):
    import boto3

    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="predictions",
        KeySchema=[{"AttributeName": "request_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "request_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3.put_object(Bucket=BUCKET, Key="inbox/x.jpg", Body=photo())
    bucket = S3Storage(BUCKET, client=s3)
    classify(inbox_job(bucket, "inbox/x.jpg"), classifier(FakeRuntime(model)), deadline=10**9)
    metadata = tmp_path / "metadata.json"
    metadata.write_text(json.dumps({"name": "mobilenet_v2", "version": VERSION, "labels": LABELS}))

    status, listing, _ = cli(capsys, "review", "list", "--bucket", BUCKET)
    assert listing.splitlines()[1].startswith("x.jpg")
    status, _, err = cli(
        capsys, "review", "resolve", "x.jpg", "--label", "lynx", "--bucket", BUCKET,
        "--labels-from", str(metadata), "--table", "predictions",
    )  # fmt: skip
    assert status == 0, err
    result = json.loads(s3.get_object(Bucket=BUCKET, Key="results/x.jpg.json")["Body"].read())
    assert result["reviewed"]["verdict"] == "wrong"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="review/")
    item = dynamodb.get_item(
        TableName="predictions", Key={"request_id": {"S": result["request_id"]}}
    )["Item"]
    assert (item["variant"]["S"], item["verdict"]["S"]) == ("batch", "wrong")
    assert item["feedback_label"]["S"] == "lynx"


@pytest.mark.parametrize(
    ("label", "safe"),
    [
        ("tabby", "tabby"),
        ("great white shark", "great white shark"),
        (ODD_LABEL, "a_b_ c_"),
        ("..hidden", "hidden"),
        ("trailing. ", "trailing"),
        ("con", "_con"),
        ("CON.txt", "_CON.txt"),
        ("", "_"),
        ("tab\tby\x00", "tab_by_"),
        ("back\\slash|pipe*", "back_slash_pipe_"),
    ],
)
def test_label_folders_are_safe(label, safe):
    assert safe_name(label) == safe


def test_label_folders_are_unique_even_ignoring_case():
    wanted = ["Cat", "cat", "a/b", "a_b", "x" * 300, "é" * 120, "e\u0301"]
    folders = label_folders(wanted)
    assert set(folders) == set(wanted)
    assert len({name.casefold() for name in folders.values()}) == len(wanted)
    for name in folders.values():
        assert len(name.encode("utf-8")) <= 100
        assert "/" not in name
        assert not name.startswith(".")
        assert unicodedata.is_normalized("NFC", name)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("cats/a.jpg", "cats/a.jpg"),
        ("review/cats/a.jpg.json", "cats/a.jpg"),
        ("results/a.jpg.json", "a.jpg"),
        (" /a.jpg ", "a.jpg"),
    ],
)
def test_an_item_is_named_as_listed_or_by_its_file(text, name):
    assert item_name(text) == name


@pytest.mark.slow
def test_the_export_loads_as_an_image_folder(out, tmp_path, capsys):
    from torchvision.datasets import ImageFolder

    from batch.review import resolve

    target = LocalStorage(out)
    resolve(target, "cats/a.jpg", "tabby", "ana")
    resolve(target, "b.png", ODD_LABEL, "ana")
    resolve(target, "dogs/a.jpg", "tabby", "ana")
    resolve(target, "anim.gif", "lynx", "ana")  # a GIF: not exported
    train = tmp_path / "train"
    assert cli(capsys, "export", "--from", str(out), "--out", str(train))[0] == 0

    dataset = ImageFolder(str(train))
    assert dataset.classes == ["a_b_ c_", "tabby"]
    assert len(dataset) == 3
    for index in range(len(dataset)):
        image, target_index = dataset[index]
        assert image.size[0] > 0
        assert dataset.classes[target_index] in ("a_b_ c_", "tabby")


@pytest.mark.slow
def test_model_finetune_trains_on_an_export(out, tmp_path):
    """The export is what `python -m model.finetune --data DIR` reads (one short epoch on
    an untrained backbone: nothing is downloaded)."""
    import subprocess
    import sys

    from batch.export import export
    from batch.review import resolve
    from tests.conftest import ROOT

    target = LocalStorage(out)
    resolve(target, "cats/a.jpg", "tabby", "ana")
    resolve(target, "b.png", "espresso", "ana")
    resolve(target, "dogs/a.jpg", "tabby", "ana")
    train = tmp_path / "train"
    assert len(export(target, train).files) == 3
    trained = subprocess.run(
        [sys.executable, "-m", "model.finetune", "--data", str(train), "--epochs", "1",
         "--backbone", "random", "--out", str(tmp_path / "ft" / "weights.pt")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "ft" / "labels.txt").read_text().split("\n")[:2] == ["espresso", "tabby"]


@pytest.mark.parametrize("form", ["labels-dir", "labels-file", "metadata"])
def test_labels_from_any_of_the_models_sources(out, tmp_path, capsys, form):
    labels.labels_path(out, VERSION).unlink()
    if form == "metadata":
        spec = tmp_path / "metadata.json"
        spec.write_text(json.dumps({"name": "m", "version": VERSION, "labels": LABELS}))
    else:
        spec = write_labels_file(tmp_path / "model_labels", VERSION, LABELS)
        spec = spec.parent if form == "labels-dir" else spec
    status, _, err = cli(
        capsys, "review", "resolve", "b.png", "--label", "lynx", "--out", str(out),
        "--labels-from", str(spec),
    )  # fmt: skip
    assert status == 0, err


@pytest.mark.parametrize(
    "args",
    [
        ("review", "list", "--out"),
        ("review", "resolve", "b.png", "--label", "lynx", "--out"),
        ("export", "--out", "{tmp}/export", "--from"),
    ],
    ids=["list", "resolve", "export"],
)
def test_a_mistyped_outcomes_folder_is_said_not_taken_for_an_empty_queue(args, tmp_path, capsys):
    typo = tmp_path / "ot"
    status, stdout, err = cli(capsys, *(a.format(tmp=tmp_path) for a in args), str(typo))
    assert status == 2
    assert err == f"error: {args[-1]} {typo}: no such folder\n"
    assert stdout == ""


def test_an_imagenet_synonym_list_points_at_the_models_label(out, capsys):
    status, _, err = cli(
        capsys, "review", "resolve", "b.png", "--label", "tabby, tabby cat", "--out", str(out)
    )
    assert status == 2
    assert "did you mean 'tabby'" in err


def test_the_export_prints_a_training_command_that_runs_as_printed(out, tmp_path, capsys):
    import shlex

    from batch.review import resolve

    target = LocalStorage(out)
    resolve(target, "cats/a.jpg", "tabby", "ana")
    train = tmp_path / "my train+1"
    status, printed, _ = cli(capsys, "export", "--from", str(out), "--out", str(train))
    assert status == 0
    # One class: no command model.finetune would refuse, but what to do instead.
    assert "train with" not in printed
    assert "1 class; model.finetune needs at least 2: resolve items of another label" in printed
    assert "python -m batch review resolve" in printed

    resolve(target, "b.png", ODD_LABEL, "ana")
    status, printed, _ = cli(capsys, "export", "--from", str(out), "--out", str(train))
    assert status == 0
    command = shlex.split(printed.split("train with: ")[1])
    assert command[:3] == ["python", "-m", "model.finetune"]
    assert command[command.index("--data") + 1] == str(train)
    assert command[command.index("--out") + 1] == "build/finetuned/weights.pt"


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("cat", "did you mean 'tiger cat' or 'Egyptian cat' or 'Persian cat'?"),
        ("Cats", "did you mean 'tiger cat' or 'Egyptian cat' or 'Persian cat'?"),
        ("egyp", "did you mean 'Egyptian cat'?"),
        ("lynks", "did you mean 'lynx'?"),
    ],
)
def test_suggestions_match_words_within_labels_first_as_the_web_page_does(out, capsys, typed, said):
    status, _, err = cli(capsys, "review", "resolve", "b.png", "--label", typed, "--out", str(out))
    assert status == 2
    assert said in err
