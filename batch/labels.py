"""The labels a model answers with, found by its version: what a reviewer may choose from.

An outcome names its model (`model.name`, `model.version`: the archive's content hash),
not its labels (ImageNet has 1000). The labels come from:

1. `--labels-from SPEC`: a model archive (`model.tar.gz`), its `metadata.json`, or
   `s3://bucket/key` of a `metadata.json` (the stack uploads one beside each archive,
   `models/<version>/metadata.json` in the artifact bucket);
2. `models/<version>.json` in the outcomes' folder or bucket: `python -m batch run`
   writes it there from the archive it serves;
3. the local runtime's archive, `build/model.tar.gz`, when its version is the one asked.

A source whose version differs from the outcome's is refused: another model's labels
would be other classes.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch.storage import S3Storage, Storage, StorageError
from model.metadata import ArchiveMetadataError, read_archive_metadata

MODELS = "models/"
LOCAL_ARCHIVE = Path(__file__).resolve().parent.parent / "build" / "model.tar.gz"
"""The local runtime's archive (`local.artifact.DEFAULT_ARCHIVE`)."""
_SAFE_VERSION = re.compile(r"[^A-Za-z0-9._-]")


class LabelsError(ValueError):
    """No labels for the model asked, or a source that cannot be read; the message says
    what to pass."""


@dataclass(frozen=True)
class ModelLabels:
    name: str
    version: str
    labels: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "labels": list(self.labels)}


def models_key(version: str) -> str:
    return f"{MODELS}{_SAFE_VERSION.sub('_', version)[:100]}.json"


def from_metadata(document: Any, where: str) -> ModelLabels:
    """The labels of an archive's `metadata.json` (or of a `models/<version>.json`)."""
    if not isinstance(document, dict):
        raise LabelsError(f"{where}: not a JSON object")
    name, version, labels = document.get("name"), document.get("version"), document.get("labels")
    if not (isinstance(name, str) and isinstance(version, str) and version):
        raise LabelsError(f"{where}: no model name and version")
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise LabelsError(f"{where}: no list of labels (an archive from before labels?)")
    return ModelLabels(name, version, tuple(labels))


def archive_labels(path: Path) -> ModelLabels:
    """The labels of a model archive, read without extracting it."""
    try:
        read_archive_metadata(path)  # the archive's own checks first
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if member.name.removeprefix("./") == "metadata.json":
                    stream = archive.extractfile(member)
                    if stream is not None:
                        return from_metadata(json.load(stream), str(path))
    except (ArchiveMetadataError, OSError, tarfile.TarError, ValueError) as error:
        raise LabelsError(f"{path}: {error}") from None
    raise LabelsError(f"{path}: no metadata.json")


def read_source(spec: str) -> ModelLabels:
    """`--labels-from`: an archive, a `metadata.json`, or `s3://bucket/key` of one."""
    if spec.startswith("s3://"):
        bucket, _slash, key = spec.removeprefix("s3://").partition("/")
        try:
            document = S3Storage(bucket).read_json(key)
        except StorageError as error:
            raise LabelsError(str(error)) from None
        if document is None:
            raise LabelsError(f"{spec}: no such object, or not JSON")
        return from_metadata(document, spec)
    path = Path(spec)
    if not path.is_file():
        raise LabelsError(f"--labels-from {spec}: no such file")
    if path.suffix == ".json":
        try:
            return from_metadata(json.loads(path.read_text(encoding="utf-8")), spec)
        except (OSError, ValueError) as error:
            raise LabelsError(f"{spec}: {error}") from None
    return archive_labels(path)


def save(out: Storage, labels: ModelLabels) -> None:
    """Keep the labels beside the outcomes, for the review CLI."""
    out.write_json(models_key(labels.version), labels.as_json())


def find(
    out: Storage,
    version: str,
    given: ModelLabels | None = None,
    local_archive: Path = LOCAL_ARCHIVE,
) -> ModelLabels:
    """The labels of model `version` (the sources in the module's docstring, in order)."""
    if given is not None:
        if given.version != version:
            raise LabelsError(
                f"the labels given are model version {given.version}'s, but the item was "
                f"classified by version {version}"
            )
        return given
    try:
        document = out.read_json(models_key(version))
    except StorageError as error:
        raise LabelsError(str(error)) from None
    if document is not None:
        return from_metadata(document, f"{out.describe()}/{models_key(version)}")
    if local_archive.is_file():
        local = archive_labels(local_archive)
        if local.version == version:
            return local
    raise LabelsError(
        f"no labels known for model version {version}: pass --labels-from with its archive "
        "(model.tar.gz) or metadata.json"
    )
