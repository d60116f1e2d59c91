"""Where a stack keeps its model archives: the registry in its artifact bucket.

Each archive the stack uploads is `models/<slug>/model.tar.gz`, with its `metadata.json`
beside it, kept for good: what the Pulumi program uploads and serves
(`components.model_archive`), and what a transform job reads (`batch.transform`).
`python -m admin.registry` lists them with a copy of these rules (its environment has no
`artifact`), which tests/infra/test_variants.py keeps equal.
"""

from __future__ import annotations

import re

KEY_PREFIX = "models/"
ARCHIVE_NAME = "model.tar.gz"
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
