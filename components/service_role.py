"""The role an AWS service runs as, with the one log group it writes, made one way.

`InferenceEndpoint` (SageMaker) and `ProxyApi` (Lambda) each need a log group with the
stack's retention, a role only that service may assume, and an inline policy granting
the service's own permissions plus writing to exactly that log group.

A function, not a component, on purpose: the three resources stay children of the
calling component under the names it gives, so existing stacks keep their URNs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam_policy import log_writer_statement, policy_document, service_trust_policy

LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557}
    | {2922, 3288, 3653}
)
"""The retention periods CloudWatch Logs accepts; any other value fails at deployment."""
DEFAULT_LOG_RETENTION_DAYS = 30
"""A component's log retention when its args give none."""


def log_retention_problem(days: int) -> str | None:
    """Why CloudWatch would refuse `days` as a retention; None when it accepts it."""
    if days in LOG_RETENTION_DAYS:
        return None
    return f"{days} is not a value CloudWatch accepts ({sorted(LOG_RETENTION_DAYS)})"


@dataclass(frozen=True)
class ServiceRoleNames:
    """Pulumi names of the three resources (unchanged since they were first deployed)."""

    log_group: str
    role: str
    policy: str


@dataclass(frozen=True)
class ServiceLogs:
    """The role's log group: its name AWS shows, how long it keeps logs, and any log actions
    beyond writing to its streams."""

    name: str
    retention_days: pulumi.Input[int]
    extra_actions: Sequence[str] = ()


@dataclass(frozen=True)
class ServiceRole:
    log_group: aws.cloudwatch.LogGroup
    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    """Depend on the policy, not the role: the role may do nothing before it exists."""


def service_role(
    parent: pulumi.Resource,
    names: ServiceRoleNames,
    *,
    service: str,
    logs: ServiceLogs,
    statements: pulumi.Input[Sequence[Mapping[str, Any]]],
    source_account: pulumi.Input[str] | None = None,
    tags: pulumi.Input[Mapping[str, str]] | None = None,
) -> ServiceRole:
    """`service` may assume the role (only for `source_account`, when given); the policy
    is `statements` followed by writing to the log group's streams."""
    child = pulumi.ResourceOptions(parent=parent)
    log_group = aws.cloudwatch.LogGroup(
        names.log_group,
        name=logs.name,
        retention_in_days=logs.retention_days,
        tags=tags,
        opts=child,
    )
    trust_policy: pulumi.Input[str] = (
        service_trust_policy(service)
        if source_account is None
        else pulumi.Output.from_input(source_account).apply(
            lambda account_id: service_trust_policy(service, account_id)
        )
    )
    role = aws.iam.Role(names.role, assume_role_policy=trust_policy, tags=tags, opts=child)
    policy = aws.iam.RolePolicy(
        names.policy,
        role=role.id,
        policy=pulumi.Output.all(pulumi.Output.from_input(statements), log_group.arn).apply(
            lambda values: policy_document(
                *values[0], log_writer_statement(values[1], *logs.extra_actions)
            )
        ),
        opts=child,
    )
    return ServiceRole(log_group=log_group, role=role, policy=policy)
