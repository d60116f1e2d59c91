"""The pieces that run a Lambda zip of the stack the way Lambda runs it, for the tests in
this folder (`conftest.py`'s fixtures) and `bench/lambda_init.py`.

- `lambda_venv()`: a virtualenv holding only `requirements.txt` (boto3 and AWS's runtime
  interface client `awslambdaric`, as Lambda's Python runtime holds boto3 beside its
  runtime client), built once per hash of the requirements and this interpreter's version
  under `build/lambda-venv-<hash>`, under a lock so parallel sessions share it.
- `batch_stack(archive)`: the dev stack with `batch` on under Pulumi's mocks, serving
  `archive`, so the proxy's zip carries the labels of that model.
- `start_function(stack, name, ...)`: the stack's function `name` as
  `runtime_api.LambdaFunction`: the archive the program hands to `aws.lambda_.Function`,
  zipped as the engine uploads it and unzipped at a task root as Lambda does, started
  with `python -m awslambdaric <handler>` and exactly the environment Lambda and the stack
  set (`lambda_environment`), its AWS endpoints on this machine.
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
from pathlib import Path

import pulumi

from components.proxy_api import LAMBDA_TASK_ROOT
from tests.infra.conftest import ACCOUNT, PROJECT, REGION, StackRun, run_build, stack_config
from tests.lambda_runtime.runtime_api import LambdaFunction, RuntimeApi

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("requirements.txt")
FUNCTION = "aws:lambda/function:Function"
TABLE = "aws:dynamodb/table:Table"


def venv_key() -> str:
    """What the virtualenv depends on: its requirements and this interpreter's version."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def lambda_venv(build: Path = ROOT / "build") -> Path:
    """The virtualenv's interpreter, built when missing."""
    build.mkdir(exist_ok=True)
    venv = build / f"lambda-venv-{venv_key()}"
    done = venv / ".complete"
    with (build / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run(
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


def batch_stack(archive: Path) -> StackRun:
    run = run_build(stack_config() | {f"{PROJECT}:model": str(archive), f"{PROJECT}:batch": "true"})
    if run.error is not None:
        raise run.error
    return run


def unpack(archive: pulumi.AssetArchive, bundle: Path, task_root: Path) -> None:
    """Zip `archive` as the engine uploads it, then unzip it at `task_root` as Lambda does."""
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zipped:
        for member, asset in sorted(archive.assets.items()):
            if isinstance(asset, pulumi.FileAsset):
                zipped.write(asset.path, member)
            elif isinstance(asset, pulumi.StringAsset):
                zipped.writestr(member, asset.text)
            else:
                raise TypeError(f"{member}: {type(asset).__name__} is not packaged here")
    with zipfile.ZipFile(bundle) as zipped:
        zipped.extractall(task_root)


def lambda_environment(
    stack_variables: Mapping[str, str],
    *,
    task_root: Path,
    handler: str,
    function_name: str,
    memory_mb: int,
    runtime_api: str,
    python: Path,
    endpoints: Mapping[str, str],
) -> dict[str, str]:
    """What Lambda sets for a Python 3.12 function (its documented reserved variables),
    the stack's variables (`/var/task` read as `task_root`), and the AWS endpoints of this
    machine: nothing inherited from the test process."""
    stack_own = {
        name: value.replace(LAMBDA_TASK_ROOT, str(task_root), 1)
        if value.startswith(LAMBDA_TASK_ROOT)
        else value
        for name, value in stack_variables.items()
    }
    return {
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(task_root),
        "_HANDLER": handler,
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/07/[$LATEST]0123456789abcdef",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
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


def start_function(
    stack: StackRun, name: str, python: Path, workdir: Path, endpoints: Mapping[str, str]
) -> LambdaFunction:
    """The stack's function `name` (e.g. `api-function`, `batch-classify`) started under
    awslambdaric in `workdir`, its AWS services at `endpoints` (service -> URL)."""
    resource = stack.one(FUNCTION, name)
    inputs = resource.inputs
    return start_zip(
        inputs["code"],
        inputs["handler"],
        inputs["environment"]["variables"],
        function_name=resource.state.get("name") or name,
        memory_mb=inputs["memorySize"],
        timeout_seconds=inputs["timeout"],
        python=python,
        workdir=workdir,
        endpoints=endpoints,
    )


def start_zip(
    archive: pulumi.AssetArchive,
    handler: str,
    variables: Mapping[str, str],
    *,
    function_name: str,
    memory_mb: int,
    timeout_seconds: int,
    python: Path,
    workdir: Path,
    endpoints: Mapping[str, str],
) -> LambdaFunction:
    """A function of `archive` with `handler` and the stack's `variables`, started."""
    task_root = workdir / "task"
    unpack(archive, workdir / "function.zip", task_root)
    api = RuntimeApi(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}", timeout_seconds)
    environment = lambda_environment(
        variables,
        task_root=task_root,
        handler=handler,
        function_name=function_name,
        memory_mb=memory_mb,
        runtime_api=api.address,
        python=python,
        endpoints=endpoints,
    )
    return LambdaFunction(python, task_root, handler, environment, api, workdir / "function.log")
