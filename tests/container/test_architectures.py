"""Another architecture in the serving image: EfficientNet-B0, whose weights resize with
bicubic interpolation to 256 before the 224 crop (MobileNetV2: bilinear, 232), answers
in the container exactly as `serving.serve` does in process. The handler comes with the
archive, so the image itself is the same for every architecture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import skimage.data
from PIL import Image

from artifact.archive import extract
from serving import serve
from tests.container.containers import Container, StartContainer
from tests.model.archives import arch_archive
from tests.serving import images
from tests.serving.asgi import TestClient

pytestmark = pytest.mark.slow
ARCH = "efficientnet_b0"


@pytest.fixture(scope="module")
def archive() -> Path:
    return arch_archive(ARCH)


@pytest.fixture(scope="module")
def container(archive: Path, start_container: StartContainer, tmp_path_factory) -> Container:
    directory = tmp_path_factory.mktemp("opt-ml-model-efficientnet")
    extract(archive, directory)
    return start_container(model=directory)


@pytest.fixture(scope="module")
def in_process(archive: Path) -> Iterator[TestClient]:
    with TestClient(serve.create_app(archive), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_predictions_equal_the_in_process_handlers(container, in_process, name):
    body = images.encode(Image.fromarray(getattr(skimage.data, name)()), "JPEG")
    headers = {"content-type": "image/jpeg"}
    with httpx.Client(base_url=container.url) as client:
        response = client.post("/invocations", content=body, headers=headers)
    expected = in_process.post("/invocations", content=body, headers=headers)
    assert response.status_code == expected.status_code == 200, response.text
    assert response.json() == expected.json()
    assert response.json()["model"]["name"] == ARCH
