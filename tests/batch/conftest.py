from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from pipeline.storage import S3Storage
from tests.batch.transform_standin import StandIn, control_plane
from tests.batch.transform_support import PHOTOS, Cloud, images, make_cloud

BUCKET = "image-classifier-dev-inbox"
REGION = "eu-west-1"


@pytest.fixture
def aws_env(monkeypatch):
    """Dummy credentials and region, and nothing from the developer's own AWS setup."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return monkeypatch


@pytest.fixture
def s3(aws_env):
    """A moto S3 client with the pipeline's (empty) inbox bucket."""
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        yield client


@pytest.fixture
def bucket(s3):
    return S3Storage(BUCKET, client=s3)


@pytest.fixture
def plane(moto_url: str) -> Iterator[StandIn]:
    """SageMaker's stand-in (`tests.batch.transform_standin`) over moto server's S3."""
    with control_plane(moto_url) as standin:
        yield standin


@pytest.fixture
def cloud(moto_url: str, plane: StandIn, model_artifact: Path, tmp_path: Path) -> Cloud:
    """A stack's side of a transform (`tests.batch.transform_support`), the test archive a
    registry version, `images()` under `s3://<PHOTOS>/team/`."""
    cloud = make_cloud(moto_url, plane, model_artifact, tmp_path)
    cloud.upload(PHOTOS, "team/", images())
    return cloud
