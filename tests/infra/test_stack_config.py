"""Stack config: invalid values fail with a clear message before any resource exists."""

from __future__ import annotations

import re
from pathlib import Path

import pulumi
import pytest
import yaml

from components.inference_endpoint import ServerlessConfig, serverless_problems
from components.model_archive import ModelArchiveError, read_model_archive
from components.monitoring import alarm_email_problem
from components.stack_config import (
    PROJECT_KEYS,
    REMOVED_KEYS,
    StackConfigError,
    config_keys,
    load_settings,
)
from tests.infra.conftest import (
    PROJECT,
    REGION,
    ROOT,
    engine_value,
    stack_config,
    write_synthetic_archive,
)

ONCALL = "oncall@classifier-team.io"
"""An address outside the reserved example domains (tests never mail it)."""


def key(name: str) -> str:
    return f"{PROJECT}:{name}"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"serverlessMemoryMb": "1500"}, r"serverlessMemoryMb: memory 1500 MB is not allowed"),
        ({"serverlessMemoryMb": "8192"}, r"serverlessMemoryMb: memory 8192 MB"),
        ({"serverlessMaxConcurrency": "0"}, r"serverlessMaxConcurrency: max concurrency 0 is out"),
        ({"serverlessMaxConcurrency": "201"}, r"serverlessMaxConcurrency: .* 1-200"),
        (
            {"serverlessMaxConcurrency": "4", "serverlessProvisionedConcurrency": "5"},
            r"serverlessProvisionedConcurrency: provisioned concurrency 5 exceeds max "
            r"concurrency 4",
        ),
        ({"serverlessProvisionedConcurrency": "-1"}, r"provisioned concurrency -1 is negative"),
        ({"serverlessMemoryMb": "lots"}, r"serverlessMemoryMb: .*int"),
        ({"throttleRateLimit": "0"}, r"throttleRateLimit: 0 must be at least 1"),
        ({"throttleRateLimit": "2.5"}, r"throttleRateLimit: '2.5' is not an integer"),
        ({"directThrottleRateLimit": "0"}, r"directThrottleRateLimit: 0 must be at least 1"),
        ({"logRetentionDays": "10"}, r"logRetentionDays: 10 is not a value CloudWatch accepts"),
        ({"priceClass": "PriceClass_Cheap"}, r"priceClass: must be one of"),
        ({"imageUri": "docker.io/pytorch/pytorch:latest"}, r"imageUri: .* is not an ECR image"),
        ({"alarmEmail": "oncall"}, r"alarmEmail: 'oncall' is not an email address"),
        (
            {"monitoring": "false", "alarmEmail": ONCALL},
            r"alarmEmail: is set but monitoring is false",
        ),
        (
            {"alarmEmail": "oncall@example.com"},
            r"alarmEmail: 'oncall@example.com' is at example.com, a domain reserved for "
            r"examples and tests \(RFC 2606, RFC 6761\)",
        ),
        (
            {"production": "true"},
            r"alarmEmail: a production stack requires it .*pulumi config set",
        ),
        ({"monthlyBudgetUsd": "-1"}, r"monthlyBudgetUsd: must be 0 \(no budget\) or more"),
        (
            {"monthlyBudgetUsd": "10", "monitoring": "false"},
            r"monthlyBudgetUsd: is set but monitoring is false; the budget notifies the alarm "
            r"topic",
        ),
        (
            {"production": "true", "monitoring": "false", "alarmEmail": ""},
            r"production: is true but monitoring is false",
        ),
    ],
)
def test_invalid_config_fails_before_any_resource(run_stack, overrides, expected):
    run = run_stack({key(name): value for name, value in overrides.items()})
    assert isinstance(run.error, StackConfigError)
    assert isinstance(run.error, pulumi.RunError), "the CLI prints it without a traceback"
    assert "nothing was created" in str(run.error)
    assert re.search(expected, str(run.error)), str(run.error)
    assert run.resources == []


OLD_VALUES = {
    "modelArchive": "build/model.tar.gz",
    "modelVersion": "3f9a1c2b4d5e",
    "variants": '[{"name": "main", "weight": 1, "version": "3f9a1c2b4d5e"}]',
    "servingBaseImage": "python:3.11-slim",
    "rolloutTimeoutMinutes": "90",
    "lambdaMemoryMb": "512",
    "lambdaTimeoutSeconds": "30",
    "logLevel": "DEBUG",
    "throttleBurstLimit": "10",
    "directThrottleBurstLimit": "10",
    "wafRateLimit": "300",
    "waitForInvalidation": "true",
    "requireAlarmEmail": "true",
    "predictionsDeletionProtection": "true",
}
"""A value each removed key took, as a stack file from before set it."""


def test_every_removed_key_has_an_old_value_here():
    assert set(OLD_VALUES) == set(REMOVED_KEYS)
    assert not set(REMOVED_KEYS) & set(PROJECT_KEYS)


@pytest.mark.parametrize("name", sorted(OLD_VALUES))
def test_a_removed_key_is_refused_with_its_replacement(run_stack, name):
    run = run_stack({key(name): OLD_VALUES[name]})
    assert isinstance(run.error, StackConfigError), run.error
    message = str(run.error)
    assert "nothing was created" in message
    (line,) = [line for line in message.splitlines() if line.startswith(f"  - {name}:")]
    assert line == f"  - {name}: removed, {REMOVED_KEYS[name]}; then `pulumi config rm {name}`"
    # A replacement key it names is one the program reads.
    named = re.match(r"(?:replaced by|derived from) (\w+)", REMOVED_KEYS[name])
    assert named is None or named[1] in PROJECT_KEYS, REMOVED_KEYS[name]
    assert run.resources == []


def test_every_removed_key_set_is_listed_at_once(run_stack):
    run = run_stack({key(name): value for name, value in OLD_VALUES.items()})
    message = str(run.error)
    for name in OLD_VALUES:
        assert f"  - {name}: removed, " in message
    assert run.resources == []


def test_the_engine_passes_the_removed_keys_to_the_program():
    """`engine_settings` asks the engine for each key `config_keys` lists: the removed ones
    too, or a stack that sets one would deploy without a word."""
    keys = config_keys(PROJECT)
    assert {key(name) for name in (*PROJECT_KEYS, *REMOVED_KEYS)} <= set(keys)


def test_every_problem_is_reported_at_once(run_stack):
    run = run_stack(
        {
            key("serverlessMemoryMb"): "1500",
            key("serverlessMaxConcurrency"): "0",
            key("logRetentionDays"): "10",
        }
    )
    message = str(run.error)
    for name in ("serverlessMemoryMb", "serverlessMaxConcurrency", "logRetentionDays"):
        assert f"  - {name}:" in message
    assert run.resources == []


def test_missing_region_is_a_config_error(run_stack):
    run = run_stack({"aws:region": ""})
    assert isinstance(run.error, StackConfigError)
    assert "aws:region" in str(run.error)


def test_missing_model_archive_gives_the_build_command(run_stack, tmp_path):
    run = run_stack({key("model"): str(tmp_path / "missing.tar.gz")})
    assert isinstance(run.error, ModelArchiveError)
    assert isinstance(run.error, pulumi.RunError)
    message = str(run.error)
    assert "\n" not in message
    assert "python -m model.package" in message
    assert run.resources == []


def test_a_file_that_is_not_a_model_archive_is_refused(tmp_path):
    bogus = tmp_path / "model.tar.gz"
    bogus.write_bytes(b"not gzip")
    with pytest.raises(ModelArchiveError, match="not a model archive"):
        read_model_archive(bogus)


def test_archive_without_version_is_refused(tmp_path):
    archive = write_synthetic_archive(tmp_path / "model.tar.gz", version="")
    with pytest.raises(ModelArchiveError, match="version"):
        read_model_archive(archive)


def test_archive_metadata_is_read(tmp_path):
    archive = read_model_archive(
        write_synthetic_archive(tmp_path / "m.tar.gz", version="ABC_def.123456789", weights="x")
    )
    assert (archive.version, archive.weights) == ("ABC_def.123456789", "x")
    assert archive.slug == "abc-def-1234"


def test_serverless_config_validates_on_construction():
    assert ServerlessConfig(6144, 200, 200).memory_mb == 6144
    with pytest.raises(ValueError, match="memory 1500 MB"):
        ServerlessConfig(memory_mb=1500)
    assert set(serverless_problems(1500, 0, 3)) == {
        "memory_mb",
        "max_concurrency",
        "provisioned_concurrency",
    }


# -- Pulumi.yaml ---------------------------------------------------------------------------

MAX_KEYS = 24
"""Issue 21: at most 24 config keys, each one a decision a user makes."""
GROUPS = ("Model", "Serving", "API", "Site and edge", "Operations", "Batch")


def test_the_project_has_at_most_24_keys_under_their_group_headings():
    text = (ROOT / "Pulumi.yaml").read_text()
    assert len(declared()) <= MAX_KEYS
    headings = re.findall(r"^  # ---- ([^:]+):", text, re.M)
    assert tuple(headings) == GROUPS


def test_pulumi_yaml_uses_its_own_light_virtualenv():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == PROJECT
    assert project["runtime"]["name"] == "python"
    options = project["runtime"]["options"]
    assert options["toolchain"] == "pip"
    assert options["virtualenv"] not in (".venv", "venv")
    requirements = [
        line.split("#")[0].strip().lower()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
    ]
    assert any(line.startswith("pulumi-aws") for line in requirements)
    assert not any("torch" in line for line in requirements)


def declared() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]


UNTYPED = {name for name, kind in PROJECT_KEYS.items() if kind == "model"}


def test_every_declared_key_has_a_type_description_and_default():
    # Without a default the engine would refuse every stack that does not set the key.
    for name, spec in declared().items():
        if name in UNTYPED:
            continue
        assert spec["type"] in ("string", "integer", "boolean"), name
        assert spec["description"].strip(), name
        assert "default" in spec, name
    assert declared()["monitoring"]["default"] is True
    assert "leaveOut" not in declared(), "an emulator switch has no place in a stack's config"


def test_a_string_or_list_is_declared_untyped_with_its_description_beside_it():
    """A project's config types are string, integer, boolean and arrays of those: a key
    whose value may be a list of objects is declared in short form (its default, no type,
    so the engine passes any value through) and the loader checks it."""
    text = (ROOT / "Pulumi.yaml").read_text()
    assert {"model"} == UNTYPED
    assert declared()["model"] == "build/model.tar.gz"
    assert re.search(r"^  # model: \S", text, re.M), "describe model in a comment"


def test_the_program_reads_each_declared_key_as_its_declared_type():
    assert {
        name: "model" if name in UNTYPED else spec["type"] for name, spec in declared().items()
    } == PROJECT_KEYS


@pytest.mark.parametrize("name", sorted(k for k, kind in PROJECT_KEYS.items() if kind != "string"))
def test_a_value_of_another_type_is_refused(name):
    wrong = {"integer": "1.5", "boolean": "maybe", "model": "[{"}[PROJECT_KEYS[name]]
    with pytest.raises(StackConfigError, match=rf"  - {name}: {re.escape(repr(wrong))} is not"):
        load_settings(stack_config() | {key(name): wrong}, PROJECT, "dev", ROOT)


def test_the_declared_defaults_alone_are_valid_settings():
    defaults = {
        key(name): engine_value(spec if name in UNTYPED else spec["default"])
        for name, spec in declared().items()
    }
    settings = load_settings({"aws:region": REGION} | defaults, PROJECT, "dev", ROOT)
    (main,) = settings.variants
    assert (main.name, main.version) == ("main", None)
    assert main.archive == ROOT / "build" / "model.tar.gz"
    assert settings.production is False
    assert settings.throttle_rate_limit == 10
    assert settings.throttle_burst_limit == 20
    assert settings.image_uri is None
    assert settings.alarm_email is None


@pytest.mark.parametrize(
    ("model", "archive", "version"),
    [
        ("build/model.tar.gz", ROOT / "build" / "model.tar.gz", None),
        ("/models/with space+plus.tar.gz", Path("/models/with space+plus.tar.gz"), None),
        ("3f9a1c2b4d5e", None, "3f9a1c2b4d5e"),
    ],
)
def test_model_is_one_line_for_an_archive_or_a_version(model, archive, version):
    settings = load_settings(stack_config() | {key("model"): model}, PROJECT, "dev", ROOT)
    (main,) = settings.variants
    assert (main.name, main.weight, main.archive, main.version) == ("main", 100, archive, version)


def test_a_key_the_engine_did_not_pass_is_named():
    config = stack_config()
    del config[key("priceClass")]
    with pytest.raises(StackConfigError, match=r"priceClass: not set"):
        load_settings(config, PROJECT, "dev", ROOT)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_are_valid(stack):
    # prod's operator sets where its alarms go (`pulumi config set alarmEmail ...`).
    operator = {key("alarmEmail"): ONCALL} if stack == "prod" else {}
    settings = load_settings(stack_config(stack) | operator, PROJECT, stack, ROOT)
    assert settings.region
    assert settings.stack == stack


def test_prod_refuses_to_deploy_until_its_alarms_reach_someone():
    """The example prod stack names no address: a placeholder would page nobody."""
    prod = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    assert key("alarmEmail") not in prod
    with pytest.raises(StackConfigError) as refused:
        load_settings(stack_config("prod"), PROJECT, "prod", ROOT)
    message = str(refused.value)
    assert "alarmEmail: a production stack requires it" in message
    assert "pulumi config set alarmEmail" in message


@pytest.mark.parametrize(
    "address",
    [
        "ops@example.com",
        "ops@EXAMPLE.org",
        "ops@alerts.example.net",
        "ops@team.example",
        "ops@ci.test",
        "ops@nowhere.invalid",
        "ops@host.localhost",
    ],
)
def test_reserved_example_domains_are_refused(address):
    assert "reserved for examples and tests" in alarm_email_problem(address)


@pytest.mark.parametrize(
    "address", [ONCALL, "ops@example-corp.com", "ops@myexample.com", "a.b@testing.io"]
)
def test_real_domains_are_accepted(address):
    assert alarm_email_problem(address) is None
