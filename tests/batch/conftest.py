from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.batch.transform_standin import StandIn, control_plane
from tests.batch.transform_support import PHOTOS, Cloud, images, make_cloud
from tests.pipeline.conftest import BUCKET, REGION, aws_env, bucket, s3  # noqa: F401


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
