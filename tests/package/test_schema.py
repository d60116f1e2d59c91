"""The schema other languages get: `pulumi-plugin/` started as the engine starts it, from this
checkout, and asked for the schema the Pulumi SDK infers from the components' annotations.

It pins the components and every input, required input and output by name: a change to
one is a change to programs in other languages, made on purpose here. Every one of them is
documented (the SDKs generated from the schema show it), names and capacity are plain
values (they decide resource names before anything exists), and the AWS resources it
refers to are pulumi-aws's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from image_classifier.provider import COMPONENTS, PACKAGE
from tests.package.provider_schema import clean_env, provider_schema

ROOT = Path(__file__).resolve().parents[2]
LAMBDA_FUNCTION = "#/resources/aws:lambda%2Ffunction:Function"

EXPECTED: dict[str, tuple[set[str], set[str], set[str]]] = {
    # component: (inputs, required inputs, outputs)
    "InferenceEndpoint": (
        {
            "awsSession",
            "endpointName",
            "imageRepositoryArn",
            "imageUri",
            "logRetentionDays",
            "modelArchive",
            "modelVersion",
            "region",
            "rolloutTimeoutSeconds",
            "serverless",
            "tags",
        },
        {"endpointName", "imageRepositoryArn", "imageUri", "region"},
        {
            "artifactBucket",
            "endpointArn",
            "endpointConfigName",
            "endpointName",
            "labels",
            "logGroup",
            "modelName",
            "modelVersion",
            "weights",
        },
    ),
    "PredictionsTable": (
        {"deletionProtection", "tableName", "tags"},
        {"tableName"},
        {"tableArn", "tableName"},
    ),
    "ProxyApi": (
        {
            "apiKeys",
            "directThrottleBurstLimit",
            "directThrottleRateLimit",
            "endpointName",
            "environment",
            "logLevel",
            "logRetentionDays",
            "memoryMb",
            "modelLabels",
            "namePrefix",
            "originSecretRotation",
            "predictionsTableArn",
            "predictionsTableName",
            "tags",
            "throttleBurstLimit",
            "throttleRateLimit",
            "timeoutSeconds",
            "tracing",
            "variants",
        },
        {
            "endpointName",
            "modelLabels",
            "namePrefix",
            "predictionsTableArn",
            "predictionsTableName",
            "variants",
        },
        {
            "accessLogGroup",
            "apiDomain",
            "apiId",
            "apiKeysPath",
            "executeApiUrl",
            "function",
            "functionLogGroup",
            "functionName",
            "originSecret",
            "siteOriginPath",
        },
    ),
    "StaticSite": (
        {
            "api",
            "assetCacheControl",
            "awsSession",
            "domain",
            "htmlCacheControl",
            "priceClass",
            "securityHeaders",
            "siteDir",
            "tags",
            "webAclArn",
        },
        {"api"},
        {"bucketName", "distributionId", "domainName", "url"},
    ),
    "SiteConfigFile": (
        {
            "apiUrl",
            "awsSession",
            "bucketName",
            "distributionId",
            "environment",
            "modelVersion",
            "modelWeights",
            "waitForInvalidation",
        },
        {"apiUrl", "bucketName", "distributionId", "environment", "modelVersion", "modelWeights"},
        {"content"},
    ),
}
TYPES = {
    "ApiOrigin": {"admittedBy", "domainName", "originPath", "originSecret"},
    "AssumedRole": {"externalId", "roleArn", "sessionName"},
    "AwsSessionSettings": {"assumeRoles", "profile"},
    "EndpointVariant": {"endpointArn", "endpointName", "name", "weight"},
    "ServerlessCapacity": {"maxConcurrency", "memoryMb", "provisionedConcurrency"},
    "SiteDomain": {"certificateArn", "hostedZoneId", "name"},
}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """From a folder outside the checkout, the checkout on the path as a venv would hold it."""
    where = tmp_path_factory.mktemp("provider")
    return provider_schema(
        [sys.executable, ROOT / "pulumi-plugin"],
        cwd=where,
        env=clean_env() | {"PYTHONPATH": str(ROOT)},
        log=where / "provider.log",
    )


def token(name: str) -> str:
    return f"{PACKAGE}:index:{name}"


def test_the_provider_offers_the_serving_paths_components(schema):
    assert schema["name"] == PACKAGE
    assert set(schema["resources"]) == {token(name) for name in EXPECTED}
    assert [component.__name__ for component in COMPONENTS] == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_components_inputs_and_outputs(schema, name):
    inputs, required, outputs = EXPECTED[name]
    resource = schema["resources"][token(name)]
    assert resource["isComponent"] is True
    assert set(resource["inputProperties"]) == inputs
    assert set(resource["requiredInputs"]) == required
    assert set(resource["properties"]) == outputs


def test_its_types_are_the_args_nested_dicts(schema):
    assert {
        name.removeprefix(token("")): set(t["properties"]) for name, t in schema["types"].items()
    } == TYPES


def test_every_component_input_output_and_field_is_documented(schema):
    undocumented = [
        f"{name}.{prop}"
        for name, resource in schema["resources"].items()
        for section in ("inputProperties", "properties")
        for prop, spec in resource[section].items()
        if not spec.get("description")
    ]
    undocumented += [
        f"{name}.{prop}"
        for name, spec in schema["types"].items()
        for prop, field in spec["properties"].items()
        if not field.get("description")
    ]
    undocumented += [
        name for name, resource in schema["resources"].items() if not resource.get("description")
    ]
    assert undocumented == []


def test_what_names_resources_is_plain_and_what_resources_give_is_an_input(schema):
    endpoint = schema["resources"][token("InferenceEndpoint")]["inputProperties"]
    for plain in ("endpointName", "region", "modelArchive", "modelVersion", "serverless"):
        assert endpoint[plain].get("plain") is True, plain
    for output_fed in ("imageUri", "imageRepositoryArn", "logRetentionDays", "tags"):
        assert not endpoint[output_fed].get("plain"), output_fed
    proxy = schema["resources"][token("ProxyApi")]["inputProperties"]
    assert proxy["namePrefix"].get("plain") is True
    assert not proxy["endpointName"].get("plain")


def test_the_proxys_function_is_pulumi_aws_s_own_type(schema):
    function = schema["resources"][token("ProxyApi")]["properties"]["function"]
    admitted_by = schema["types"][token("ApiOrigin")]["properties"]["admittedBy"]
    assert function["$ref"].endswith(LAMBDA_FUNCTION)
    assert admitted_by["items"]["$ref"].endswith(LAMBDA_FUNCTION)
    assert [dependency["name"] for dependency in schema["dependencies"]] == ["aws"]
