"""The stack's Lambda functions run as Lambda runs them (`machine/lambda_zip.py`), for the
tests in this folder (`conftest.py`'s fixtures).

- `batch_stack(archive)`: the dev stack with `batch` on under Pulumi's mocks, serving
  `archive`, so the proxy's zip carries the labels of that model.
- `stack_function(stack, name)`: the stack's function `name` as a
  `machine.lambda_zip.ZipFunction`: the archive the program hands to
  `aws.lambda_.Function`, its handler, memory, timeout and environment.
- `start_function(stack, name, ...)`: that function started by
  `machine.lambda_zip.start_zip`, a `machine.lambda_runtime_api.LambdaFunction`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from components.proxy_api import LAMBDA_TASK_ROOT
from machine.lambda_runtime_api import LambdaFunction
from machine.lambda_zip import Deployment, ZipFunction, start_zip
from tests.infra.conftest import ACCOUNT, PROJECT, REGION, StackRun, run_build, stack_config

FUNCTION = "aws:lambda/function:Function"
TABLE = "aws:dynamodb/table:Table"
DEPLOYMENT = Deployment(REGION, ACCOUNT, LAMBDA_TASK_ROOT)
"""The mocked stack's region and account."""


def batch_stack(archive: Path) -> StackRun:
    run = run_build(stack_config() | {f"{PROJECT}:model": str(archive), f"{PROJECT}:batch": "true"})
    if run.error is not None:
        raise run.error
    return run


def stack_function(stack: StackRun, name: str) -> ZipFunction:
    """The stack's function `name` (e.g. `api-function`, `batch-classify`)."""
    resource = stack.one(FUNCTION, name)
    inputs = resource.inputs
    return ZipFunction(
        members=inputs["code"].assets,
        handler=inputs["handler"],
        variables=inputs["environment"]["variables"],
        name=resource.state.get("name") or name,
        memory_mb=inputs["memorySize"],
        timeout_seconds=inputs["timeout"],
    )


def start_function(
    stack: StackRun, name: str, python: Path, workdir: Path, endpoints: Mapping[str, str]
) -> LambdaFunction:
    """The stack's function `name` started under awslambdaric in `workdir`, its AWS
    services at `endpoints` (service -> URL)."""
    return start_zip(
        stack_function(stack, name),
        deployment=DEPLOYMENT,
        python=python,
        workdir=workdir,
        endpoints=endpoints,
    )
