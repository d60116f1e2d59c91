"""Which label set a list is: ImageNet's needs torchvision's list to compare with (the
labels file itself and the set's names are `artifact.labels`')."""

from __future__ import annotations

from artifact.labels import CUSTOM_LABEL_SET, IMAGENET_LABEL_SET


def imagenet_labels() -> list[str]:
    """torchvision's ImageNet categories, in the order of the networks' 1000 outputs."""
    from torchvision.models import MobileNet_V2_Weights

    return list(MobileNet_V2_Weights.IMAGENET1K_V2.meta["categories"])


def label_set(labels: list[str]) -> str:
    """`metadata.json` `label_set` of `labels`."""
    return IMAGENET_LABEL_SET if labels == imagenet_labels() else CUSTOM_LABEL_SET
