"""IAM policy documents, written one way for every component (pure standard library)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def policy_document(*statements: Mapping[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def service_trust_policy(service: str, source_account: str | None = None) -> str:
    """Who may assume a role: one AWS service, and only on behalf of `source_account`
    when given (the confused-deputy guard)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return policy_document(statement)


def log_writer_statement(log_group_arn: str, *extra_actions: str) -> dict[str, Any]:
    """Write to one log group's streams, nothing else."""
    return {
        "Sid": "WriteItsOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", *extra_actions, "logs:PutLogEvents"],
        "Resource": f"{log_group_arn}:*",
    }


def image_pull_statements(repository_arn: str) -> list[dict[str, Any]]:
    """Pull the images of one ECR repository, nothing else."""
    return [
        {
            "Sid": "PullTheServingImage",
            "Effect": "Allow",
            "Action": [
                "ecr:BatchCheckLayerAvailability",
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
            ],
            "Resource": repository_arn,
        },
        {
            # GetAuthorizationToken has no resource-level permissions.
            "Sid": "LogInToEcr",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
    ]
