"""The model variants a stack serves, as its config `model` lists them.

SageMaker Serverless endpoints cannot host several production variants, so each variant is
a model version on a Serverless endpoint of its own, and the proxy shares the requests
among them by weight (its env `VARIANTS`, `proxy/variants.py`). A canary is weights
95/5; a rollback sets a variant's weight to 0 (its endpoint stays, idle) or removes it
(its endpoint is deleted): either way only the proxy's configuration changes.

The variant `main` is always there: it is the stack's own endpoint (`<project>-<stack>`,
the stack outputs `endpoint_name` and `model_version`), the baseline every other variant's
alarm compares with, and, where `model` names one archive or version, the only one. Every
other variant's endpoint is `<project>-<stack>-<name>`.

The proxy's image of the same rules (`proxy/variants.py`) cannot be imported here (the
program's environment is not the Lambda's); tests keep the two equal.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifact.registry import version_slug

MAIN = "main"
MAX_VARIANTS = 4
DEFAULT_WEIGHT = 100
"""The weight of `main` in a stack that serves one model: every request."""
ARCHIVE_SUFFIX = ".tar.gz"
"""What ends a model archive's path in config `model` (`python -m model.package` writes
one); anything else there is a version from the registry."""
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
"""A variant's name: a metric dimension, a record attribute and part of its endpoint's name."""
ENDPOINT_NAME_LIMIT = 63
"""SageMaker's limit on an endpoint's name."""
FIELDS = ("name", "weight", "archive", "version", "serverlessMemoryMb")
EXAMPLE = (
    "[{name: main, weight: 95, archive: build/model.tar.gz}, "
    "{name: canary, weight: 5, version: 3f9a1c2b4d5e}]"
)
REGISTRY_COMMAND = "python -m admin.registry list --bucket $(pulumi stack output artifact_bucket)"
"""How an operator sees the versions a stack's bucket holds."""


@dataclass(frozen=True)
class VariantSettings:
    """One variant as configured: what it serves and its share of the requests."""

    name: str
    weight: float
    """Its share is `weight / sum of weights`; 0 keeps its endpoint and sends it nothing."""
    archive: Path | None = None
    """A local archive to upload and serve; exactly one of `archive` and `version`."""
    version: str | None = None
    """A version already in the stack's artifact bucket (the registry)."""
    memory_mb: int | None = None
    """Its own Serverless memory; None: the stack's `serverlessMemoryMb`."""


def endpoint_name(name_prefix: str, variant: str) -> str:
    """`main` keeps the stack's endpoint name; every other variant gets one of its own."""
    return name_prefix if variant == MAIN else f"{name_prefix}-{variant}"


def version_problem(version: str) -> str | None:
    """Why `version` cannot name a registry version; None when it can."""
    if version and version_slug(version) == version:
        return None
    return (
        f"{version!r} is not a model version (lower-case letters, digits and dashes, at most "
        f"12, as `{REGISTRY_COMMAND}` shows them)"
    )


def too_many(count: int, provisioned_concurrency: int) -> str:
    """Why more than `MAX_VARIANTS` variants are refused: what each one costs."""
    warm = (
        f", and {provisioned_concurrency} warm instance(s) billed every hour even when idle "
        "(serverlessProvisionedConcurrency)"
        if provisioned_concurrency
        else ""
    )
    return (
        f"{count} variants, at most {MAX_VARIANTS}: each is a SageMaker Serverless endpoint "
        f"of its own, with its own cold starts and its own share of the account's serverless "
        f"concurrency{warm}"
    )


_Add = Callable[[str, str], None]
"""Records a problem under a key suffix."""


def _check_name(name: object, key: str, names: set[str], name_prefix: str, add: _Add) -> None:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        add(
            key,
            f"{name!r} must be 1 to 32 lower-case letters, digits and hyphens, starting "
            "with a letter or digit",
        )
    elif name in names:
        add(key, f"two variants are named {name!r}; names must be unique")
    elif len(endpoint := endpoint_name(name_prefix, name)) > ENDPOINT_NAME_LIMIT:
        add(
            key,
            f"{name!r} makes the endpoint name {endpoint!r}, longer than SageMaker's "
            f"{ENDPOINT_NAME_LIMIT} characters; use at most "
            f"{ENDPOINT_NAME_LIMIT - len(name_prefix) - 1}",
        )


def _checked_weight(weight: object, key: str, add: _Add) -> float | None:
    """The weight, or None (and a problem) when it is no number of 0 or more."""
    if (
        isinstance(weight, bool)
        or not isinstance(weight, int | float)
        or not math.isfinite(weight)
        or weight < 0
    ):
        add(key, f"{weight!r} must be a number, 0 or more")
        return None
    return weight


def _check_source(archive: object, version: object, at: str, add: _Add) -> None:
    """Exactly one of an archive to upload and a version already deployed."""
    if (archive is None) == (version is None):
        add(
            at,
            "needs exactly one of archive (a model.tar.gz to upload) and version (one "
            f"already deployed to this stack: `{REGISTRY_COMMAND}`)",
        )
    elif archive is not None and (not isinstance(archive, str) or not archive.strip()):
        add(f"{at}.archive", f"{archive!r} must be a path to a model.tar.gz")
    elif version is not None and (
        problem := version_problem(version if isinstance(version, str) else "")
    ):
        add(f"{at}.version", problem)


def _checked_memory(memory: object, key: str, add: _Add) -> int | None:
    """The variant's own serverless memory, if it sets a whole number of MB."""
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int)):
        add(key, f"{memory!r} must be a whole number of MB")
        return None
    return memory


def read_variants(
    entries: Any, project_dir: Path, name_prefix: str, provisioned_concurrency: int
) -> tuple[tuple[VariantSettings, ...], dict[str, str]]:
    """The variants `entries` (the config's JSON, parsed) lists, and what is wrong with
    them by key suffix (`""`, `"[1].weight"`). Archive paths are relative to `project_dir`."""
    if not isinstance(entries, list) or not entries:
        return (), {"": f"must be a non-empty list of variants, e.g. {EXAMPLE}"}
    problems: dict[str, str] = {}

    def add(key: str, problem: str) -> None:
        problems[key] = f"{problems[key]}; {problem}" if key in problems else problem

    if len(entries) > MAX_VARIANTS:
        add("", too_many(len(entries), provisioned_concurrency))
    variants: list[VariantSettings] = []
    names: set[str] = set()
    weights_valid = True
    for index, entry in enumerate(entries):
        at = f"[{index}]"
        if not isinstance(entry, Mapping):
            add(at, f"must be an object with {', '.join(FIELDS)}")
            continue
        unknown = sorted(set(entry) - set(FIELDS))
        if unknown:
            add(at, f"unknown field(s) {', '.join(unknown)}; a variant has {', '.join(FIELDS)}")
        name = entry.get("name")
        _check_name(name, f"{at}.name", names, name_prefix, add)
        if isinstance(name, str):
            names.add(name)
        weight = _checked_weight(entry.get("weight"), f"{at}.weight", add)
        weights_valid = weights_valid and weight is not None
        archive, version = entry.get("archive"), entry.get("version")
        _check_source(archive, version, at, add)
        variants.append(
            VariantSettings(
                name=str(name),
                weight=0 if weight is None else weight,
                archive=project_dir / archive if isinstance(archive, str) else None,
                version=version if isinstance(version, str) else None,
                memory_mb=_checked_memory(
                    entry.get("serverlessMemoryMb"), f"{at}.serverlessMemoryMb", add
                ),
            )
        )
    if MAIN not in names:
        add(
            "",
            f"must include the variant {MAIN!r}: the stack's own endpoint and the baseline the "
            "others are compared with (weight 0 keeps it idle)",
        )
    if weights_valid and not sum(variant.weight for variant in variants) > 0:
        add("", "every weight is 0: at least one variant must receive the requests")
    return tuple(variants), problems
