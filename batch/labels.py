"""The labels a model answers with, found by its version: what a reviewer may choose from.

An outcome names its model (`model.name`, `model.version`: the archive's content hash),
not its labels (ImageNet has 1000). Labels are kept as the proxy keeps them
(`proxy.labels`): one file per version, `model_labels/<version>.json`, a JSON array in
the model's output order. They come from, in order:

1. `--labels-from SPEC`: a model archive (`model.tar.gz`), its `metadata.json`, a labels
   file or a directory of them (`MODEL_LABELS_DIR`, e.g. `build/local-data/model_labels`),
   or `s3://bucket/key` of a `metadata.json` (the stack uploads one beside each archive);
2. beside the outcomes: `OUT/model_labels/<version>.json` (`python -m batch run` writes
   it from the archive it serves), or `model_labels/<version>.json` in the bucket;
3. the local runtime's: its labels directory (`build/local-data/model_labels`), then its
   archive (`build/model.tar.gz`) when that is the version asked.

A source whose version differs from the outcome's is refused: another model's labels
would be other classes.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from artifact.metadata import ArchiveMetadataError, read_archive_metadata
from machine.artifact import DEFAULT_ARCHIVE, DEFAULT_DATA_DIR, ArtifactError, read_archive_labels
from pipeline.storage import LocalStorage, ObjectMissing, S3Storage, Storage, StorageError
from proxy.labels import (
    MAX_LABELS_FILE_BYTES,
    LabelsUnavailable,
    ModelLabels,
    is_model_version,
    write_labels_file,
)
from shared.labels import MODEL_LABELS_DIR

LOCAL_SOURCES = (DEFAULT_DATA_DIR / MODEL_LABELS_DIR, DEFAULT_ARCHIVE)
"""The local runtime's labels directory and archive."""


class LabelsError(ValueError):
    """No labels for the model asked, or a source that cannot be read; the message says
    what to pass."""


@dataclass(frozen=True)
class KnownLabels:
    version: str
    labels: tuple[str, ...]
    source: str


def labels_path(out_dir: Path, version: str) -> Path:
    return out_dir / MODEL_LABELS_DIR / f"{version}.json"


def save(out_dir: Path, archive: Path) -> KnownLabels:
    """Keep the archive's labels beside the outcomes, for the review CLI."""
    known = archive_labels(archive)
    write_labels_file(out_dir / MODEL_LABELS_DIR, known.version, list(known.labels))
    return known


def archive_labels(path: Path) -> KnownLabels:
    """The labels of a model archive, read without extracting it."""
    try:
        version = read_archive_metadata(path).version
        return KnownLabels(version, tuple(read_archive_labels(path)), str(path))
    except (ArchiveMetadataError, ArtifactError) as error:
        raise LabelsError(str(error)) from None


def from_metadata(document: object, where: str) -> KnownLabels:
    """The labels of an archive's `metadata.json`."""
    version = document.get("version") if isinstance(document, dict) else None
    labels = document.get("labels") if isinstance(document, dict) else None
    if not isinstance(version, str) or not version:
        raise LabelsError(f"{where}: no model version (not an archive's metadata.json?)")
    return KnownLabels(version, _checked(labels, where), where)


def _checked(labels: object, where: str) -> tuple[str, ...]:
    if not isinstance(labels, list) or not labels:
        raise LabelsError(f"{where}: no list of labels")
    if not all(isinstance(label, str) and label for label in labels):
        raise LabelsError(f"{where}: the labels are not all non-empty strings")
    return tuple(labels)


class Given:
    """`--labels-from SPEC`: one version's labels, or a directory of labels files."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._directory: ModelLabels | None = None
        self._known: KnownLabels | None = None
        if spec.startswith("s3://"):
            bucket, _slash, key = spec.removeprefix("s3://").partition("/")
            try:
                document = S3Storage(bucket).read_json(key)
            except StorageError as error:
                raise LabelsError(str(error)) from None
            if document is None:
                raise LabelsError(f"{spec}: no such object, or not a JSON object")
            self._known = from_metadata(document, spec)
            return
        path = Path(spec)
        if path.is_dir():
            self._directory = ModelLabels(path)
        elif not path.is_file():
            raise LabelsError(f"--labels-from {spec}: no such file or folder")
        elif path.suffix == ".json":
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise LabelsError(f"{spec}: {error}") from None
            if isinstance(document, list):  # a labels file: its name is the version
                self._known = KnownLabels(path.stem, _checked(document, spec), spec)
            else:
                self._known = from_metadata(document, spec)
        else:
            self._known = archive_labels(path)

    def get(self, version: str) -> KnownLabels:
        if self._directory is not None:
            found = _from_directory(self._directory, version)
            if found is None:
                raise LabelsError(f"{self.spec}: no labels file for model version {version}")
            return found
        assert self._known is not None
        if self._known.version != version:
            raise LabelsError(
                f"{self.spec} has model version {self._known.version}'s labels, but the "
                f"item was classified by version {version}"
            )
        return self._known


def _from_directory(directory: ModelLabels, version: str) -> KnownLabels | None:
    try:
        found = directory.get(version)
    except LabelsUnavailable as error:
        if error.missing:
            return None
        raise LabelsError(str(error)) from None
    return KnownLabels(version, found.labels, str(directory.directory))


def _from_storage(out: Storage, version: str) -> KnownLabels | None:
    """The labels file the stack wrote beside the outcomes, if there is one."""
    if isinstance(out, LocalStorage):
        return _from_directory(ModelLabels(out.root / MODEL_LABELS_DIR), version)
    key = f"{MODEL_LABELS_DIR}/{version}.json"
    try:
        blob = out.read(key, MAX_LABELS_FILE_BYTES)
    except ObjectMissing:
        return None  # none there: look further
    if blob is None or blob.data is None:
        return None
    try:
        labels = json.loads(blob.data)
    except ValueError as error:
        raise LabelsError(f"{out.describe()}/{key}: {error}") from None
    return KnownLabels(version, _checked(labels, key), f"{out.describe()}/{key}")


def find(
    out: Storage,
    version: str,
    given: Given | None = None,
    local: tuple[Path, ...] = LOCAL_SOURCES,
) -> KnownLabels:
    """The labels of model `version` (the sources in the module's docstring, in order)."""
    if given is not None:
        return given.get(version)
    if not is_model_version(version):
        raise LabelsError(f"{version!r} is not a model version")
    found = _from_storage(out, version)
    if found is not None:
        return found
    for source in local:
        if source.is_dir():
            found = _from_directory(ModelLabels(source), version)
            if found is not None:
                return found
        elif source.is_file():
            known = archive_labels(source)
            if known.version == version:
                return known
    raise LabelsError(
        f"no labels known for model version {version}: pass --labels-from with its archive "
        "(model.tar.gz), its metadata.json or a labels directory"
    )


def nearest(labels: Sequence[str], typed: str, limit: int = 4) -> list[str]:
    """The labels `typed` most likely means, best first, as the web page's feedback picker
    ranks them (site/words.js): the same words ("cats" finds "tiger cat"), words that
    start so, the text within a label, then a typo (1 edit in a short word, 2 in a longer)."""
    wanted = _fold(typed)
    terms = [_singular(word) for word in _words(typed)]
    typos = 1 if len(wanted) < 5 else 2

    def rank(label: str) -> float:
        whole, own = _fold(label), [_singular(word) for word in _words(label)]
        if not wanted:
            return math.inf
        if whole == wanted:
            return 0
        if terms and all(term in own for term in terms):
            return 1 + len(own) / 100
        if terms and all(any(word.startswith(term) for word in own) for term in terms):
            return 2
        if wanted in whole:
            return 3
        edits = min(_distance(text, wanted) for text in (whole, *own))
        return 4 + edits if edits <= typos else math.inf

    ranked = sorted((rank(label), index, label) for index, label in enumerate(labels))
    return [label for score, _, label in ranked if score != math.inf][:limit]


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).strip()


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[^a-z0-9]+", _fold(text)) if word]


def _singular(word: str) -> str:
    """The singular of an English plural (cats, boxes, puppies); short words stay."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and re.search(r"(s|x|z|ch|sh)es$", word):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    previous = list(range(len(b) + 1))
    for i, left in enumerate(a, 1):
        row = [i]
        for j, right in enumerate(b, 1):
            row.append(min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (left != right)))
        previous = row
    return previous[-1]
