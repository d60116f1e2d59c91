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
    buffer = io.BytesIO()
    Image.fromarray(photo(name)).save(buffer, format=image_format, **options)
    return buffer.getvalue()
