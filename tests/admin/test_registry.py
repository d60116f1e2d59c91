"""`python -m admin.registry list`: archives in a moto S3 bucket laid out as the stack
uploads them, their metadata from a sidecar or from the archive itself, and which variants
of which stacks serve them. Run with `-s` to see the tables it prints."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from admin.registry import EXIT_S3, EXIT_USAGE, Registry, main, version_slug
from artifact.archive import write_reproducible_tar_gz
from components.model_archive import ModelArchive

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
BUCKET = "image-classifier-dev-artifacts-1a2b3c"
OLD, NEW, BROKEN = "3f9a1c2b4d5e", "9e8d7c6b5a41", "0badc0ffee00"
MODEL_BYTES = 3_000_000


def metadata(version: str, **changes: Any) -> dict[str, Any]:
    """What `model.package` writes (labels shortened)."""
    return {
        "name": "mobilenet_v2",
        "architecture": "mobilenet_v2",
        "weights": "IMAGENET1K_V2",
        "precision": "int8",
        "labels": [f"class {i}" for i in range(1000)],
        "num_classes": 1000,
        "memory_mb_min": 2048,
        "version": version,
        **changes,
    }


def archive(tmp_path: Path, meta: dict[str, Any] | None) -> bytes:
    """A model.tar.gz as `model.package` writes it: sorted entries, metadata.json before a
    model.onnx of incompressible bytes."""
    files = {
        "code/inference.py": b"# handler\n" * 200,
        "model.onnx": os.urandom(MODEL_BYTES),
    }
    if meta is not None:
        files["metadata.json"] = json.dumps(meta, indent=1).encode()
    out = tmp_path / f"{len(list(tmp_path.iterdir()))}.tar.gz"
    write_reproducible_tar_gz(files, out)
    return out.read_bytes()


@pytest.fixture
def s3(monkeypatch, tmp_path):
    """A moto bucket with three versions: OLD with the sidecar the stack uploads, NEW with
    its archive alone, BROKEN an archive without metadata.json."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    scratch = tmp_path / "archives"
    scratch.mkdir()
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        old = metadata(OLD, weights="random", precision="fp32")
        client.put_object(
            Bucket=BUCKET, Key=f"models/{OLD}/model.tar.gz", Body=archive(scratch, old)
        )
        client.put_object(Bucket=BUCKET, Key=f"models/{OLD}/metadata.json", Body=json.dumps(old))
        client.put_object(
            Bucket=BUCKET, Key=f"models/{NEW}/model.tar.gz", Body=archive(scratch, metadata(NEW))
        )
        client.put_object(
            Bucket=BUCKET, Key=f"models/{BROKEN}/model.tar.gz", Body=archive(scratch, None)
        )
        # Neither is a version: a sidecar whose archive is gone, and a stray object.
        client.put_object(Bucket=BUCKET, Key="models/deadbeef0000/metadata.json", Body=b"{}")
        client.put_object(Bucket=BUCKET, Key="models/README", Body=b"hello")
        yield client


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["list", *argv], stdout=out, stderr=err)
    print(out.getvalue() + err.getvalue())  # shown with -s
    return status, out.getvalue(), err.getvalue()


def outputs(tmp_path: Path, name: str, document: Any) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return str(path)


def by_version(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["version"]: v for v in document["versions"]}


# -- the versions in the bucket -------------------------------------------------------------


def test_each_archive_is_listed_with_its_metadata(s3):
    status, out, err = run("--bucket", BUCKET, "--region", REGION, "--json")
    assert (status, err) == (0, "")
    document = json.loads(out)
    assert document["bucket"] == BUCKET
    versions = by_version(document)
    assert set(versions) == {OLD, NEW, BROKEN}
    new = versions[NEW]
    assert new["uploaded"].endswith("Z")
    assert MODEL_BYTES < new["size"] < MODEL_BYTES * 1.01
    del new["uploaded"], new["size"]
    assert new == {
        "version": NEW,
        "archive": f"models/{NEW}/model.tar.gz",
        "name": "mobilenet_v2",
        "architecture": "mobilenet_v2",
        "weights": "IMAGENET1K_V2",
        "precision": "int8",
        "num_classes": 1000,
        "memory_mb_min": 2048,
        "metadata": "archive",
        "serving": [],
    }
    assert (versions[OLD]["metadata"], versions[OLD]["weights"]) == ("sidecar", "random")
    assert (
        versions[BROKEN]["metadata"]
        == f"unreadable: models/{BROKEN}/model.tar.gz has no metadata.json"
    )
    assert versions[BROKEN]["name"] is None


def test_the_archive_is_read_only_as_far_as_its_metadata(s3):
    """The model is most of the archive; the metadata comes before it."""
    counting = CountingS3(s3)
    (new,) = [v for v in Registry(BUCKET, client=counting).versions() if v.version == NEW]
    assert new.metadata_source == "archive"
    assert counting.read[f"models/{NEW}/model.tar.gz"] < MODEL_BYTES / 4
    assert counting.read[f"models/{OLD}/metadata.json"] > 0
    assert f"models/{OLD}/model.tar.gz" not in counting.read


def test_an_empty_bucket_is_said_so(s3):
    s3.create_bucket(
        Bucket="empty-bucket", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    status, out, err = run("--bucket", "empty-bucket")
    assert (status, out) == (0, "")
    assert err == "No model archives in s3://empty-bucket/models/.\n"


# -- which stacks serve what ----------------------------------------------------------------


def test_the_variants_of_each_stack_are_shown_beside_what_they_serve(s3, tmp_path):
    dev = outputs(tmp_path, "dev", {
        "artifact_bucket": BUCKET,
        "variants": [
            {"name": "main", "weight": 95, "model_version": OLD, "endpoint_name": "ic-dev"},
            {"name": "canary", "weight": 5, "model_version": NEW, "endpoint_name": "ic-dev-canary"},
            {"name": "parked", "weight": 0, "model_version": "7777aaaa9999", "endpoint_name": "ic-dev-old"},  # noqa: E501
        ],
    })  # fmt: skip
    # A stack deployed before variants: one endpoint, one model.
    prod = outputs(tmp_path, "prod", {"model_version": NEW, "endpoint_name": "ic-prod"})
    status, out, err = run("--serving", dev, prod)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == [
        "VERSION", "UPLOADED", "MODEL", "WEIGHTS", "PRECISION", "CLASSES", "SIZE", "SERVING"
    ]  # fmt: skip
    rows = {line.split()[0]: line for line in lines[1:4]}
    assert rows[NEW].endswith("dev:canary 5%, prod:main 100%")
    assert rows[OLD].endswith("dev:main 95%")
    assert " random " in rows[OLD]
    assert rows[BROKEN].endswith("-")
    assert lines[4].split() == [
        "7777aaaa9999",
        "(not",
        "in",
        "bucket)",
        *"-" * 5,
        "dev:parked",
        "0%",
    ]
    assert (
        lines[5]
        == f"{BROKEN}: metadata unreadable: models/{BROKEN}/model.tar.gz has no metadata.json"
    )

    _, out, _ = run("--serving", dev, prod, "--json")
    versions = by_version(json.loads(out))
    assert versions[NEW]["serving"] == [
        {
            "stack": "dev",
            "variant": "canary",
            "weight": 5,
            "share": 0.05,
            "endpoint_name": "ic-dev-canary",
        },
        {"stack": "prod", "variant": "main", "weight": 1, "share": 1.0, "endpoint_name": "ic-prod"},
    ]
    assert versions["7777aaaa9999"]["archive"] is None


def test_the_bucket_comes_from_the_first_outputs_when_not_given(s3, tmp_path):
    dev = outputs(
        tmp_path,
        "dev",
        {"artifact_bucket": BUCKET, "model_version": OLD, "endpoint_name": "ic-dev"},
    )
    status, out, _ = run("--serving", dev, "--json")
    assert status == 0
    assert json.loads(out)["bucket"] == BUCKET


def test_the_key_segment_is_the_stacks_own():
    """`components/model_archive.py` names the archive's key; the registry must agree."""
    for version in (OLD, "ABC_def-123456789", "--x--", "", "v1.2.3+local"):
        assert version_slug(version) == ModelArchive(Path("m.tar.gz"), version, "w").slug


# -- errors ---------------------------------------------------------------------------------


def test_a_missing_bucket_is_exit_1_and_named(s3):
    status, _, err = run("--bucket", "no-such-bucket")
    assert status == EXIT_S3
    assert err == (
        "error: cannot list s3://no-such-bucket/models/: NoSuchBucket: "
        "The specified bucket does not exist\n"
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "cannot read stack outputs"),
        ([], "not the JSON object `pulumi stack output --json` prints"),
        ({"site_url": "https://x"}, "neither the output variants nor model_version"),
        ({"variants": []}, "not a non-empty list"),
        (
            {"variants": [{"name": "main", "weight": 1, "model_version": OLD}]},
            "each variant must be",
        ),
        (
            {"variants": [{"name": "a", "weight": -1, "model_version": OLD, "endpoint_name": "e"}]},
            "each variant",
        ),
        (
            {
                "variants": [
                    {"name": "a", "weight": True, "model_version": OLD, "endpoint_name": "e"}
                ]
            },
            "each variant",
        ),
    ],
)
def test_unusable_outputs_are_exit_2_and_named(s3, tmp_path, document, message):
    path = outputs(tmp_path, "dev", document)
    status, _, err = run("--bucket", BUCKET, "--serving", path)
    assert status == EXIT_USAGE
    assert err.startswith(f"error: {path}: ")
    assert message in err


def test_a_missing_outputs_file_or_bucket_is_exit_2(tmp_path):
    status, _, err = run("--serving", str(tmp_path / "nope.json"))
    assert status == EXIT_USAGE
    assert "nope.json: cannot read stack outputs" in err
    status, _, err = run()
    assert status == EXIT_USAGE
    assert "--bucket" in err


def test_it_runs_as_a_module():
    done = subprocess.run(
        [sys.executable, "-m", "admin.registry", "list", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--serving" in done.stdout


class CountingS3:
    """The S3 client, counting the body bytes the registry reads of each object."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.read: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **request: Any) -> dict[str, Any]:
        response = self._client.get_object(**request)
        response["Body"] = CountingBody(response["Body"], self.read, request["Key"])
        return response


class CountingBody:
    def __init__(self, body: Any, read: dict[str, int], key: str) -> None:
        self._body, self._read, self._key = body, read, key
        read.setdefault(key, 0)

    def read(self, size: int = -1) -> bytes:
        data = self._body.read(size) if size is not None and size >= 0 else self._body.read()
        self._read[self._key] += len(data)
        return data

    def close(self) -> None:
        self._body.close()
