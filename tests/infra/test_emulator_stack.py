"""The Automation API test stack (tests/integration) reaches every service it needs.

The lifecycle test itself only runs where the Pulumi CLI is installed; these checks run
everywhere, on the same program under mocks, with the config the test sets.
"""

from __future__ import annotations

from collections.abc import Iterator

import pulumi
import pytest

from components.stack import deploy
from tests.infra.conftest import StackRun, record, stack_config
from tests.integration.emulator import (
    ENDPOINT_SERVICES,
    PROGRAM,
    PROJECT,
    emulator_config,
    endpoint_service,
)

RESPONSE_HEADERS_POLICY = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"
# The serving image's build and repository: the emulator stack serves `imageUri` instead.
IMAGE_BUILD = {
    "aws:ecr/repository:Repository",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy",
    "docker-build:index:Image",
}


def test_every_aws_service_of_the_stack_is_routed_to_the_emulator(dev_stack: StackRun):
    services = {endpoint_service(r.type) for r in dev_stack.resources if r.type.startswith("aws:")}
    assert services <= set(ENDPOINT_SERVICES), services - set(ENDPOINT_SERVICES)
    config = emulator_config("http://127.0.0.1:5000", "/tmp/model.tar.gz")
    for service in ENDPOINT_SERVICES:
        assert config[f"aws:endpoints[0].{service}"].value == "http://127.0.0.1:5000"
    assert config["aws:secretKey"].secret


@pytest.fixture
def emulator_engine(synthetic_archive) -> Iterator[None]:
    """The config the engine passes the emulator stack: Pulumi.yaml's defaults, the
    region and the project keys the test sets (the provider's endpoints do not matter
    under mocks)."""
    config = emulator_config("http://127.0.0.1:5000", str(synthetic_archive))
    passed = {
        key: value.value
        for key, value in config.items()
        if key == "aws:region" or key.startswith(f"{PROJECT}:")
    }
    pulumi.runtime.set_all_config(stack_config() | passed)
    yield
    pulumi.runtime.set_all_config({})


def _without_what_moto_cannot_create(dev_stack: StackRun) -> set[tuple[str, str]]:
    left_out = {RESPONSE_HEADERS_POLICY, *IMAGE_BUILD}
    return {(r.type, r.name) for r in dev_stack.resources if r.type not in left_out}


@pytest.mark.usefixtures("emulator_engine")
def test_the_emulator_stack_drops_only_what_moto_cannot_create_and_says_so(dev_stack):
    emulated = record(lambda: deploy(security_headers=False).exports())
    assert emulated.error is None, emulated.error

    assert dev_stack.of_type(RESPONSE_HEADERS_POLICY), "the real stack keeps its headers policy"
    assert emulated.of_type(RESPONSE_HEADERS_POLICY) == []
    behavior = emulated.one("aws:cloudfront/distribution:Distribution").inputs[
        "defaultCacheBehavior"
    ]
    assert "responseHeadersPolicyId" not in behavior
    assert {(r.type, r.name) for r in emulated.resources} == _without_what_moto_cannot_create(
        dev_stack
    )
    assert emulated.outputs.keys() == dev_stack.outputs.keys()
    (warning,) = emulated.warnings
    assert "emulator test stacks" in warning
    assert "never a real stack" in warning
    assert not dev_stack.warnings


@pytest.mark.usefixtures("emulator_engine")
def test_the_emulator_program_is_that_stack(dev_stack):
    """What the Automation API test runs as its `__main__.py`, run the way Python runs it."""
    program = compile(PROGRAM.read_text(), str(PROGRAM), "exec")
    emulated = record(lambda: exec(program, {"__name__": "__main__"}))
    assert emulated.error is None, emulated.error
    assert {(r.type, r.name) for r in emulated.resources} == _without_what_moto_cannot_create(
        dev_stack
    )
    assert any("never a real stack" in warning for warning in emulated.warnings)
