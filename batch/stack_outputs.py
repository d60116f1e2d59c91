"""What a transform job needs of the stack, read from its outputs.

`python -m batch run ... --on sagemaker` takes them from `--stack-outputs FILE` (what
`pulumi stack output --json > FILE` writes), or else runs `pulumi stack output --json`
itself, for the stack selected in this repository, when the `pulumi` command exists. The
outputs used (docs/contracts.md):

- `serving_image`: the serving image, `<repository>@sha256:<digest>`; its region is the
  job's (SageMaker runs an image of its own region), unless `--region` says otherwise;
- `transform_role_arn`: the role transform jobs run as (a stack with `batch` has it);
- `artifact_bucket`: the registry, `models/<version>/model.tar.gz`;
- `batch_bucket`: where a job's manifest and raw outputs go (`transform/<job>/`), and
  the inputs the role may read;
- `endpoint_name`: the stack's name prefix, which names the jobs and their models;
- `model_version`: the version served, transformed when `--model-version` is not given.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from machine.artifact import REPO_ROOT

PULUMI_TIMEOUT_SECONDS = 120
_ECR_REGION = re.compile(r"^\d{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/")
_HOW = "pass --stack-outputs FILE, written by `pulumi stack output --json > FILE`"
_BATCH_ON = "turn batch on (pulumi config set batch true) and run pulumi up"


class OutputsError(ValueError):
    """The outputs cannot be read or lack what a transform needs; the message says which."""


@dataclass(frozen=True)
class TransformStack:
    """The stack's side of a transform job."""

    image: str
    role_arn: str
    artifact_bucket: str
    work_bucket: str
    name_prefix: str
    model_version: str | None
    source: str
    """Where the outputs came from, for messages."""

    @property
    def region(self) -> str | None:
        """The serving image's region (an ECR image), else None."""
        found = _ECR_REGION.match(self.image)
        return found.group(1) if found else None


def load(path: Path | None) -> TransformStack:
    """The outputs of `path`, or of `pulumi stack output --json` when no path is given."""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise OutputsError(f"--stack-outputs {path}: cannot read it ({error})") from None
        return parse(text, f"--stack-outputs {path}")
    return parse(_from_pulumi(), "`pulumi stack output --json`")


def _from_pulumi() -> str:
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise OutputsError(f"no stack outputs: the pulumi command is not installed here; {_HOW}")
    try:
        done = subprocess.run(  # noqa: S603
            [pulumi, "stack", "output", "--json"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=PULUMI_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise OutputsError(f"`pulumi stack output --json` failed ({error}); {_HOW}") from None
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise OutputsError(f"`pulumi stack output --json` failed: {said}; {_HOW}")
    return done.stdout


def parse(text: str, where: str) -> TransformStack:
    try:
        outputs = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise OutputsError(f"{where}: not JSON ({error})") from None
    if not isinstance(outputs, dict):
        raise OutputsError(f"{where}: not the JSON object `pulumi stack output --json` prints")
    if "transform_role_arn" not in outputs or "batch_bucket" not in outputs:
        raise OutputsError(
            f"{where}: no transform_role_arn or batch_bucket: the stack has no role for "
            f"transform jobs; {_BATCH_ON}"
        )
    version = outputs.get("model_version")
    return TransformStack(
        image=_text(outputs, "serving_image", where),
        role_arn=_text(outputs, "transform_role_arn", where),
        artifact_bucket=_text(outputs, "artifact_bucket", where),
        work_bucket=_text(outputs, "batch_bucket", where),
        name_prefix=_text(outputs, "endpoint_name", where),
        model_version=version if isinstance(version, str) and version else None,
        source=where,
    )


def _text(outputs: dict[str, Any], name: str, where: str) -> str:
    value = outputs.get(name)
    if not isinstance(value, str) or not value:
        raise OutputsError(f"{where}: the output {name} is missing or not a string")
    return value
