"""Run CrossGuard policies the way the analyzer does, without the Pulumi engine.

Properties are wrapped in pulumi_policy's unknown-checking proxy, exactly as the
analyzer server wraps them, so a rule that works here works under `pulumi preview`.
Shared by the rule tests (bad resources) and tests/infra (the stack we register).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from tests.policy_sdk_adapter import unknown_checking_proxy


@dataclass(frozen=True)
class Resource:
    """One resource as the analyzer sees it: type token, name, engine-shaped properties."""

    type: str
    name: str
    props: Mapping[str, Any] = field(default_factory=dict)

    @property
    def urn(self) -> str:
        return f"urn:pulumi:test::image-classifier::{self.type}::{self.name}"


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def violations(
    policy: ResourceValidationPolicy | StackValidationPolicy,
    resources: Iterable[Resource],
    config: Mapping[str, Any] | None = None,
) -> list[str]:
    """Every message `policy` reports for `resources` (resource rules run on each one)."""
    found: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)

    resources = list(resources)
    if isinstance(policy, StackValidationPolicy):
        stack = [
            PolicyResource(
                r.type,
                unknown_checking_proxy(dict(r.props)),
                r.urn,
                r.name,
                _options(),
                None,
                None,
                [],
                {},
            )
            for r in resources
        ]
        policy.validate(StackValidationArgs(stack, dict(config or {})), report)
        return found
    for r in resources:
        args = ResourceValidationArgs(
            r.type,
            unknown_checking_proxy(dict(r.props)),
            r.urn,
            r.name,
            _options(),
            None,
            dict(config or {}),
        )
        policy.validate(args, report)
    return found
