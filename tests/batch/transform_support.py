"""A stack's side of a transform, in moto server: its artifact bucket holding the test
archive as a registry version, its batch bucket, an input bucket, its outputs as
`pulumi stack output --json` prints them, and the environment `python -m batch` runs in
(S3 at moto server, SageMaker at `tests.batch.transform_standin`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from artifact.metadata import read_archive_metadata, read_archive_metadata_bytes
from shared.registry import archive_key, metadata_key, version_slug
from tests.batch.support import huge_declared_png, oversized_jpeg, photo, truncated_jpeg
from tests.batch.transform_standin import ACCOUNT, REGION, StandIn
from tests.conftest import ROOT

PREFIX = "image-classifier-dev"
ARTIFACTS = "model-artifacts-0a1b2c"
WORK = "batch-inbox-3d4e5f"
PHOTOS = "photos-of-the-team"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/batch-transform-role-7a8b9c"
IMAGE = (
    f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{PREFIX}-serving@sha256:" + "0123456789abcdef" * 4
)


def images() -> dict[str, bytes]:
    """Real photos, and the bad files a folder holds, one of each in the middle."""
    return {
        "cats/1.jpg": photo("chelsea"),
        "coffee.png": photo("coffee", "PNG"),
        "notes.txt": b"not a photo at all\n",
        "broken.jpg": truncated_jpeg(),
        "empty.jpg": b"",
        "holiday photo+1.jpg": photo("astronaut"),
        "huge.png": huge_declared_png(),
        "big.jpg": oversized_jpeg(),
        "cats/2.webp": photo("china", "WEBP"),
        ".DS_Store": b"\x00\x00\x00\x01Bud1",
    }


EXPECTED = {
    "cats/1.jpg": ("review", None),
    "coffee.png": ("review", None),
    "holiday photo+1.jpg": ("review", None),
    "cats/2.webp": ("review", None),
    "notes.txt": ("failed", "not_an_image"),
    "broken.jpg": ("failed", "corrupt_image"),
    "empty.jpg": ("failed", "empty_body"),
    "huge.png": ("failed", "image_too_large"),
    "big.jpg": ("failed", "payload_too_large"),
}
"""Each image's outcome folder (random weights are never sure: review) and error code."""


def s3_client(moto_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@dataclass
class Cloud:
    moto_url: str
    plane: StandIn
    s3: Any
    outputs: Path
    version: str

    def environment(self) -> dict[str, str]:
        environ = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("AWS_") or name == "AWS_EC2_METADATA_DISABLED"
        }
        return {
            **environ,
            "AWS_ENDPOINT_URL_S3": self.moto_url,
            "AWS_ENDPOINT_URL_SAGEMAKER": self.plane.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def upload(self, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
        for name, data in files.items():
            self.s3.put_object(Bucket=bucket, Key=f"{prefix}{name}", Body=data)

    def outcomes(self, bucket: str, prefix: str) -> dict[str, tuple[str, dict[str, Any]]]:
        """name -> (folder, document) of every outcome under `prefix`."""
        found = {}
        for key in self.keys(bucket, prefix):
            folder, _slash, rest = key.removeprefix(prefix).partition("/")
            if folder in ("results", "review", "failed") and rest.endswith(".json"):
                document = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                found[rest.removesuffix(".json")] = (folder, document)
        return found

    def keys(self, bucket: str, prefix: str = "") -> Iterator[str]:
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]

    def read_json(self, bucket: str, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def batch(self, *args: str, **options: Any) -> subprocess.Popen[str]:
        """`python -m batch ARGS` as a user runs it, against this cloud."""
        return subprocess.Popen(
            [sys.executable, "-m", "batch", *args],
            cwd=ROOT,
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **options,
        )

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        process = self.batch(*args, stdin=subprocess.DEVNULL)
        out, err = process.communicate(timeout=timeout)
        return subprocess.CompletedProcess(process.args, process.returncode, out, err)

    def transform(self, source: str, out: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            "run",
            source,
            "--out",
            out,
            "--on",
            "sagemaker",
            "--stack-outputs",
            str(self.outputs),
            "--quiet",
            *extra,
        )


def make_cloud(moto_url: str, plane: StandIn, archive: Path, scratch: Path) -> Cloud:
    """The buckets (created afresh: each test has its own moto state by bucket names it
    empties first), the archive as a registry version, the stack outputs file."""
    s3 = s3_client(moto_url)
    for bucket in (ARTIFACTS, WORK, PHOTOS):
        _fresh_bucket(s3, bucket)
    version = read_archive_metadata(archive).version
    slug = version_slug(version)
    s3.upload_file(str(archive), ARTIFACTS, archive_key(slug))
    s3.put_object(
        Bucket=ARTIFACTS, Key=metadata_key(slug), Body=read_archive_metadata_bytes(archive)
    )
    outputs = scratch / "dev.json"
    outputs.write_text(
        json.dumps(
            {
                "serving_image": IMAGE,
                "transform_role_arn": ROLE_ARN,
                "artifact_bucket": ARTIFACTS,
                "batch_bucket": WORK,
                "endpoint_name": PREFIX,
                "model_version": version,
            }
        )
    )
    return Cloud(moto_url, plane, s3, outputs, version)


def _fresh_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
