"""Real photos shipped offline by scikit-image and scikit-learn, encoded as users send them."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image


@cache
def photo(name: str) -> np.ndarray:
    if name == "china":
        from sklearn.datasets import load_sample_images

        return load_sample_images().images[0]
    import skimage.data

    return getattr(skimage.data, name)()


def encoded(name: str, image_format: str = "JPEG", **options: object) -> bytes:
    return encode(photo(name), image_format, **options)


def encode(pixels: np.ndarray, image_format: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def with_alpha(name: str) -> bytes:
    """A PNG with a half-transparent alpha channel, as screenshots and stickers are."""
    rgb = photo(name)
    return encode(np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)]), "PNG")
