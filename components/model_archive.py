"""The model archive built by `python -m model.package`, as the Pulumi program sees it, in
the stack's registry (its layout: `shared.registry`).

Only `metadata.json` is read (its `version` names every versioned resource, its `weights`
is exported so an untrained model is visible in the stack outputs, its `labels` go into
the proxy's zip for feedback); the archive itself is uploaded as is, once per version,
under `models/<slug>/model.tar.gz` with the `metadata.json` beside it, and stays there
(`python -m admin.registry list` shows them), so a later deployment can serve a version
from the bucket alone (`RegistryVersion`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from artifact.metadata import (
    ArchiveMetadataError,
    read_archive_metadata,
    read_archive_metadata_bytes,
)
from shared.registry import version_slug

BUILD_COMMAND = "python -m model.package --weights imagenet --out build/model.tar.gz"


class ModelArchiveError(pulumi.RunError):
    """The archive is missing or is not one `model.package` built; a one-line fix is given."""


def metadata_labels(metadata: Any, where: str) -> tuple[str, ...]:
    """The class labels `metadata.json` lists in the model's output order; `where` names
    the file in the error."""
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelArchiveError(
            f"{where}: metadata.json has no list of labels; rebuild the archive with "
            f"`{BUILD_COMMAND}`"
        )
    return tuple(labels)


@dataclass(frozen=True)
class ModelArchive:
    """A local archive to upload (with its sidecar)."""

    path: Path
    version: str
    """Content version from `metadata.json`; a new model means a new version."""
    weights: str
    """As `artifact.metadata.ArchiveMetadata.weights` records it."""
    metadata_json: str = ""
    """Its `metadata.json` as packaged, uploaded as the sidecar."""
    labels: tuple[str, ...] = ()
    memory_mb_min: int | None = None
    """As `artifact.metadata.ArchiveMetadata.memory_mb_min` records it (None: not checked)."""

    @property
    def slug(self) -> str:
        return version_slug(self.version)


@dataclass(frozen=True)
class RegistryVersion:
    """A version already in the stack's artifact bucket (uploaded by an earlier deployment),
    served without its archive file: a rollback or a promotion needs neither torch nor it."""

    version: str
    """As `python -m admin.registry list` shows it, which is also its key segment."""

    @property
    def slug(self) -> str:
        return version_slug(self.version)


def read_model_archive(path: Path) -> ModelArchive:
    if not path.is_file():
        raise ModelArchiveError(
            f"model archive {path} not found; build it first with `{BUILD_COMMAND}` "
            "(or set config model to another archive, or to a version already deployed)"
        )
    try:
        metadata = read_archive_metadata(path)
        raw = read_archive_metadata_bytes(path).decode("utf-8")
        labels = metadata_labels(json.loads(raw), str(path))
    except (ArchiveMetadataError, UnicodeDecodeError, ValueError) as error:
        raise ModelArchiveError(f"{error}; rebuild it with `{BUILD_COMMAND}`") from error
    return ModelArchive(
        path=path,
        version=metadata.version,
        weights=metadata.weights,
        metadata_json=raw,
        labels=labels,
        memory_mb_min=metadata.memory_mb_min,
    )
