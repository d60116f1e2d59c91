"""The model archive built by `python -m model.package`, as the Pulumi program sees it.

Only `metadata.json` is read (its `version` names every versioned resource, its `weights`
is exported so an untrained model is visible in the stack outputs); the archive itself is
uploaded as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pulumi

from model.metadata import ArchiveMetadataError, read_archive_metadata

BUILD_COMMAND = "python -m model.package --weights imagenet --out build/model.tar.gz"


class ModelArchiveError(pulumi.RunError):
    """The archive is missing or is not one `model.package` built; a one-line fix is given."""


@dataclass(frozen=True)
class ModelArchive:
    path: Path
    version: str
    """Content version from `metadata.json`; a new model means a new version."""
    weights: str
    """As `model.metadata.ArchiveMetadata.weights` records it."""

    @property
    def slug(self) -> str:
        """The version as an AWS name fragment: lowercase letters, digits and dashes, 12 long."""
        return (re.sub(r"[^a-z0-9]+", "-", self.version.lower()).strip("-") or "v")[:12]


def read_model_archive(path: Path) -> ModelArchive:
    if not path.is_file():
        raise ModelArchiveError(
            f"model archive {path} not found; build it first with `{BUILD_COMMAND}` "
            "(or set modelArchive)"
        )
    try:
        metadata = read_archive_metadata(path)
    except ArchiveMetadataError as error:
        raise ModelArchiveError(f"{error}; rebuild it with `{BUILD_COMMAND}`") from error
    return ModelArchive(path=path, version=metadata.version, weights=metadata.weights)
