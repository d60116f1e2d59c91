"""The pipeline's S3 on moto: the inbox bucket its tasks read and write."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from pipeline.storage import S3Storage

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
