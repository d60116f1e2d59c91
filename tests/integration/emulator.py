"""How an Automation API test stack talks to moto server instead of AWS.

Kept apart from the test so the fast suite can check, under mocks, that every AWS
service the program registers resources with is routed here, and what the emulator's
program (`emulator_program.py`) leaves out (tests/infra).
"""

from __future__ import annotations

from pathlib import Path

from pulumi.automation import ConfigValue

PROGRAM = Path(__file__).with_name("emulator_program.py")
"""Run as the program's `__main__.py`: the stack without what moto cannot create."""
PROJECT = "image-classifier"
REGION = "us-east-1"
DUMMY_KEY = "testing"  # moto accepts any key; these never leave the machine.
IMAGE_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/image-classifier-serving:emulator"
"""Served instead of building one: moto has no registry to push to, and its SageMaker
never pulls the image."""

# Pulumi AWS provider `endpoints` keys. `logs` serves CloudWatch Logs; `sts` and `ecr`
# are called by the provider itself even though the program owns no resource there.
ENDPOINT_SERVICES = (
    "apigatewayv2",
    "cloudfront",
    "cloudwatch",
    "dynamodb",
    "ecr",
    "iam",
    "lambda",
    "logs",
    "s3",
    "sagemaker",
    "sns",
    "sts",
)


def endpoint_service(type_token: str) -> str:
    """The `endpoints` key that serves a resource type, e.g. aws:s3/bucket:Bucket -> s3."""
    module = type_token.split(":")[1].split("/")[0]
    if type_token.startswith("aws:cloudwatch/logGroup:"):
        return "logs"
    return {"lambda_": "lambda"}.get(module, module)


def emulator_config(endpoint_url: str, model_archive: str) -> dict[str, ConfigValue]:
    """Stack config (path syntax) that points the AWS provider at moto server."""
    config = {
        "aws:region": ConfigValue(REGION),
        "aws:accessKey": ConfigValue(DUMMY_KEY),
        "aws:secretKey": ConfigValue(DUMMY_KEY, secret=True),
        "aws:skipCredentialsValidation": ConfigValue("true"),
        "aws:skipRequestingAccountId": ConfigValue("true"),
        "aws:skipMetadataApiCheck": ConfigValue("true"),
        "aws:skipRegionValidation": ConfigValue("true"),
        "aws:s3UsePathStyle": ConfigValue("true"),
        f"{PROJECT}:model": ConfigValue(model_archive),
        f"{PROJECT}:imageUri": ConfigValue(IMAGE_URI),
    }
    for service in ENDPOINT_SERVICES:
        config[f"aws:endpoints[0].{service}"] = ConfigValue(endpoint_url)
    return config


def emulator_env(endpoint_url: str) -> dict[str, str]:
    """Environment of the Pulumi program: boto3 in the dynamic providers reads it."""
    return {
        "AWS_ACCESS_KEY_ID": DUMMY_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint_url,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
