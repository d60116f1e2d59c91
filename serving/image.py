"""The serving image's identity: its tag is a hash of everything that goes into it.

    python -m serving.image [--base-image REF]     # prints the tag

Standard library only, so the Pulumi program can import it to name the image it builds
and pushes: an unchanged image keeps its tag, and is never built or pushed again.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

DOCKERFILE = "serving/Dockerfile"
DOCKERIGNORE = ".dockerignore"
LOCK_FILE = "serving/requirements-image.lock"
SERVING_CODE = (
    "artifact/__init__.py",
    "artifact/archive.py",
    "artifact/output.py",
    "serving/__init__.py",
    "serving/batch_transform.py",
    "serving/serve.py",
)
# Relative to the repository root, the build context. Every file the build reads.
CONTEXT_FILES = (DOCKERFILE, DOCKERIGNORE, LOCK_FILE, *SERVING_CODE)
# Bump to give every image a new tag when the way the tag is computed changes.
SCHEME = b"image-classifier-serving-image/1"
TAG_HEX_DIGITS = 16
BASE_IMAGE_ARG = re.compile(r"^ARG BASE_IMAGE=(\S+)\s*$", re.MULTILINE)


def default_base_image(repo_root: Path) -> str:
    """The base image the Dockerfile builds on when no BASE_IMAGE build arg is given."""
    match = BASE_IMAGE_ARG.search((Path(repo_root) / DOCKERFILE).read_text(encoding="utf-8"))
    if match is None:
        raise ValueError(f"{DOCKERFILE} has no `ARG BASE_IMAGE=<image>` line")
    return match.group(1)


def image_tag(repo_root: Path, base_image: str | None = None) -> str:
    """The tag for the image built from ``repo_root`` on ``base_image`` (default: the
    Dockerfile's): the first hex digits of a SHA-256 over the base image reference and
    each context file's path and bytes."""
    root = Path(repo_root)
    base = base_image or default_base_image(root)
    digest = hashlib.sha256(SCHEME + b"\0")
    # Length-prefixed fields, so no two different inputs can hash the same bytes.
    fields = [b"BASE_IMAGE", base.encode()]
    for name in CONTEXT_FILES:
        fields += [name.encode(), (root / name).read_bytes()]
    for field in fields:
        digest.update(len(field).to_bytes(8, "big") + field)
    return digest.hexdigest()[:TAG_HEX_DIGITS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.image", description=__doc__)
    parser.add_argument("--base-image", help="the BASE_IMAGE build arg (default: the Dockerfile's)")
    parser.add_argument("--repo-root", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args(argv)
    print(image_tag(args.repo_root, args.base_image))
    return 0


if __name__ == "__main__":
    sys.exit(main())
