"""The role SageMaker Batch Transform jobs run as, over the batch bucket (config `batch`).

`python -m batch run s3://... --on sagemaker` (`batch.transform`) creates a SageMaker
model of the serving image and a registry version with this role (stack output
`transform_role_arn`), and a job of it. The role may, and only:

- read the images and the job's manifest: any object of the batch bucket (outside
  `inbox/` too: a prefix of photos to classify at once need not start a workflow per
  image); images elsewhere need a grant of their own (docs/operations.md);
- write the job's outputs, under the bucket's `transform/` only (the command sorts them
  into the outcome folders itself);
- read the registry's archives (`models/*` of the artifact bucket: any version may run);
- pull the serving image from its repository;
- write the jobs' logs, in SageMaker's log group for transform jobs
  (`/aws/sagemaker/TransformJobs`, shared by the account, so not the stack's to create),
  to streams of the stack's jobs only, and their metrics in SageMaker's namespace.

A function, not a component, as `service_role` is: its resources are children of the
batch pipeline, whose bucket it is about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam_policy import image_pull_statements, policy_document, service_trust_policy
from pipeline.storage import TRANSFORM
from shared.registry import KEY_PREFIX

TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"
TRANSFORM_METRICS_NAMESPACE = "/aws/sagemaker/TransformJobs"


@dataclass
class TransformAccess:
    """What a transform job needs beyond the batch bucket."""

    image_repository_arn: pulumi.Input[str]
    """The serving image's ECR repository: the only one the role may pull from."""
    artifact_bucket_arn: pulumi.Input[str]
    """The registry: the role reads its `models/` archives."""
    region: str
    """Where the jobs run (their log group's region)."""


@dataclass(frozen=True)
class TransformArns:
    """The ARNs the statements name (plain strings)."""

    bucket: str
    artifacts: str
    repository: str
    log_group: str
    """`arn:<partition>:logs:<region>:<account>:log-group:/aws/sagemaker/TransformJobs`."""
    name_prefix: str


def transform_statements(arns: TransformArns) -> list[dict[str, Any]]:
    """The role's policy (module docstring)."""
    return [
        {
            "Sid": "ReadTheImagesAndTheManifest",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"{arns.bucket}/*",
        },
        {
            "Sid": "WriteTheOutputs",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": f"{arns.bucket}/{TRANSFORM}*",
        },
        {
            "Sid": "ReadTheRegistry",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"{arns.artifacts}/{KEY_PREFIX}*",
        },
        *image_pull_statements(arns.repository),
        {
            "Sid": "OpenTheTransformLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:DescribeLogStreams"],
            "Resource": f"{arns.log_group}:*",
        },
        {
            # A job's streams are `<job>/<instance>`: the stack's jobs start with its prefix.
            "Sid": "WriteTheJobsLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{arns.log_group}:log-stream:{arns.name_prefix}-*",
        },
        {
            # PutMetricData has no resource-level permissions; the condition keeps it to
            # SageMaker's namespace for transform jobs.
            "Sid": "PublishTransformMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": TRANSFORM_METRICS_NAMESPACE}},
        },
    ]


def transform_role(
    parent: pulumi.Resource,
    name: str,
    *,
    access: TransformAccess,
    bucket_arn: pulumi.Input[str],
    name_prefix: str,
    account: pulumi.Output[str],
    tags: pulumi.Input[Mapping[str, str]] | None = None,
) -> aws.iam.Role:
    """The role `<name>-role` (SageMaker's, for `account` only) and its policy."""
    child = pulumi.ResourceOptions(parent=parent)
    partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=parent)).partition
    role = aws.iam.Role(
        f"{name}-role",
        assume_role_policy=account.apply(
            lambda account_id: service_trust_policy("sagemaker.amazonaws.com", account_id)
        ),
        tags=tags,
        opts=child,
    )
    aws.iam.RolePolicy(
        f"{name}-policy",
        role=role.id,
        policy=pulumi.Output.all(
            bucket_arn,
            access.artifact_bucket_arn,
            access.image_repository_arn,
            partition,
            account,
        ).apply(
            lambda values: policy_document(
                *transform_statements(
                    TransformArns(
                        bucket=values[0],
                        artifacts=values[1],
                        repository=values[2],
                        log_group=f"arn:{values[3]}:logs:{access.region}:{values[4]}:"
                        f"log-group:{TRANSFORM_LOG_GROUP}",
                        name_prefix=name_prefix,
                    )
                )
            )
        ),
        opts=child,
    )
    return role
