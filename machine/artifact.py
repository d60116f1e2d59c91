"""The model archive the local runtime serves: given, reused, or built on first run."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from artifact.metadata import (
    IMAGENET,
    IMAGENET_ID,
    RANDOM,
    ArchiveMetadata,
    ArchiveMetadataError,
    read_archive_metadata,
)
from artifact.package_exit import EXIT_INT8_REFUSED

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARCHIVE = REPO_ROOT / "build" / "model.tar.gz"
DEFAULT_DATA_DIR = REPO_ROOT / "build" / "local-data"
"""Kept across runs: the prediction records (`predictions.sqlite3`, the report's input) and
the served archives' labels (`model_labels/<version>.json`)."""


class ArtifactError(Exception):
    """The archive cannot be found, read or built; the message says what to do."""


def shown(path: Path) -> str:
    """`path` as the user would type it here: relative to the working directory if within
    (`build/model.tar.gz` under `make run`), else as it is."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def read_model_info(path: Path) -> ArchiveMetadata:
    try:
        return read_archive_metadata(path)
    except ArchiveMetadataError as error:
        raise ArtifactError(str(error)) from error


def read_archive_labels(path: Path) -> list[str]:
    """The labels an archive answers with, in output order (its `metadata.json` `labels`)."""
    labels = list(read_model_info(path).labels)
    if not labels:
        raise ArtifactError(f"{path}: metadata.json has no list of labels")
    return labels


def _same_weights(recorded: str, requested: str) -> bool:
    """Whether an archive's recorded weights id is what `--weights` asks for (a PATH is
    recorded by content hash, so it always rebuilds; the build is reproducible)."""
    return recorded == requested or (requested == IMAGENET and recorded == IMAGENET_ID)


def build_archive(
    weights: str, out: Path, say: Callable[[str], None], *, fallback: bool = False
) -> bool:
    """Whether `python -m model.package` built `out` with `weights`. It runs in a child
    process, so torch never stays in this one. Where the int8 model fails its agreement
    check with these weights, the exact fp32 one is built instead. ``fallback``: the
    caller has another way if this fails, so the packager's errors are shown as notes."""
    command = [sys.executable, "-m", "model.package", "--weights", weights, "--out", str(out)]
    status = _package(command, fallback)
    if status == EXIT_INT8_REFUSED:
        say("The int8 model disagrees with fp32 on these weights; building fp32 instead.")
        status = _package([*command, "--precision", "fp32"], fallback)
    return status == 0


def _package(command: list[str], fallback: bool) -> int:
    """The packager's exit status. Its errors name its own flags, not this CLI's, so each
    line of them says whose it is."""
    result = subprocess.run(  # noqa: S603
        command, cwd=REPO_ROOT, stderr=subprocess.PIPE, text=True, check=False
    )
    for line in (result.stderr or "").splitlines():
        if fallback and line.startswith("error: "):
            line = "note: " + line.removeprefix("error: ")
        print(f"model.package: {line}", file=sys.stderr, flush=True)
    return result.returncode


def resolve_artifact(
    artifact: Path | None,
    weights: str | None,
    say: Callable[[str], None],
    out: Path = DEFAULT_ARCHIVE,
) -> ArchiveMetadata:
    """The archive to serve.

    `--artifact` is used as is. Otherwise `out` is reused when it exists and matches
    `--weights` (if given); else it is built with `--weights`, or by default with the
    pretrained weights, falling back to untrained ones when those cannot be had.
    """
    if artifact is not None:
        if not artifact.is_file():
            raise ArtifactError(f"--artifact {artifact}: no such file")
        return read_model_info(artifact)

    if out.is_file():
        try:
            existing = read_model_info(out)
        except ArtifactError as exc:
            say(f"{exc}; building it again")
        else:
            if weights is None or _same_weights(existing.weights, weights):
                return existing

    out.parent.mkdir(parents=True, exist_ok=True)
    if weights is not None:
        say(f"Building {shown(out)} with --weights {weights} ...")
        if not build_archive(weights, out, say):
            advice = (
                ""
                if weights in (IMAGENET, RANDOM)
                else ". For a state_dict of classes of your own, package it with its labels "
                "and serve that: python -m model.package --weights "
                f"{shlex.quote(weights)} --labels labels.txt --out build/mine.tar.gz; then "
                "--artifact build/mine.tar.gz"
            )
            raise ArtifactError(
                f"could not build the model archive with --weights {weights} (model.package's "
                f"error above){advice}"
            )
        return read_model_info(out)

    say(f"Building {shown(out)} with the pretrained ImageNet weights ...")
    if not build_archive(IMAGENET, out, say, fallback=True):
        say(
            "The pretrained weights cannot be had here (see above). Building with RANDOM, "
            "UNTRAINED weights instead: predictions will be meaningless. Pass "
            "--weights PATH (a MobileNetV2 state_dict) for a real classifier."
        )
        if not build_archive(RANDOM, out, say):
            raise ArtifactError("could not build the model archive, even with random weights")
    return read_model_info(out)
