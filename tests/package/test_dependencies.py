"""The wheel's dependencies are the Pulumi program's: pyproject.toml lists what
requirements.txt pins (the environment `pulumi up` from a checkout runs in), no more."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_depends_on_what_the_programs_environment_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    pinned = [line for line in lines if line.strip() and not line.startswith("#")]
    assert project["dependencies"] == pinned
