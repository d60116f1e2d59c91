"""Serving preprocessing (Pillow + NumPy) against torchvision's reference transforms for
IMAGENET1K_V2, and for every interpolation an imported model may ask for, on real photos
that scikit-image and scikit-learn ship offline. Each architecture's own transforms:
test_architectures.py."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import skimage.data
from PIL import Image
from sklearn.datasets import load_sample_images

from model.preprocessing import IMAGENET_DEFAULTS, INTERPOLATIONS, Preprocessing
from tests.serving import images
from tests.serving.conftest import PREPROCESSING

pytestmark = pytest.mark.slow
# One 8-bit step after normalisation, for the crop-only path of very elongated images.
ONE_STEP = 1 / (255 * min(PREPROCESSING["std"])) + 1e-5

PHOTOS = {
    "chelsea": skimage.data.chelsea,
    "coffee": skimage.data.coffee,
    "astronaut": skimage.data.astronaut,
    "rocket": skimage.data.rocket,
    "china": lambda: load_sample_images().images[0],
    "flower": lambda: load_sample_images().images[1],
}


@pytest.fixture(scope="module")
def reference():
    from torchvision.models import MobileNet_V2_Weights

    transforms = MobileNet_V2_Weights.IMAGENET1K_V2.transforms()
    return lambda body: transforms(Image.open(io.BytesIO(body)).convert("RGB")).numpy()[None]


def ours(handler, body: bytes) -> np.ndarray:
    image = handler.module.input_fn(body, "application/octet-stream")
    return handler.module.preprocess(image, handler.model)


def test_reference_parameters_are_the_ones_served():
    from model.weights import preprocessing

    assert preprocessing("mobilenet_v2").as_metadata() == PREPROCESSING


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "WEBP"])
def test_matches_torchvision_on_real_photos(handler, reference, name, image_format):
    body = images.encode(Image.fromarray(PHOTOS[name]()), image_format)
    expected = reference(body)
    actual = ours(handler, body)
    assert actual.shape == expected.shape == (1, 3, 224, 224)
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("size", [(224, 300), (232, 232), (233, 500), (640, 232), (50, 40)])
def test_matches_torchvision_at_edge_sizes(handler, reference, size):
    photo = Image.fromarray(skimage.data.coffee()).resize(size, Image.Resampling.BICUBIC)
    body = images.encode(photo, "PNG")
    np.testing.assert_allclose(ours(handler, body), reference(body), rtol=0, atol=1e-5)


@pytest.mark.parametrize("tiles", [(8, 1), (1, 9)])
def test_elongated_images_stay_within_one_step(handler, reference, tiles):
    strip = np.tile(skimage.data.chelsea(), (*tiles[::-1], 1))
    body = images.encode(Image.fromarray(strip), "PNG")
    assert np.abs(ours(handler, body) - reference(body)).max() <= ONE_STEP


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_every_interpolation_matches_torchvision(tmp_path, interpolation):
    """An imported model may ask for any of torchvision's interpolations; the handler
    applies each exactly as torchvision resizes a PIL image."""
    from serving.serve import LoadedHandler
    from tests.serving.conftest import write_tiny_model_dir

    prep = Preprocessing.from_mapping(
        {"resize_size": 256, "interpolation": interpolation}, IMAGENET_DEFAULTS
    )
    model_dir = write_tiny_model_dir(tmp_path)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    metadata["preprocessing"] = prep.as_metadata()
    (model_dir / "metadata.json").write_text(json.dumps(metadata))
    loaded = LoadedHandler(model_dir)
    try:
        for name in ("chelsea", "rocket"):
            photo = Image.fromarray(PHOTOS[name]())
            body = images.encode(photo, "PNG")
            expected = prep.reference()(photo)
            np.testing.assert_allclose(ours(loaded, body), expected, rtol=0, atol=1e-5)
    finally:
        loaded.close()
