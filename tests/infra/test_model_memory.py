"""The endpoint's memory checked against what the archive recorded at packaging time
(`memory_mb_min`), under the shared mocks: too little is refused with the number needed
and the key to change, before anything that serves the model exists."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.inference_endpoint import ModelMemoryError
from components.model_archive import ModelArchiveError
from tests.infra.conftest import (
    ARCHIVE_VERSION,
    PROJECT,
    StackRun,
    synthetic_metadata,
    write_synthetic_archive,
)

CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
MODEL = "aws:sagemaker/model:Model"
ROLLOUT = "pulumi-python:dynamic/endpoint_rollout:EndpointRollout"
CANARY_VERSION = "fedcba987654"
REGISTERED_VERSION = "3f9a1c2b4d5e"

RunStack = Callable[[dict[str, str]], StackRun]


def key(name: str) -> str:
    return f"{PROJECT}:{name}"


def archive(tmp_path: Path, memory_mb_min: int | None, version: str = ARCHIVE_VERSION) -> str:
    path = tmp_path / f"{version}-{memory_mb_min}.tar.gz"
    return str(write_synthetic_archive(path, version, memory_mb_min=memory_mb_min))


def served(run: StackRun, memory_mb: int) -> None:
    assert run.error is None, run.error
    config = run.one(CONFIG).inputs["productionVariants"][0]["serverlessConfig"]
    assert config["memorySizeInMb"] == memory_mb


def canary(tmp_path: Path, **fields: Any) -> dict[str, str]:
    entries = [
        {"name": "main", "weight": 95, "archive": archive(tmp_path, 2048)},
        {"name": "canary", "weight": 5, "archive": archive(tmp_path, 3072, CANARY_VERSION)}
        | fields,
    ]
    return {key("model"): json.dumps(entries)}


def test_too_little_memory_is_refused_with_what_it_needs_and_nothing_is_created(
    run_stack: RunStack, tmp_path: Path
):
    run = run_stack({key("model"): archive(tmp_path, 2048), key("serverlessMemoryMb"): "1024"})
    assert isinstance(run.error, ModelMemoryError)
    assert isinstance(run.error, pulumi.RunError), "the CLI prints it without a traceback"
    assert str(run.error) == (
        f"serverlessMemoryMb: 1024 MB is too small for model version {ARCHIVE_VERSION}: "
        "it needs at least 2048 MB (set serverlessMemoryMb)"
    )
    assert run.resources == []


@pytest.mark.parametrize(("memory_mb_min", "memory_mb"), [(2048, 2048), (2048, 3072), (None, 1024)])
def test_enough_memory_or_an_archive_from_before_the_record_is_served(
    run_stack: RunStack, tmp_path: Path, memory_mb_min: int | None, memory_mb: int
):
    run = run_stack(
        {
            key("model"): archive(tmp_path, memory_mb_min),
            key("serverlessMemoryMb"): str(memory_mb),
        }
    )
    served(run, memory_mb)


def test_a_model_larger_than_serverless_is_refused(run_stack: RunStack, tmp_path: Path):
    run = run_stack({key("model"): archive(tmp_path, 7168), key("serverlessMemoryMb"): "6144"})
    assert isinstance(run.error, ModelMemoryError)
    assert str(run.error).startswith(
        f"model version {ARCHIVE_VERSION} needs 7168 MB: it cannot be served on SageMaker "
        "Serverless, whose maximum is 6144 MB"
    )
    assert run.resources == []


def test_each_variant_is_checked_with_its_own_memory(run_stack: RunStack, tmp_path: Path):
    run = run_stack(canary(tmp_path, serverlessMemoryMb=3072))
    assert run.error is None, run.error
    memory = {
        r.name: r.inputs["productionVariants"][0]["serverlessConfig"]["memorySizeInMb"]
        for r in run.of_type(CONFIG)
    }
    assert memory == {"model-config": 2048, "model-canary-config": 3072}

    run = run_stack(canary(tmp_path, serverlessMemoryMb=2048))
    assert isinstance(run.error, ModelMemoryError)
    assert str(run.error) == (
        f"model[1].serverlessMemoryMb: 2048 MB is too small for model version "
        f"{CANARY_VERSION}: it needs at least 3072 MB (set model[1].serverlessMemoryMb)"
    )
    assert run.resources == []


def test_a_variant_on_the_stacks_memory_names_both_keys(run_stack: RunStack, tmp_path: Path):
    run = run_stack(canary(tmp_path))
    assert isinstance(run.error, ModelMemoryError)
    assert str(run.error).endswith(
        "it needs at least 3072 MB (set serverlessMemoryMb or model[1].serverlessMemoryMb)"
    )
    assert run.resources == []


def test_a_registered_version_is_checked_with_the_memory_its_sidecar_records(
    run_stack: RunStack, registry: dict[str, dict[str, Any]]
):
    registry[REGISTERED_VERSION] = synthetic_metadata(REGISTERED_VERSION) | {"memory_mb_min": 4096}
    run = run_stack({key("model"): REGISTERED_VERSION})
    assert isinstance(run.error, ModelMemoryError)
    assert str(run.error) == (
        f"serverlessMemoryMb: 2048 MB is too small for model version {REGISTERED_VERSION}: "
        "it needs at least 4096 MB (set serverlessMemoryMb)"
    )
    # Read in preview too, before the model or its endpoint exists.
    assert not [r for r in run.resources if r.type in (MODEL, CONFIG, ROLLOUT)]

    run = run_stack({key("model"): REGISTERED_VERSION, key("serverlessMemoryMb"): "4096"})
    served(run, 4096)


def test_a_sidecar_memory_that_is_not_a_number_is_refused(
    run_stack: RunStack, registry: dict[str, dict[str, Any]]
):
    registry[REGISTERED_VERSION] = synthetic_metadata(REGISTERED_VERSION) | {
        "memory_mb_min": "2048"
    }
    run = run_stack({key("model"): REGISTERED_VERSION})
    assert isinstance(run.error, ModelArchiveError)
    assert "memory_mb_min is not a whole number" in str(run.error)
