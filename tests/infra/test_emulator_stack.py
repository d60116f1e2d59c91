"""The Automation API test stack (tests/integration) reaches every service it needs.

The lifecycle test itself only runs where the Pulumi CLI is installed; these checks run
everywhere, on the same program under mocks.
"""

from __future__ import annotations

import json

from tests.infra.conftest import StackRun
from tests.integration.emulator import (
    ENDPOINT_SERVICES,
    LEAVE_OUT,
    PROJECT,
    emulator_config,
    endpoint_service,
)

RESPONSE_HEADERS_POLICY = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"


def test_every_aws_service_of_the_stack_is_routed_to_the_emulator(dev_stack: StackRun):
    services = {endpoint_service(r.type) for r in dev_stack.resources if r.type.startswith("aws:")}
    assert services <= set(ENDPOINT_SERVICES), services - set(ENDPOINT_SERVICES)
    config = emulator_config("http://127.0.0.1:5000", "/tmp/model.tar.gz")
    for service in ENDPOINT_SERVICES:
        assert config[f"aws:endpoints[0].{service}"].value == "http://127.0.0.1:5000"
    assert config["aws:secretKey"].secret


def project_overrides(config: dict) -> dict[str, str]:
    """The emulator's project keys as the engine hands them over (lists as JSON)."""
    overrides: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for key, value in config.items():
        if not key.startswith(f"{PROJECT}:"):
            continue
        if key.endswith("]"):
            lists.setdefault(key.split("[")[0], []).append(value.value)
        else:
            overrides[key] = value.value
    return overrides | {key: json.dumps(items) for key, items in lists.items()}


def test_leave_out_drops_only_what_moto_cannot_serve(
    dev_stack: StackRun, run_stack, synthetic_archive
):
    assert LEAVE_OUT == ("responseHeadersPolicy",)
    config = emulator_config("http://127.0.0.1:5000", str(synthetic_archive))
    emulated = run_stack(project_overrides(config))
    assert emulated.error is None

    assert dev_stack.of_type(RESPONSE_HEADERS_POLICY), "the real stack keeps its headers policy"
    assert emulated.of_type(RESPONSE_HEADERS_POLICY) == []
    kept = {(r.type, r.name) for r in emulated.resources}
    assert kept == {(r.type, r.name) for r in dev_stack.resources} - {
        (RESPONSE_HEADERS_POLICY, r.name) for r in dev_stack.of_type(RESPONSE_HEADERS_POLICY)
    }
    assert emulated.outputs.keys() == dev_stack.outputs.keys()
