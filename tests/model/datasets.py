"""Tiny image-folder datasets for fine-tuning tests, made from photos scikit-image and
scikit-learn ship (nothing is downloaded): each class is one photo, seen through random
crops, mirror images and colour shifts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageEnhance, ImageOps
from sklearn.datasets import load_sample_images

SOURCES = {
    "cat": skimage.data.chelsea,
    "coffee": skimage.data.coffee,
    "rocket": skimage.data.rocket,
    "astronaut": skimage.data.astronaut,
    "flower": lambda: load_sample_images().images[1],
}
SIDE = 96  # small files: decoding is not what these tests measure


def augmented(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    width, height = photo.size
    share = rng.uniform(0.55, 0.9)
    crop_w, crop_h = int(width * share), int(height * share)
    left, top = int(rng.integers(0, width - crop_w + 1)), int(rng.integers(0, height - crop_h + 1))
    view = photo.crop((left, top, left + crop_w, top + crop_h)).resize((SIDE, SIDE))
    if rng.random() < 0.5:
        view = ImageOps.mirror(view)
    return ImageEnhance.Color(view).enhance(rng.uniform(0.7, 1.3))


def make_dataset(root: Path, classes: tuple[str, ...], per_class: int, seed: int = 0) -> Path:
    """``root/<class>/<n>.jpg`` for each class, ``per_class`` views each."""
    rng = np.random.default_rng(seed)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True)
        photo = Image.fromarray(np.asarray(SOURCES[name]())).convert("RGB")
        for index in range(per_class):
            augmented(photo, rng).save(folder / f"{index}.jpg", quality=90)
    return root
