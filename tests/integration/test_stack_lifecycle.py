"""The whole stack through the Pulumi Automation API, against moto server.

up -> outputs -> up again with no changes -> change a config value -> update -> destroy
-> remove the stack. State lives in a temporary file backend, secrets use a passphrase,
and the AWS provider and boto3 (the dynamic providers) both talk to a moto server the
test starts. Nothing reaches AWS.

These tests need the `pulumi` CLI (the engine); the Python SDK alone cannot run a
deployment. Where the CLI is missing they are collected and skipped with that reason.
"""

from __future__ import annotations

import json
import shutil
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from tests.integration.emulator import (
    PROGRAM,
    PROJECT,
    REGION,
    emulator_config,
    emulator_env,
)

ROOT = Path(__file__).resolve().parents[2]
PULUMI = shutil.which("pulumi")
NO_PULUMI = (
    "the `pulumi` CLI is not on PATH: the Automation API drives the Pulumi engine, which "
    "cannot be installed on this machine. Install it (https://www.pulumi.com/docs/install/) "
    "and run `make test` or `pytest -m '' tests/integration` to deploy the stack to moto"
)

# Where the CLI is missing the skip is instant, so plain `pytest` shows it; where it is
# present a full deployment takes minutes, so it joins the slow tests.
pytestmark = [pytest.mark.skipif(PULUMI is None, reason=NO_PULUMI)] + (
    [pytest.mark.slow] if PULUMI else []
)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    from machine.ports import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def program_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project as checked in, with the emulator's program as `__main__.py` and a
    Pulumi.yaml whose virtualenv is this one.

    The checked-in Pulumi.yaml points at `.venv-pulumi`; the test runs the program in
    the interpreter already running the tests (it has pulumi, pulumi-aws and boto3),
    and never writes a stack file into the repository.
    """
    work = tmp_path_factory.mktemp("program")
    for entry in ROOT.iterdir():
        skipped = entry.name in ("build", "tests", "__main__.py")
        if skipped or entry.name.startswith((".", "Pulumi.")):
            continue
        (work / entry.name).symlink_to(entry)
    # A copy, not a link: the program imports `components` from the directory it runs in.
    shutil.copyfile(PROGRAM, work / "__main__.py")
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    project["runtime"]["options"] = {"toolchain": "pip", "virtualenv": sys.prefix}
    (work / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    return work


@pytest.fixture(scope="module")
def stack(program_dir: Path, moto_url: str, model_artifact: Path, tmp_path_factory):
    from pulumi import automation as auto

    state = tmp_path_factory.mktemp("state")
    env = {
        **emulator_env(moto_url),
        "PULUMI_BACKEND_URL": state.as_uri(),
        "PULUMI_CONFIG_PASSPHRASE": "integration-test-only",
    }
    name = f"it-{uuid.uuid4().hex[:8]}"
    workspace_options = auto.LocalWorkspaceOptions(env_vars=env, secrets_provider="passphrase")
    created = auto.create_stack(name, work_dir=str(program_dir), opts=workspace_options)
    created.set_all_config(emulator_config(moto_url, str(model_artifact)), path=True)
    try:
        yield created
    finally:
        # Leave nothing behind, even when an assertion failed halfway.
        if any(s.name == name for s in created.workspace.list_stacks()):
            created.destroy(on_output=print)
            created.workspace.remove_stack(name)


def _aws(service: str, moto_url: str):
    return boto3.client(
        service,
        endpoint_url=moto_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _archive_version(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        member = tar.extractfile("metadata.json")
        assert member is not None
        return json.load(member)["version"]


def test_stack_lifecycle_against_moto(stack, moto_url: str, model_artifact: Path):
    from pulumi import automation as auto

    # 1. A fresh deployment creates everything and exports what the site and users need.
    first = stack.up(on_output=print)
    assert first.summary.result == "succeeded"
    assert first.summary.resource_changes.get("create", 0) > 0
    outputs = {key: value.value for key, value in first.outputs.items()}
    assert outputs["site_url"].startswith("https://")
    assert outputs["api_url"].startswith(("https://", "http://"))
    assert outputs["model_version"] == _archive_version(model_artifact)
    endpoint = _aws("sagemaker", moto_url).describe_endpoint(EndpointName=outputs["endpoint_name"])
    assert endpoint["EndpointStatus"] == "InService"

    # 2. The program is deterministic: a second up changes nothing.
    second = stack.up(expect_no_changes=True, on_output=print)
    assert set(second.summary.resource_changes) == {"same"}

    # 3. A config change rolls out as an in-place update of the API stage.
    # Path syntax stores 7 as a number, as the key's declared type (integer) requires.
    stack.set_config(f"{PROJECT}:throttleRateLimit", auto.ConfigValue("7"), path=True)
    third = stack.up(on_output=print)
    assert third.summary.resource_changes.get("update", 0) >= 1
    assert "create" not in third.summary.resource_changes
    apis = _aws("apigatewayv2", moto_url).get_apis()["Items"]
    stages = [
        s
        for api in apis
        for s in _aws("apigatewayv2", moto_url).get_stages(ApiId=api["ApiId"])["Items"]
    ]
    assert [s["DefaultRouteSettings"]["ThrottlingRateLimit"] for s in stages] == [7.0]
    # The burst follows the rate (twice it): no key of its own to forget.
    assert [s["DefaultRouteSettings"]["ThrottlingBurstLimit"] for s in stages] == [14]

    # 4. Destroy removes every resource; the stack itself goes too.
    gone = stack.destroy(on_output=print)
    assert gone.summary.result == "succeeded"
    assert gone.summary.resource_changes.get("delete", 0) > 0
    stack.workspace.remove_stack(stack.name)
    assert stack.name not in [s.name for s in stack.workspace.list_stacks()]
