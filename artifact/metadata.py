"""An archive's `metadata.json`: what every reader of a built archive needs from it.

Pure standard library, so the Pulumi program and the local runtime read archives
without torch. `model.package` writes the file; this module owns the weights ids.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from artifact.labels import IMAGENET_LABEL_SET, LABEL_SETS

DEFAULT_ARCH = "mobilenet_v2"
"""The architecture `python -m model.package --weights ...` builds unless `--arch` says."""
RANDOM = "random"
"""`--weights random`, and the weights id recorded for it: an untrained network."""
IMAGENET = "imagenet"
"""`--weights imagenet`: torchvision's pretrained weights of the architecture, recorded
by their torchvision name (`IMAGENET_ID` for the default MobileNetV2)."""
IMAGENET_ID = "IMAGENET1K_V2"


class ArchiveMetadataError(ValueError):
    """The file is not a model archive with a usable `metadata.json`."""


@dataclass(frozen=True)
class ArchiveMetadata:
    path: Path
    name: str
    version: str
    """Content version; a new model means a new version."""
    weights: str
    """torchvision's weights name (`IMAGENET_ID` for the default MobileNetV2), `RANDOM`
    (untrained), `file:<sha256 prefix>` or, for an imported model, `onnx:<sha256 prefix>`."""
    labels: tuple[str, ...] = ()
    """Its class names in output order (empty only in metadata written without them)."""
    memory_mb_min: int | None = None
    """The smallest SageMaker Serverless memory (MB, a multiple of 1024) the archive needs;
    None for archives built before it was recorded."""
    label_set: str = IMAGENET_LABEL_SET
    """`artifact.labels.IMAGENET_LABEL_SET` or `CUSTOM_LABEL_SET`, as the packager decided
    it; archives from before it was recorded answer with ImageNet's classes."""

    @property
    def untrained(self) -> bool:
        return self.weights == RANDOM


def read_archive_metadata(path: Path) -> ArchiveMetadata:
    """Read `metadata.json` from a model archive without extracting the rest."""
    raw = read_archive_metadata_bytes(path)
    try:
        meta = json.loads(raw)
    except ValueError as error:
        raise ArchiveMetadataError(f"{path}: metadata.json is not JSON ({error})") from error
    if not isinstance(meta, dict):
        meta = {}
    name, version, weights = (meta.get(key) for key in ("name", "version", "weights"))
    if not (_text(name) and _text(version) and _text(weights)):
        raise ArchiveMetadataError(
            f"{path}: metadata.json lacks a non-empty string name, version and weights"
        )
    labels = meta.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
        raise ArchiveMetadataError(f"{path}: metadata.json labels is not a list of names")
    label_set = meta.get("label_set", IMAGENET_LABEL_SET)
    if label_set not in LABEL_SETS:
        raise ArchiveMetadataError(
            f"{path}: metadata.json label_set is not one of {', '.join(LABEL_SETS)}"
        )
    return ArchiveMetadata(
        path=path,
        memory_mb_min=memory_mb_min(meta, str(path)),
        labels=tuple(labels),
        label_set=label_set,
        name=name,
        version=version,
        weights=weights,
    )


def _text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value)


def memory_mb_min(meta: Mapping[str, Any], where: str) -> int | None:
    """`memory_mb_min` of a parsed `metadata.json` (an archive's, or the sidecar the stack
    reads from its registry), None when it predates it; `where` names the file in the error."""
    memory = meta.get("memory_mb_min")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int)):
        raise ArchiveMetadataError(f"{where}: metadata.json memory_mb_min is not a whole number")
    return memory


def read_archive_metadata_bytes(path: Path) -> bytes:
    """`metadata.json` of a model archive exactly as packaged: the stack uploads it beside
    the archive, so the registry and a rollback read it without the archive."""
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if member.name.removeprefix("./") == "metadata.json":
                    stream = archive.extractfile(member)
                    if stream is not None:
                        return stream.read()
    except (OSError, tarfile.TarError) as error:
        raise ArchiveMetadataError(f"{path} is not a model archive ({error})") from error
    raise ArchiveMetadataError(f"{path} is not a model archive (it has no metadata.json)")
