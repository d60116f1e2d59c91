"""The Lambda zips run the way Lambda runs them (`harness.py`, `machine/lambda_zip.py`):
AWS's runtime interface client in a virtualenv of boto3 alone, each zip exactly as the
program hands it to `aws.lambda_.Function` (read from the stack under Pulumi's mocks)
unpacked at a task root, with exactly the environment the stack sets.

Around them, on loopback: a Runtime API stand-in (`machine.lambda_runtime_api.RuntimeApi`),
the real `python -m serving.serve` behind `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`, and
`python -m moto.server` behind `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_S3`,
holding the stack's predictions table and batch bucket under their stack names.

Fixtures: `lambda_python` (the virtualenv's interpreter), `moto_url` (tests/conftest.py),
`stack` (the mocked stack with `batch` on, serving the archive `serving.serve` serves),
`aws_resources`, and `start_function(name)` (a started `LambdaFunction` of the stack's
function `name`, its init done, stopped after the test module).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from machine.lambda_runtime_api import LambdaFunction
from machine.lambda_zip import lambda_venv
from tests.infra.conftest import REGION, StackRun
from tests.lambda_runtime.harness import TABLE, batch_stack, start_function


def pytest_configure(config: pytest.Config) -> None:
    # As tests/infra/conftest.py: pulumi_aws announces its deprecated classes on import.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:pulumi_aws.*")


@pytest.fixture(scope="session")
def lambda_python() -> Path:
    return lambda_venv()


@pytest.fixture(scope="session")
def stack(model_artifact: Path) -> StackRun:
    """The dev stack with `batch`, serving `model_artifact` (what `model_server_url`
    serves), so the proxy's zip carries the labels of the model that answers."""
    return batch_stack(model_artifact)


def aws_clients(moto_url: str) -> tuple[Any, Any]:
    """S3 and DynamoDB clients of the moto server, as a test reads what a function wrote."""
    options = {
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    return (
        boto3.client("s3", endpoint_url=moto_url, **options),
        boto3.client("dynamodb", endpoint_url=moto_url, **options),
    )


@pytest.fixture(scope="session")
def aws_resources(stack: StackRun, moto_url: str) -> tuple[Any, Any]:
    """The stack's predictions table (its key schema as the stack declares it) and batch
    bucket, under their stack names, in the moto server."""
    s3, dynamodb = aws_clients(moto_url)
    table = stack.one(TABLE).inputs
    dynamodb.create_table(
        TableName=table["name"],
        KeySchema=[{"AttributeName": table["hashKey"], "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in table["attributes"]
        ],
        BillingMode=table["billingMode"],
    )
    s3.create_bucket(
        Bucket=stack.outputs["batch_bucket"],
        CreateBucketConfiguration={"LocationConstraint": REGION},
    )
    return s3, dynamodb


@pytest.fixture(scope="module", name="start_function")
def started_functions(
    stack: StackRun,
    lambda_python: Path,
    model_server_url: str,
    moto_url: str,
    aws_resources: tuple[Any, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], LambdaFunction]]:
    started: list[LambdaFunction] = []
    endpoints = {"SAGEMAKER_RUNTIME": model_server_url, "DYNAMODB": moto_url, "S3": moto_url}

    def start(name: str) -> LambdaFunction:
        function = start_function(
            stack, name, lambda_python, tmp_path_factory.mktemp(name), endpoints
        )
        started.append(function)
        function.wait_for_init()
        return function

    yield start
    for function in started:
        function.stop()
