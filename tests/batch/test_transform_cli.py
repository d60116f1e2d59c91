"""`python -m batch run ... --on sagemaker` and `attach` refuse bad input before any job,
with one line naming a real flag (exit 2), against moto's S3 in process."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from batch.__main__ import main
from shared.registry import archive_key, metadata_key
from tests.batch.support import LABELS, VERSION, photo
from tests.batch.test_transform_job import ARTIFACTS, OUTPUTS, PHOTOS, WORK
from tests.pipeline.conftest import REGION

SOURCE = f"s3://{PHOTOS}/in/"
OUT = f"s3://{PHOTOS}/out/"


@pytest.fixture
def outputs(s3, tmp_path: Path) -> Path:
    for bucket in (ARTIFACTS, WORK, PHOTOS):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=ARTIFACTS, Key=archive_key(VERSION), Body=b"an archive")
    s3.put_object(
        Bucket=ARTIFACTS,
        Key=metadata_key(VERSION),
        Body=json.dumps({"version": VERSION, "labels": LABELS}),
    )
    s3.put_object(Bucket=PHOTOS, Key="in/a.jpg", Body=photo())
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(OUTPUTS))
    return path


def refused(capsys, *args: str) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("error: ") or "\nerror: " in err, err
    return err.strip().splitlines()[-1]


def transform(outputs: Path, source: str = SOURCE, out: str = OUT, *extra: str) -> list[str]:
    return [
        "run",
        source,
        "--out",
        out,
        "--on",
        "sagemaker",
        "--stack-outputs",
        str(outputs),
        *extra,
    ]


def test_a_prefix_with_no_images(outputs, capsys):
    said = refused(capsys, *transform(outputs, f"s3://{PHOTOS}/nothing-here/"))
    assert said == (
        f"error: s3://{PHOTOS}/nothing-here/: no images there (nothing under that prefix but "
        "folders or hidden names; S3 keys are case-sensitive)"
    )


def test_a_bucket_that_does_not_exist(outputs, capsys):
    said = refused(capsys, *transform(outputs, "s3://no-such-photos/in/"))
    assert said == "error: s3://no-such-photos/in/: no such bucket"


def test_a_version_not_in_the_registry_names_those_there(outputs, capsys):
    said = refused(capsys, *transform(outputs), "--model-version", "0123456789ab")
    assert said.startswith(
        f"error: --model-version 0123456789ab: not in the registry s3://{ARTIFACTS}/models/"
    )
    assert f"it holds {VERSION};" in said
    assert f"python -m admin.registry list --bucket {ARTIFACTS}" in said


def test_a_stack_without_the_transform_role(outputs, capsys):
    document = json.loads(outputs.read_text())
    del document["transform_role_arn"]
    outputs.write_text(json.dumps(document))
    said = refused(capsys, *transform(outputs))
    assert "no transform_role_arn or batch_bucket" in said
    assert "pulumi config set batch true" in said


@pytest.mark.parametrize(
    ("source", "out", "expected"),
    [
        (SOURCE, f"{SOURCE}classified/", f"--out {SOURCE}classified/: inside the input prefix"),
        (SOURCE, SOURCE, f"--out {SOURCE}: inside the input prefix"),
        (
            f"s3://{PHOTOS}/out/results/",
            OUT,
            f"s3://{PHOTOS}/out/results/: inside --out {OUT}'s own results/",
        ),
        ("photos", OUT, "photos: --on sagemaker reads s3://BUCKET/PREFIX/"),
        (SOURCE, "classified", "--out classified: --on sagemaker writes its outcomes to s3://"),
    ],
)
def test_places_that_cannot_work(outputs, capsys, source, out, expected):
    assert refused(capsys, *transform(outputs, source, out)).startswith(f"error: {expected}")


def test_an_instance_type_batch_transform_does_not_have(outputs, capsys):
    said = refused(capsys, *transform(outputs), "--instance-type", "ml.t3.medium")
    assert said.startswith(
        "error: --instance-type ml.t3.medium: not a Batch Transform instance type"
    )


@pytest.mark.parametrize(
    ("flag", "instead"),
    [
        (["--workers", "4"], "a transform's container sets how many images it takes at once"),
        (["--model-server", "http://127.0.0.1:1"], "a transform runs a registry version"),
        (["--artifact", "model.tar.gz"], "a transform runs a registry version (--model-version)"),
    ],
)
def test_local_flags_are_not_for_a_transform(outputs, capsys, flag, instead):
    said = refused(capsys, *transform(outputs), *flag)
    assert said.startswith(f"error: {flag[0]} is for --on local; {instead}")


def test_a_local_run_refuses_transform_flags_and_s3(tmp_path, capsys):
    said = refused(capsys, "run", str(tmp_path), "--out", str(tmp_path / "out"), "--instances", "2")
    assert said == "error: --instances is for --on sagemaker"
    said = refused(capsys, "run", SOURCE, "--out", str(tmp_path / "out"))
    assert said == f"error: {SOURCE}: --on local reads a folder; pass --on sagemaker for s3://"


def test_without_outputs_or_pulumi_it_says_how_to_give_them(s3, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    said = refused(capsys, "run", SOURCE, "--out", OUT, "--on", "sagemaker")
    assert said == (
        "error: no stack outputs: the pulumi command is not installed here; pass "
        "--stack-outputs FILE, written by `pulumi stack output --json > FILE`"
    )


def test_the_outputs_come_from_pulumi_when_it_is_installed(outputs, capsys, monkeypatch, tmp_path):
    pulumi = tmp_path / "bin" / "pulumi"
    pulumi.parent.mkdir()
    pulumi.write_text(f"#!/bin/sh\ncat '{outputs}'\n")
    pulumi.chmod(pulumi.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{pulumi.parent}{os.pathsep}{os.environ['PATH']}")
    said = refused(capsys, "run", f"s3://{PHOTOS}/empty/", "--out", OUT, "--on", "sagemaker")
    assert "no images there" in said  # past the outputs, read from `pulumi stack output`


def test_attach_to_an_unknown_job_is_one_line(s3, capsys):
    assert main(["attach", "no-such-job", "--region", REGION]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: SageMaker DescribeTransformJob: ")
