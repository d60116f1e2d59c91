"""Model archives by name, and the model registry: where a stack's artifact bucket keeps
each model version.

The stack uploads each archive once per version, `models/<slug>/model.tar.gz` with its
`metadata.json` beside it (`components/model_archive.py`), `python -m admin.registry`
lists them (`admin/registry.py`), and a transform job reads them (`batch.transform`).
"""

from __future__ import annotations

import re

ARCHIVE_SUFFIX = ".tar.gz"
"""What ends a model archive's file name, a gzipped tar as SageMaker takes it: every
`python -m model.package --out` ends with it, and a path in config `model` that does is an
archive (anything else there is a version from the registry)."""
KEY_PREFIX = "models/"
ARCHIVE_NAME = f"model{ARCHIVE_SUFFIX}"
METADATA_NAME = "metadata.json"
"""The sidecar: the archive's own `metadata.json`, uploaded beside it."""


def version_slug(version: str) -> str:
    """A version as an AWS name fragment and registry key segment: lowercase letters,
    digits and dashes, at most 12 (`model.package` versions are 12 hex digits already)."""
    return (re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-") or "v")[:12]


def archive_key(slug: str) -> str:
    return f"{KEY_PREFIX}{slug}/{ARCHIVE_NAME}"


def metadata_key(slug: str) -> str:
    return f"{KEY_PREFIX}{slug}/{METADATA_NAME}"
