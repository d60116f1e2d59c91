"""Model variants, the registry and the predictions table, under the shared mocks: each
variant its own endpoint, the proxy's share of the requests and its exact permissions, a
version served from the registry without its archive, the table's settings, what a
rollback changes, and every config mistake refused before anything is created."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.model_archive import ModelArchiveError
from components.model_variants import read_variants
from components.stack_config import StackConfigError
from tests.infra.conftest import (
    ACCOUNT,
    ARCHIVE_VERSION,
    PROJECT,
    REGION,
    ROOT,
    STACK,
    StackRun,
    plain,
    stack_config,
    synthetic_metadata,
    write_synthetic_archive,
)

FUNCTION = "aws:lambda/function:Function"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLLOUT = "pulumi-python:dynamic/endpoint_rollout:EndpointRollout"
ENDPOINT = "image-classifier:inference_endpoint:InferenceEndpoint"
MODEL = "aws:sagemaker/model:Model"
CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
TABLE = "aws:dynamodb/table:Table"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
CANARY_VERSION = "fedcba987654"
REGISTERED_VERSION = "3f9a1c2b4d5e"
MAIN_ENDPOINT = f"{PROJECT}-{STACK}"
CANARY_ENDPOINT = f"{MAIN_ENDPOINT}-canary"
TABLE_NAME = f"{PROJECT}-{STACK}-predictions"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE_NAME}"

RunStack = Callable[[dict[str, str]], StackRun]


def key(name: str) -> str:
    return f"{PROJECT}:{name}"


def variants(*entries: dict[str, Any]) -> dict[str, str]:
    """The config `model` as a list of variants, as the engine passes a list: its JSON."""
    return {key("model"): json.dumps(list(entries))}


def endpoint_arn(name: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}"


def environment(run: StackRun) -> dict[str, str]:
    return run.one(FUNCTION).inputs["environment"]["variables"]


def statements(run: StackRun) -> dict[str, dict[str, Any]]:
    policy = run.one(ROLE_POLICY, "api-function-policy").inputs["policy"]
    return {statement["Sid"]: statement for statement in json.loads(policy)["Statement"]}


@pytest.fixture(scope="module")
def canary_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_archive(
        tmp_path_factory.mktemp("canary") / "canary.tar.gz", CANARY_VERSION, "IMAGENET1K_V2"
    )


@pytest.fixture(scope="module")
def canary(run_stack: RunStack, synthetic_archive: Path, canary_archive: Path) -> StackRun:
    """A canary: main keeps 95 % of the requests, the candidate gets 5 % on more memory."""
    run = run_stack(
        variants(
            {"name": "main", "weight": 95, "archive": str(synthetic_archive)},
            {
                "name": "canary",
                "weight": 5,
                "archive": str(canary_archive),
                "serverlessMemoryMb": 3072,
            },
        )
    )
    assert run.error is None, run.error
    return run


# -- each variant its own endpoint ---------------------------------------------------------


def test_two_variants_are_two_endpoints_and_the_proxy_names_both_with_their_weights(canary):
    assert {r.name for r in canary.of_type(ENDPOINT)} == {"model", "model-canary"}
    assert sorted(r.inputs["endpoint_name"] for r in canary.of_type(ROLLOUT)) == [
        MAIN_ENDPOINT,
        CANARY_ENDPOINT,
    ]
    variables = environment(canary)
    assert json.loads(variables["VARIANTS"]) == [
        {"name": "main", "weight": 95, "endpoint": MAIN_ENDPOINT},
        {"name": "canary", "weight": 5, "endpoint": CANARY_ENDPOINT},
    ]
    assert variables["SAGEMAKER_ENDPOINT_NAME"] == MAIN_ENDPOINT


def test_the_proxy_reads_the_variants_the_stack_gives_it(canary):
    from proxy.variants import parse_variants

    parsed = parse_variants(environment(canary)["VARIANTS"])
    assert [(v.name, v.weight, v.endpoint) for v in parsed.variants] == [
        ("main", 95, MAIN_ENDPOINT),
        ("canary", 5, CANARY_ENDPOINT),
    ]


def test_the_variants_output_is_what_the_registry_cli_reads(canary, tmp_path):
    from admin.registry import read_serving

    assert canary.outputs["variants"] == [
        {
            "name": "main",
            "weight": 95,
            "model_version": ARCHIVE_VERSION,
            "endpoint_name": MAIN_ENDPOINT,
        },
        {
            "name": "canary",
            "weight": 5,
            "model_version": CANARY_VERSION,
            "endpoint_name": CANARY_ENDPOINT,
        },
    ]
    # Compatibility: the stack's own endpoint and version are main's.
    assert canary.outputs["endpoint_name"] == MAIN_ENDPOINT
    assert canary.outputs["model_version"] == ARCHIVE_VERSION
    outputs = tmp_path / "dev.json"
    outputs.write_text(json.dumps(canary.outputs))
    bucket, served = read_serving(outputs)
    assert bucket == canary.outputs["artifact_bucket"]
    assert [(s.variant, s.share) for s in served] == [("main", 0.95), ("canary", 0.05)]


def test_each_version_is_uploaded_once_into_the_one_registry(canary):
    bucket = canary.outputs["artifact_bucket"]
    assert len(canary.of_type("image-classifier:private_bucket:PrivateBucket")) == 2  # + site
    keys = sorted(r.inputs["key"] for r in canary.of_type(OBJECT) if r.inputs["bucket"] == bucket)
    assert keys == [
        f"models/{ARCHIVE_VERSION}/metadata.json",
        f"models/{ARCHIVE_VERSION}/model.tar.gz",
        f"models/{CANARY_VERSION}/metadata.json",
        f"models/{CANARY_VERSION}/model.tar.gz",
    ]
    model = canary.one(MODEL, "model-canary-model")
    url = f"s3://{bucket}/models/{CANARY_VERSION}/model.tar.gz"
    assert model.inputs["primaryContainer"]["modelDataUrl"] == url
    config = canary.one(CONFIG, "model-canary-config")
    (variant,) = config.inputs["productionVariants"]
    assert variant["serverlessConfig"] == {"memorySizeInMb": 3072, "maxConcurrency": 2}
    assert config.inputs["tags"]["model-version"] == CANARY_VERSION
    policy = canary.one(ROLE_POLICY, "model-canary-execution-policy").inputs["policy"]
    (read,) = [s for s in json.loads(policy)["Statement"] if s["Sid"] == "ReadTheModelArchive"]
    assert read["Resource"] == f"arn:aws:s3:::{bucket}/models/{CANARY_VERSION}/model.tar.gz"


# -- the proxy's permissions and its zip -----------------------------------------------------


def test_the_proxy_may_invoke_exactly_each_variants_endpoint_and_use_exactly_its_table(canary):
    found = statements(canary)
    assert list(found) == ["InvokeTheEndpoint", "RecordPredictionsAndFeedback", "WriteItsOwnLogs"]
    assert found["InvokeTheEndpoint"]["Action"] == "sagemaker:InvokeEndpoint"
    assert found["InvokeTheEndpoint"]["Resource"] == [
        endpoint_arn(MAIN_ENDPOINT),
        endpoint_arn(CANARY_ENDPOINT),
    ]
    assert found["RecordPredictionsAndFeedback"] == {
        "Sid": "RecordPredictionsAndFeedback",
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        "Resource": TABLE_ARN,
    }
    assert not any("*" in str(s["Resource"]) for s in list(found.values())[:2])


def test_the_zip_carries_each_served_versions_labels_where_the_proxy_reads_them(canary):
    from proxy.labels import LABELS_DIR_IN_ZIP

    function = canary.one(FUNCTION).inputs
    generated = {
        member: json.loads(asset.text)
        for member, asset in function["code"].assets.items()
        if not member.startswith("proxy/")
    }
    labels = synthetic_metadata()["labels"]
    assert generated == {
        f"model_labels/{ARCHIVE_VERSION}.json": labels,
        f"model_labels/{CANARY_VERSION}.json": labels,
    }
    assert LABELS_DIR_IN_ZIP == "model_labels"
    assert function["environment"]["variables"]["MODEL_LABELS_DIR"] == "/var/task/model_labels"


# -- the predictions table ---------------------------------------------------------------------


def test_the_predictions_table_is_on_demand_recoverable_encrypted_and_expiring(dev_stack):
    from proxy.predictions import PARTITION_KEY, TTL_ATTRIBUTE

    table = dev_stack.one(TABLE).inputs
    assert table["name"] == TABLE_NAME
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert table["hashKey"] == PARTITION_KEY == "request_id"
    assert table["attributes"] == [{"name": "request_id", "type": "S"}]
    assert table["ttl"] == {"attributeName": TTL_ATTRIBUTE, "enabled": True}
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert table["serverSideEncryption"] == {"enabled": True}
    assert table["deletionProtectionEnabled"] is False
    assert table["tags"] == {"project": PROJECT, "stack": STACK, "managed-by": "pulumi"}
    assert dev_stack.outputs["predictions_table"] == TABLE_NAME
    assert environment(dev_stack)["PREDICTIONS_TABLE"] == TABLE_NAME


def test_the_prod_example_protects_its_table_from_deletion(run_stack: RunStack):
    prod = run_stack(
        {k: v for k, v in stack_config("prod").items() if k != key("model")}
        | {key("alarmEmail"): "oncall@classifier-team.io"}
    )
    assert prod.error is None, prod.error
    assert prod.one(TABLE).inputs["deletionProtectionEnabled"] is True


# -- what changes, and what does not --------------------------------------------------------


def test_the_default_stacks_resources_keep_their_urns(dev_stack):
    """The one-variant stack registers every resource it registered before variants
    existed, under the same URN (so `pulumi up` replaces nothing); it only adds some."""
    listed = (Path(__file__).with_name("default_stack_urns.txt")).read_text().splitlines()
    before = {f"urn:pulumi:{STACK}::{PROJECT}::{line}" for line in listed if line[:1] != "#"}
    assert len(before) > 50
    assert before - {r.urn for r in dev_stack.resources} == set()


def test_the_default_stack_is_one_variant_main_with_every_request(dev_stack):
    assert dev_stack.outputs["variants"] == [
        {
            "name": "main",
            "weight": 100,
            "model_version": ARCHIVE_VERSION,
            "endpoint_name": MAIN_ENDPOINT,
        }
    ]
    assert json.loads(environment(dev_stack)["VARIANTS"]) == [
        {"name": "main", "weight": 100, "endpoint": MAIN_ENDPOINT}
    ]
    # One endpoint: its ARN as a string, the statement a one-endpoint stack always had.
    assert statements(dev_stack)["InvokeTheEndpoint"]["Resource"] == endpoint_arn(MAIN_ENDPOINT)
    assert len(dev_stack.of_type(ALARM)) == 7  # no variant to compare with main


def _registered(run: StackRun) -> dict[tuple[str, str], Any]:
    return {(r.type, r.name): plain(r.inputs) for r in run.resources}


def test_a_rollback_by_weight_changes_only_the_proxys_configuration(
    canary, run_stack: RunStack, synthetic_archive: Path, canary_archive: Path
):
    """Weight 0 keeps the canary's endpoint (and every other resource) as it is."""
    held = run_stack(
        variants(
            {"name": "main", "weight": 100, "archive": str(synthetic_archive)},
            {
                "name": "canary",
                "weight": 0,
                "archive": str(canary_archive),
                "serverlessMemoryMb": 3072,
            },
        )
    )
    assert held.error is None, held.error
    before, after = _registered(canary), _registered(held)
    assert before.keys() == after.keys()
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {(FUNCTION, "api-function")}
    old, new = (run[(FUNCTION, "api-function")] for run in (before, after))
    assert {k: v for k, v in new.items() if k != "environment"} == {
        k: v for k, v in old.items() if k != "environment"
    }
    variables = new["environment"]["variables"]
    assert json.loads(variables["VARIANTS"])[1] == {
        "name": "canary",
        "weight": 0,
        "endpoint": CANARY_ENDPOINT,
    }
    assert held.outputs["variants"][1]["weight"] == 0


def test_the_canary_is_compared_with_main_on_the_proxys_metrics(canary):
    alarm = canary.one(ALARM, "monitoring-variant-canary-worse").inputs
    service = canary.outputs["function_name"]
    dimensions = {
        q["id"]: q["metric"]["dimensions"] for q in alarm["metricQueries"] if "metric" in q
    }
    assert dimensions["variant_requests"] == {"Service": service, "Variant": "canary"}
    assert dimensions["baseline_requests"] == {"Service": service, "Variant": "main"}


def test_removing_a_variant_removes_its_endpoint_and_its_alarm_only(canary, dev_stack):
    before, after = _registered(canary), _registered(dev_stack)
    assert after.keys() <= before.keys()
    gone = {name for _, name in before.keys() - after.keys()}
    assert gone == {
        name
        for _, name in before
        if name.startswith("model-canary") or name == "monitoring-variant-canary-worse"
    }
    assert "model-canary-endpoint" in gone  # the endpoint itself: deleted on `pulumi up`


# -- a version from the registry -------------------------------------------------------------


def test_model_version_serves_a_registered_version_without_its_archive(run_stack, registry):
    registry[REGISTERED_VERSION] = synthetic_metadata(REGISTERED_VERSION, "IMAGENET1K_V2")
    run = run_stack({key("model"): REGISTERED_VERSION})
    assert run.error is None, run.error
    bucket = run.outputs["artifact_bucket"]
    assert not [r for r in run.of_type(OBJECT) if r.inputs["bucket"] == bucket]
    archive = f"models/{REGISTERED_VERSION}/model.tar.gz"
    container = run.one(MODEL).inputs["primaryContainer"]
    assert container["modelDataUrl"] == f"s3://{bucket}/{archive}"
    policy = run.one(ROLE_POLICY, "model-execution-policy").inputs["policy"]
    (read,) = [s for s in json.loads(policy)["Statement"] if s["Sid"] == "ReadTheModelArchive"]
    assert read["Resource"] == f"arn:aws:s3:::{bucket}/{archive}"
    assert run.outputs["model_version"] == REGISTERED_VERSION
    assert run.outputs["model_weights"] == "IMAGENET1K_V2"  # from the sidecar
    assert f'"modelVersion": "{REGISTERED_VERSION}"' in run.outputs["config_js"]
    code = run.one(FUNCTION).inputs["code"].assets
    labels = json.loads(code[f"model_labels/{REGISTERED_VERSION}.json"].text)
    assert labels == registry[REGISTERED_VERSION]["labels"]


def test_a_canary_may_come_from_the_registry(run_stack, registry, synthetic_archive):
    registry[REGISTERED_VERSION] = synthetic_metadata(REGISTERED_VERSION)
    run = run_stack(
        variants(
            {"name": "main", "weight": 90, "archive": str(synthetic_archive)},
            {"name": "previous", "weight": 10, "version": REGISTERED_VERSION},
        )
    )
    assert run.error is None, run.error
    bucket = run.outputs["artifact_bucket"]
    url = run.one(MODEL, "model-previous-model").inputs["primaryContainer"]["modelDataUrl"]
    assert url == f"s3://{bucket}/models/{REGISTERED_VERSION}/model.tar.gz"
    assert [v["model_version"] for v in run.outputs["variants"]] == [
        ARCHIVE_VERSION,
        REGISTERED_VERSION,
    ]


def test_a_version_not_in_the_registry_is_refused_with_how_to_list_them(run_stack, registry):
    registry["0badc0ffee00"] = synthetic_metadata("0badc0ffee00")
    run = run_stack({key("model"): REGISTERED_VERSION})
    assert isinstance(run.error, ModelArchiveError)
    assert isinstance(run.error, pulumi.RunError), "the CLI prints it without a traceback"
    message = str(run.error)
    bucket = message.split("s3://")[1].split(" ")[0]
    assert f"model version {REGISTERED_VERSION} is not in this stack's registry" in message
    assert f"python -m admin.registry list --bucket {bucket}" in message
    # Nothing reads the version before the check: no model, no endpoint.
    assert not [r for r in run.resources if r.type in (MODEL, CONFIG, ROLLOUT)]


def test_a_sidecar_of_another_version_is_refused(run_stack, registry):
    registry[REGISTERED_VERSION] = synthetic_metadata("somethingelse")
    run = run_stack({key("model"): REGISTERED_VERSION})
    assert isinstance(run.error, ModelArchiveError)
    assert "describes version 'somethingelse'" in str(run.error)


# -- every mistake refused before anything exists ------------------------------------------------

MAIN = {"name": "main", "weight": 95, "archive": "build/model.tar.gz"}


def canary_with(**fields: Any) -> dict[str, Any]:
    return {"name": "canary", "weight": 5, "version": CANARY_VERSION} | fields


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            variants(MAIN, canary_with(name="main")),
            r"model\[1\]\.name: two variants are named 'main'; names must be unique",
        ),
        (
            variants(MAIN | {"weight": 0}, canary_with(weight=0)),
            r"model: every weight is 0: at least one variant must receive the requests",
        ),
        (
            variants(MAIN, *(canary_with(name=f"c{i}") for i in range(4))),
            r"model: 5 variants, at most 4: each is a SageMaker Serverless endpoint of its "
            r"own, with its own cold starts",
        ),
        (
            variants(MAIN, *(canary_with(name=f"c{i}") for i in range(4)))
            | {key("serverlessProvisionedConcurrency"): "1"},
            r"and 1 warm instance\(s\) billed every hour even when idle",
        ),
        (
            variants(MAIN, canary_with(name="Canary!")),
            r"model\[1\]\.name: 'Canary!' must be 1 to 32 lower-case letters",
        ),
        (
            variants(MAIN, canary_with(archive="build/canary.tar.gz")),
            r"model\[1\]: needs exactly one of archive .* and version",
        ),
        (
            variants(MAIN, {"name": "canary", "weight": 5}),
            r"model\[1\]: needs exactly one of archive",
        ),
        (
            variants(MAIN, canary_with(version="v1.2")),
            r"model\[1\]\.version: 'v1\.2' is not a model version .*python -m admin\.registry "
            r"list",
        ),
        (
            variants(canary_with()),
            r"model: must include the variant 'main': the stack's own endpoint",
        ),
        (variants(MAIN, canary_with(weight=-5)), r"model\[1\]\.weight: -5 must be a number"),
        (variants(MAIN, canary_with(share=5)), r"model\[1\]: unknown field\(s\) share"),
        (
            variants(MAIN, canary_with(serverlessMemoryMb=1500)),
            r"model\[1\]\.serverlessMemoryMb: memory 1500 MB is not allowed",
        ),
        (
            {key("model"): json.dumps({"name": "main"})},
            r"model: must be a non-empty list of variants",
        ),
        (
            {key("model"): "Not-A-Version"},
            r"model: 'Not-A-Version' is not a model version .*, nor a model archive \(a path "
            r"ending in \.tar\.gz\)",
        ),
        ({key("model"): "build/model.zip"}, r"model: 'build/model\.zip' is not a model version"),
        ({key("model"): "[{"}, r"model: '\[\{' is not a list of variants"),
    ],
)
def test_a_bad_variants_config_is_refused_before_anything_exists(run_stack, overrides, expected):
    run = run_stack(overrides)
    assert isinstance(run.error, StackConfigError), run.error
    assert "nothing was created" in str(run.error)
    assert re.search(expected, str(run.error)), str(run.error)
    assert run.resources == []


def test_two_variants_on_one_version_are_refused(run_stack, synthetic_archive, registry):
    registry[ARCHIVE_VERSION] = synthetic_metadata()
    run = run_stack(
        variants(
            {"name": "main", "weight": 50, "archive": str(synthetic_archive)},
            {"name": "again", "weight": 50, "version": ARCHIVE_VERSION},
        )
    )
    assert isinstance(run.error, StackConfigError)
    assert f"main and again both serve model version {ARCHIVE_VERSION}" in str(run.error)
    assert run.resources == []


def test_a_variants_endpoint_name_stays_within_sagemakers_limit(tmp_path):
    prefix = "p" * 40  # the longest `name_prefix` makes
    entries = [MAIN, canary_with(name="c" * 32)]
    _, problems = read_variants(entries, tmp_path, prefix, 0)
    assert problems == {
        "[1].name": f"'{'c' * 32}' makes the endpoint name '{prefix}-{'c' * 32}', longer than "
        "SageMaker's 63 characters; use at most 22"
    }
    assert read_variants([MAIN, canary_with(name="c" * 22)], tmp_path, prefix, 0)[1] == {}


def test_the_variant_rules_are_the_proxys():
    """The proxy's copy cannot be imported by the program (nor the program's by the
    proxy); both must refuse and accept the same."""
    from admin import registry
    from components import model_variants
    from proxy import variants as proxy_variants

    assert model_variants.MAX_VARIANTS == proxy_variants.MAX_VARIANTS
    assert model_variants.MAIN == proxy_variants.DEFAULT_VARIANT == registry.DEFAULT_VARIANT


@pytest.mark.parametrize(
    "name",
    ["main", "canary-2", "0", "a" * 32, "a" * 33, "-a", "Canary", "can_ary", "", "a b", "café"],
)
def test_the_variant_names_are_the_proxys(name):
    """Each name the program accepts, the proxy accepts, and each it refuses, the proxy
    refuses."""
    from components import model_variants
    from proxy.variants import Variant, Variants, VariantsError

    try:
        Variants((Variant(name, 1, "image-classifier-dev"),))
    except VariantsError:
        proxy_accepts = False
    else:
        proxy_accepts = True
    assert bool(model_variants.NAME.fullmatch(name)) is proxy_accepts


def test_the_registry_layout_is_the_registry_clis():
    from admin import registry
    from artifact import registry as layout

    assert layout.KEY_PREFIX == registry.PREFIX
    assert layout.ARCHIVE_NAME == registry.ARCHIVE
    assert layout.METADATA_NAME == registry.SIDECAR
    for version in (ARCHIVE_VERSION, "ABC_def-123456789", "--x--", ""):
        assert layout.version_slug(version) == registry.version_slug(version)


# -- the deploy role may manage what variants add -------------------------------------------------


def allowed(action: str, arn: str) -> bool:
    policy = json.loads((ROOT / "docs" / "deployer-policy.json").read_text())
    for statement in policy["Statement"]:
        actions = statement["Action"]
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        if action in actions and any(fnmatchcase(arn, pattern) for pattern in resources):
            return True
    return False


def test_the_deploy_role_may_manage_every_variants_model_role_and_the_table(canary):
    for model in canary.of_type(MODEL):
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model/{model.id}"
        assert allowed("sagemaker:CreateModel", arn), arn
    for role in canary.of_type("aws:iam/role:Role"):
        assert allowed("iam:CreateRole", role.state["arn"]), role.state["arn"]
        if role.name.startswith("model"):
            assert allowed("iam:PassRole", role.state["arn"]), role.state["arn"]
    for rollout in canary.of_type(ROLLOUT):
        assert allowed("sagemaker:CreateEndpoint", endpoint_arn(rollout.inputs["endpoint_name"]))
    assert allowed("dynamodb:CreateTable", TABLE_ARN)
    bucket = canary.outputs["artifact_bucket"]
    # What serving a version from the registry reads, in preview and up.
    assert allowed("s3:ListBucket", f"arn:aws:s3:::{bucket}")
    assert allowed("s3:GetObject", f"arn:aws:s3:::{bucket}/models/{CANARY_VERSION}/metadata.json")
