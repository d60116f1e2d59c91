"""The labels of each model version, for checking feedback and for `GET /api/labels`.

`MODEL_LABELS_DIR` names a directory holding one file per model version,
`<model_version>.json`: a JSON array of the version's labels (UTF-8, in the model's output
order, as its archive's `metadata.json` lists them). The stack bundles the files of the
versions it serves into the Lambda zip under `shared.labels.MODEL_LABELS_DIR` (so on
Lambda the directory is `/var/task/model_labels`); the local runtime writes the served
archive's.

A version's labels never change (the version is the archive's content hash), so a file is
read once per container and kept. A missing file is looked for again at the next request:
locally it may appear while the runtime runs.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

MAX_LABELS_FILE_BYTES = 4 * 1024 * 1024
MAX_CACHED_VERSIONS = 16
"""More versions than a stack serves at once (at most 4 variants), and then some."""

# A model version is 12 hex digits (model.package); anything that is a plain file name
# stem is accepted, and nothing that could leave the directory.
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


class LabelsUnavailable(LookupError):
    """No usable labels file for a version; the message says why (for the log)."""

    def __init__(self, version: str, reason: str, *, missing: bool) -> None:
        super().__init__(reason)
        self.version = version
        self.missing = missing
        """True when there is no file; False when there is one that cannot be used."""


@dataclass(frozen=True)
class LabelList:
    """One version's labels: in order for clients, as a set for checks."""

    version: str
    labels: tuple[str, ...]
    members: frozenset[str]

    def __contains__(self, label: object) -> bool:
        return label in self.members

    def __len__(self) -> int:
        return len(self.labels)


def is_model_version(text: object) -> TypeGuard[str]:
    """Whether `text` can name a labels file: letters, digits, `_`, `.` and `-`, at most
    128, starting with a letter or digit."""
    return isinstance(text, str) and _VERSION.fullmatch(text) is not None


def labels_file(directory: str | Path, version: str) -> Path:
    """Where the labels of `version` are; `ValueError` for a version that is no file name."""
    if not is_model_version(version):
        raise ValueError(f"{version!r} is not a model version")
    return Path(directory) / f"{version}.json"


def write_labels_file(directory: str | Path, version: str, labels: list[str]) -> Path:
    """Write `labels` as the labels file of `version` (the format the proxy reads)."""
    path = labels_file(directory, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".json.tmp")
    scratch.write_text(json.dumps(labels, ensure_ascii=False), encoding="utf-8")
    scratch.replace(path)
    return path


class ModelLabels:
    """The labels files of one directory, read when first needed and then kept."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._cache: dict[str, LabelList] = {}
        self._lock = threading.Lock()

    def get(self, version: str) -> LabelList:
        """The labels of `version`; `LabelsUnavailable` without a usable file."""
        cached = self._cache.get(version)
        if cached is not None:
            return cached
        found = self._read(version)
        with self._lock:
            if len(self._cache) >= MAX_CACHED_VERSIONS:
                self._cache.pop(next(iter(self._cache)))
            self._cache[version] = found
        return found

    def _read(self, version: str) -> LabelList:
        try:
            path = labels_file(self.directory, version)
        except ValueError:
            raise LabelsUnavailable(
                version, f"{version!r} is not a model version", missing=True
            ) from None
        try:
            with path.open("rb") as stream:
                raw = stream.read(MAX_LABELS_FILE_BYTES + 1)
        except FileNotFoundError:
            raise LabelsUnavailable(version, f"{path} does not exist", missing=True) from None
        except OSError as error:
            raise LabelsUnavailable(version, f"{path}: {error}", missing=False) from None
        if len(raw) > MAX_LABELS_FILE_BYTES:
            raise LabelsUnavailable(
                version, f"{path} is over {MAX_LABELS_FILE_BYTES} bytes", missing=False
            )
        try:
            labels = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise LabelsUnavailable(
                version, f"{path} is not JSON: {error}", missing=False
            ) from None
        if (
            not isinstance(labels, list)
            or not labels
            or not all(isinstance(label, str) and label for label in labels)
        ):
            raise LabelsUnavailable(
                version, f"{path} is not a JSON array of non-empty strings", missing=False
            )
        return LabelList(version, tuple(labels), frozenset(labels))
