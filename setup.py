"""The wheel's one build step beyond pyproject.toml: the deployables, copied in.

`pip install .` or `pip wheel .` runs it. pyproject.toml names the packages the program
imports; what the stack deploys without importing it (the Lambdas' code, the site, the
serving image's build context: `components.deployables.BUNDLED`) is copied from the
checkout to `components/bundle/`, at the same paths, where `components.deployables`
finds it once installed.
"""

import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

# This checkout's `components.deployables`, not an installed one.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from components.deployables import BUNDLE, BUNDLED, CHECKOUT

SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
"""Left out of a bundled folder: bytecode caches, and hidden files (editor and OS litter)."""


class BuildWithBundle(build_py):
    """`build_py`, then the bundle, copied afresh (a build folder may hold an older one)."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / BUNDLE.relative_to(CHECKOUT)
        shutil.rmtree(target, ignore_errors=True)
        for entry in BUNDLED:
            source, copy = CHECKOUT / entry, target / entry
            if source.is_dir():
                shutil.copytree(source, copy, ignore=SKIPPED)
            else:
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, copy)


setup(cmdclass={"build_py": BuildWithBundle})
