"""A Lambda zip run on this machine the way Lambda runs it, for `bench/lambda_init.py` and
the tests of `tests/lambda_runtime`.

- `lambda_venv()`: a virtualenv holding only `lambda_requirements.txt` (boto3 and AWS's
  runtime interface client `awslambdaric`, as Lambda's Python runtime holds boto3 beside
  its runtime client), built once per hash of the requirements and this interpreter's
  version under `build/lambda-venv-<hash>`, under a lock so parallel sessions share it.
- `start_zip(function, ...)`: a `ZipFunction` (its zip's members are a Pulumi
  `AssetArchive`'s `assets`: what the program hands to `aws.lambda_.Function`), zipped as
  the engine uploads it and unzipped at a task root as Lambda does, started with
  `python -m awslambdaric <handler>` and exactly the environment Lambda and the stack set
  (`lambda_environment`), its AWS endpoints on this machine, as a
  `lambda_runtime_api.LambdaFunction`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from machine.artifact import REPO_ROOT
from machine.lambda_runtime_api import LambdaFunction, RuntimeApi

REQUIREMENTS = Path(__file__).with_name("lambda_requirements.txt")


@runtime_checkable
class FileMember(Protocol):
    """A member read from a file: a Pulumi `FileAsset`."""

    path: str


@runtime_checkable
class TextMember(Protocol):
    """A member given as text: a Pulumi `StringAsset`."""

    text: str


@dataclass(frozen=True)
class ZipFunction:
    """A Lambda function of a zip, as a stack defines it."""

    members: Mapping[str, object]
    """The zip's members by path: `FileMember`s and `TextMember`s."""
    handler: str
    variables: Mapping[str, str]
    """The stack's environment variables."""
    name: str
    memory_mb: int
    timeout_seconds: int


@dataclass(frozen=True)
class Deployment:
    """Where the function would run: the values of its ARN and of Lambda's variables."""

    region: str
    account: str
    task_root: str
    """Where Lambda unpacks the zip (`/var/task`): the stack's variables that start with
    it are read as the task root here."""


def venv_key() -> str:
    """What the virtualenv depends on: its requirements and this interpreter's version."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def lambda_venv(build: Path = REPO_ROOT / "build") -> Path:
    """The virtualenv's interpreter, built when missing."""
    build.mkdir(exist_ok=True)
    venv = build / f"lambda-venv-{venv_key()}"
    done = venv / ".complete"
    with (build / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # noqa: S603
            subprocess.run(  # noqa: S603 (the virtualenv's own pip, our requirements)
                [
                    str(venv / "bin" / "python"),
                    *("-m", "pip", "install", "--quiet", "--disable-pip-version-check"),
                    *("-r", str(REQUIREMENTS)),
                ],
                check=True,
                timeout=600,
            )
            done.write_text(REQUIREMENTS.read_text())
    return venv / "bin" / "python"


def unpack(members: Mapping[str, object], bundle: Path, task_root: Path) -> None:
    """Zip `members` as the engine uploads them, then unzip them at `task_root` as Lambda
    does."""
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zipped:
        for member, asset in sorted(members.items()):
            if isinstance(asset, FileMember):
                zipped.write(asset.path, member)
            elif isinstance(asset, TextMember):
                zipped.writestr(member, asset.text)
            else:
                raise TypeError(f"{member}: {type(asset).__name__} is not packaged here")
    with zipfile.ZipFile(bundle) as zipped:
        zipped.extractall(task_root)


def lambda_environment(
    function: ZipFunction,
    *,
    deployment: Deployment,
    task_root: Path,
    runtime_api: str,
    python: Path,
    endpoints: Mapping[str, str],
) -> dict[str, str]:
    """What Lambda sets for a Python 3.12 function (its documented reserved variables),
    the stack's variables (`deployment.task_root` read as `task_root`), and the AWS
    endpoints of this machine: nothing inherited from this process."""
    stack_own = {
        name: value.replace(deployment.task_root, str(task_root), 1)
        if value.startswith(deployment.task_root)
        else value
        for name, value in function.variables.items()
    }
    name = function.name
    return {
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(task_root),
        "_HANDLER": function.handler,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/07/[$LATEST]0123456789abcdef",
        "AWS_REGION": deployment.region,
        "AWS_DEFAULT_REGION": deployment.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        # The task root is read-only in Lambda: nothing is compiled into it.
        "PYTHONDONTWRITEBYTECODE": "1",
        # No AWS setup of this machine: no config files, no instance metadata.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        **stack_own,
        **{f"AWS_ENDPOINT_URL_{service}": url for service, url in endpoints.items()},
    }


def start_zip(
    function: ZipFunction,
    *,
    deployment: Deployment,
    python: Path,
    workdir: Path,
    endpoints: Mapping[str, str],
) -> LambdaFunction:
    """`function` started in `workdir`, its AWS services at `endpoints` (service -> URL)."""
    task_root = workdir / "task"
    unpack(function.members, workdir / "function.zip", task_root)
    arn = f"arn:aws:lambda:{deployment.region}:{deployment.account}:function:{function.name}"
    api = RuntimeApi(arn, function.timeout_seconds)
    environment = lambda_environment(
        function,
        deployment=deployment,
        task_root=task_root,
        runtime_api=api.address,
        python=python,
        endpoints=endpoints,
    )
    return LambdaFunction(
        python, task_root, function.handler, environment, api, workdir / "function.log"
    )
