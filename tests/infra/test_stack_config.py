"""Stack config: invalid values fail with a clear message before any resource exists."""

from __future__ import annotations

import json
import re

import pulumi
import pytest
import yaml

from components.inference_endpoint import ServerlessConfig, serverless_problems
from components.model_archive import ModelArchiveError, read_model_archive
from components.stack_config import StackConfigError, load_settings
from tests.infra.conftest import (
    PROJECT,
    REGION,
    ROOT,
    engine_value,
    stack_config,
    write_synthetic_archive,
)


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
        ({"lambdaTimeoutSeconds": "60"}, r"lambdaTimeoutSeconds: 60 is out of range 1-30"),
        ({"lambdaMemoryMb": "64"}, r"lambdaMemoryMb: 64 is out of range"),
        ({"throttleRateLimit": "0"}, r"throttleRateLimit: 0.0 must be above 0"),
        ({"throttleBurstLimit": "0"}, r"throttleBurstLimit: 0 must be at least 1"),
        ({"logRetentionDays": "10"}, r"logRetentionDays: 10 is not a value CloudWatch accepts"),
        ({"logLevel": "LOUD"}, r"logLevel: must be one of"),
        ({"priceClass": "PriceClass_Cheap"}, r"priceClass: must be one of"),
        ({"rolloutTimeoutMinutes": "0"}, r"rolloutTimeoutMinutes: must be 1-1440"),
        ({"imageUri": "docker.io/pytorch/pytorch:latest"}, r"imageUri: .* is not an ECR image"),
        ({"leaveOut": '["bucketPolicy"]'}, r"leaveOut: \['bucketPolicy'\] cannot be left out"),
        ({"leaveOut": '"responseHeadersPolicy"'}, r"leaveOut: must be a list"),
        ({"alarmEmail": "oncall"}, r"alarmEmail: 'oncall' is not an email address"),
        (
            {"monitoring": "false", "alarmEmail": "ops@example.com"},
            r"alarmEmail: is set but monitoring is false",
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
    run = run_stack({key("modelArchive"): str(tmp_path / "missing.tar.gz")})
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


# -- leaveOut ------------------------------------------------------------------------------


def test_leave_out_drops_only_the_headers_policy_and_warns(run_stack, dev_stack):
    run = run_stack({key("leaveOut"): json.dumps(["responseHeadersPolicy"])})
    assert run.error is None, run.error
    assert not run.of_type("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")
    behavior = run.one("aws:cloudfront/distribution:Distribution").inputs["defaultCacheBehavior"]
    assert "responseHeadersPolicyId" not in behavior
    assert any("emulator tests only" in message for message in run.warnings)
    assert any("never a real stack" in message for message in run.warnings)
    kept = {(r.type, r.name) for r in run.resources}
    expected = {
        (r.type, r.name)
        for r in dev_stack.resources
        if r.type != "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"
    }
    assert kept == expected
    assert not dev_stack.warnings


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_real_stacks_never_leave_anything_out(stack):
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    assert not any(name.endswith("leaveOut") for name in config)


# -- Pulumi.yaml ---------------------------------------------------------------------------


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


def test_every_declared_key_has_a_type_and_description():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    for name, spec in declared.items():
        assert spec["type"] in ("string", "integer", "boolean", "array"), name
        assert spec["description"].strip(), name
        assert "default" in spec, name
    assert {"monitoring", "alarmEmail", "leaveOut"} <= set(declared)
    assert declared["monitoring"]["default"] is True
    assert declared["leaveOut"]["default"] == []


def test_code_defaults_equal_the_declared_defaults():
    """An engine applies Pulumi.yaml's defaults; the code's own must be the same."""
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    region = {"aws:region": REGION}
    pulumi.runtime.set_all_config(region)
    bare = load_settings(ROOT)
    pulumi.runtime.set_all_config(
        region | {key(name): engine_value(spec["default"]) for name, spec in declared.items()}
    )
    assert load_settings(ROOT) == bare


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_stack_files_are_valid(stack):
    pulumi.runtime.set_all_config(stack_config(stack))
    settings = load_settings(ROOT)
    assert settings.leave_out == frozenset()
    assert settings.region
