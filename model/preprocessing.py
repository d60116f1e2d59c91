"""What the network expects of a photo: resize, centre crop, interpolation, mean and std.

An archive records these in `metadata.json` and the handler applies them. For a
torchvision architecture they are the weights' own reference transforms
(``weights.transforms()``); for an imported ONNX model the user gives them (command line
or a JSON file), with ImageNet's usual values as defaults. Torch is imported only by
`reference`, so parsing the command line stays fast.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# torchvision's InterpolationMode values; the handler maps each to the Pillow filter
# torchvision itself uses for PIL images (`pil_modes_mapping`).
INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic", "box", "hamming", "lanczos")
MAX_SIZE = 1024  # a crop beyond this is a mistake, not a network


class PreprocessingError(ValueError):
    """A preprocessing value is missing, of the wrong type or out of range."""


@dataclass(frozen=True)
class Preprocessing:
    resize_size: int
    """The short side is resized to this many pixels..."""
    crop_size: int
    """...then the centre square of this side is the network input."""
    interpolation: str
    mean: tuple[float, float, float]
    """Per RGB channel, on pixel values scaled to [0, 1]."""
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem is not None:
            raise PreprocessingError(problem)

    @classmethod
    def from_transforms(cls, transforms: Any) -> Preprocessing:
        """From torchvision's ``ImageClassification`` (what ``weights.transforms()`` is)."""
        return cls(
            resize_size=int(transforms.resize_size[0]),
            crop_size=int(transforms.crop_size[0]),
            interpolation=transforms.interpolation.value,
            mean=tuple(transforms.mean),
            std=tuple(transforms.std),
        )

    @classmethod
    def from_mapping(cls, values: Mapping[str, object], base: Preprocessing) -> Preprocessing:
        """``base`` with the keys of ``values`` replacing its fields; unknown keys are
        refused, so a typo is not silently ignored."""
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise PreprocessingError(
                f"unknown preprocessing key(s) {', '.join(unknown)}; the keys are "
                f"{', '.join(FIELDS)}"
            )
        changes: dict[str, Any] = {}
        for key, value in values.items():
            if key in ("mean", "std"):
                if not isinstance(value, list | tuple) or len(value) != 3:
                    raise PreprocessingError(f"{key} must be 3 numbers (R, G, B), not {value!r}")
                value = tuple(value)
            changes[key] = value
        return replace(base, **changes)

    def as_metadata(self) -> dict[str, object]:
        """The ``preprocessing`` object of `metadata.json` (lists, as JSON has them)."""
        values = asdict(self)
        return {**values, "mean": list(self.mean), "std": list(self.std)}

    def reference(self) -> Callable[[Image.Image], np.ndarray]:
        """torchvision's reference pipeline for these values (the steps of its
        ``ImageClassification``), as a function from a photo to the [1,3,H,W] input."""
        import torch
        from torchvision import transforms
        from torchvision.transforms import InterpolationMode

        pipeline = transforms.Compose(
            [
                transforms.Resize(
                    self.resize_size,
                    interpolation=InterpolationMode(self.interpolation),
                    antialias=True,
                ),
                transforms.CenterCrop(self.crop_size),
                transforms.PILToTensor(),
                transforms.ConvertImageDtype(torch.float),
                transforms.Normalize(list(self.mean), list(self.std)),
            ]
        )
        return lambda image: pipeline(image.convert("RGB")).numpy()[np.newaxis]


FIELDS = ("resize_size", "crop_size", "interpolation", "mean", "std")


def _problem(prep: Preprocessing) -> str | None:
    for key in ("resize_size", "crop_size"):
        value = getattr(prep, key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
            return f"{key} must be a whole number of pixels from 1 to {MAX_SIZE}, not {value!r}"
    if prep.crop_size > prep.resize_size:
        return (
            f"crop_size {prep.crop_size} is larger than resize_size {prep.resize_size}: the "
            "crop must fit inside the resized image"
        )
    if prep.interpolation not in INTERPOLATIONS:
        return (
            f"interpolation must be one of {', '.join(INTERPOLATIONS)}, not {prep.interpolation!r}"
        )
    for key in ("mean", "std"):
        values = getattr(prep, key)
        if len(values) != 3 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        ):
            return f"{key} must be 3 finite numbers (R, G, B), not {list(values)!r}"
    if not all(v > 0 for v in prep.std):
        return f"std must be positive, not {list(prep.std)!r}"
    return None


IMAGENET_DEFAULTS = Preprocessing(
    resize_size=256,
    crop_size=224,
    interpolation="bilinear",
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
)
"""The usual ImageNet evaluation transforms: what an imported model gets unless told."""


def read_preprocessing_file(path: Path) -> dict[str, object]:
    """The JSON object of a preprocessing file (any of `FIELDS`; checked by
    `Preprocessing.from_mapping` once the command line's values are merged in)."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PreprocessingError(f"--preprocessing {path}: cannot read it ({error})") from error
    except ValueError as error:
        raise PreprocessingError(f"--preprocessing {path}: not JSON ({error})") from error
    if not isinstance(values, dict):
        raise PreprocessingError(f"--preprocessing {path}: must hold a JSON object")
    return values
