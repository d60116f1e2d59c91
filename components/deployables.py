"""Where the code and files the stack deploys are, in a checkout and in the installed package.

The stack deploys more than it imports: the proxy's Lambda code (`proxy/` and `shared/`),
the batch Lambdas' (`proxy/`, `pipeline/` and `shared/`), the web UI (`site/`) and the
serving image's build context (the files `serving.image.CONTEXT_FILES` names,
`.dockerignore` at its root). In a checkout they are the repository's own folders. The
wheel (`setup.py`) carries a copy of exactly `BUNDLED`, at the same paths under
`components/bundle/`; that folder exists only there, so its presence says which of the
two this is. Either way `ROOT` holds them all as the checkout does, and the serving
image's tag (a hash of its context files and their paths) is the same from both.

Standard library only (and `serving.image`, which is too): `setup.py` reads `BUNDLED`.
"""

from __future__ import annotations

from pathlib import Path

from serving.image import CONTEXT_FILES

BUNDLED_FOLDERS = ("proxy", "pipeline", "shared", "site")
"""Copied whole, but for bytecode caches and hidden files."""
BUNDLED = (*BUNDLED_FOLDERS, *CONTEXT_FILES)
"""What the wheel carries under `components/bundle/`, relative to the checkout's root."""
CHECKOUT = Path(__file__).resolve().parents[1]
BUNDLE = Path(__file__).resolve().parent / "bundle"
ROOT = BUNDLE if BUNDLE.is_dir() else CHECKOUT
"""The folder that holds every deployable at its checkout path."""

PROXY_DIR = ROOT / "proxy"
"""The proxy package: the API Lambda's zip."""
LAMBDA_PACKAGES_DIR = ROOT
"""Where the batch Lambdas' packages (`proxy/`, `pipeline/`, `shared/`) are."""
SITE_DIR = ROOT / "site"
"""The web UI's static files."""
SERVING_CONTEXT = ROOT
"""The serving image's build context, holding `serving/Dockerfile` and `.dockerignore`."""
