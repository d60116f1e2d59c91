"""`InferenceEndpoint`: the model archive served by a SageMaker Serverless endpoint.

Everything that depends on the model is named by its content version, so a new archive
means a new object, model and endpoint config, and `EndpointRollout` moves the endpoint
to it; the same archive twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.aws_session import AwsSessionSettings, provider_session
from components.endpoint_rollout import (
    ENDPOINT_TAG,
    EndpointCleanup,
    EndpointCleanupArgs,
    EndpointRollout,
    EndpointRolloutArgs,
)
from components.model_archive import ModelArchive
from components.private_bucket import PrivateBucket, PrivateBucketArgs, tls_only_bucket_policy
from components.service_role import ServiceRoleNames, service_role

TYPE = "image-classifier:inference_endpoint:InferenceEndpoint"

SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200


def serverless_problems(
    memory_mb: int, max_concurrency: int, provisioned_concurrency: int
) -> dict[str, str]:
    """What is wrong with a serverless config, by field; empty when it is valid."""
    problems = {}
    if memory_mb not in SERVERLESS_MEMORY_MB:
        problems["memory_mb"] = (
            f"memory {memory_mb} MB is not allowed: SageMaker Serverless takes 1024-6144 MB "
            f"in 1024 MB steps ({', '.join(map(str, SERVERLESS_MEMORY_MB))})"
        )
    if not 1 <= max_concurrency <= SERVERLESS_MAX_CONCURRENCY:
        problems["max_concurrency"] = (
            f"max concurrency {max_concurrency} is out of range: "
            f"it must be 1-{SERVERLESS_MAX_CONCURRENCY}"
        )
    if provisioned_concurrency < 0:
        problems["provisioned_concurrency"] = (
            f"provisioned concurrency {provisioned_concurrency} is negative: use 0 for none"
        )
    elif provisioned_concurrency > max_concurrency:
        problems["provisioned_concurrency"] = (
            f"provisioned concurrency {provisioned_concurrency} exceeds "
            f"max concurrency {max_concurrency}"
        )
    return problems


@dataclass(frozen=True)
class ServerlessConfig:
    """SageMaker Serverless capacity, validated on construction (plain values on purpose:
    an invalid config must fail before any resource is created)."""

    memory_mb: int = 2048
    """Memory, which also sets the vCPUs; MobileNetV2 on ONNX Runtime fits in 2048."""
    max_concurrency: int = 5
    provisioned_concurrency: int = 0
    """Instances kept warm (billed while idle); 0 means cold starts are accepted."""

    def __post_init__(self) -> None:
        problems = serverless_problems(
            self.memory_mb, self.max_concurrency, self.provisioned_concurrency
        )
        if problems:
            raise ValueError("; ".join(problems.values()))


@dataclass
class InferenceEndpointArgs:
    """Names and validated capacity are plain values: they decide resource names before
    anything is created. Everything else is a `pulumi.Input`."""

    endpoint_name: str
    region: str
    archive: ModelArchive
    """The archive to serve; its content version names the model and the config."""
    image_uri: pulumi.Input[str]
    """The serving image SageMaker pulls (`ServingImage.image_uri`, pinned by digest)."""
    image_repository_arn: pulumi.Input[str]
    """Its ECR repository: the only one the execution role may pull from."""
    serverless: ServerlessConfig = field(default_factory=ServerlessConfig)
    log_retention_days: pulumi.Input[int] = 30
    rollout_timeout_seconds: pulumi.Input[int] = 3600
    aws_session: AwsSessionSettings = field(default_factory=AwsSessionSettings)
    """How `EndpointRollout` reaches AWS: the stack's AWS provider settings."""
    tags: pulumi.Input[Mapping[str, str]] | None = None


class InferenceEndpoint(pulumi.ComponentResource):
    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    endpoint_config_name: pulumi.Output[str]
    model_name: pulumi.Output[str]
    artifact_bucket: pulumi.Output[str]
    log_group: pulumi.Output[str]
    """The endpoint's log group, `/aws/sagemaker/Endpoints/<endpoint>`."""

    def __init__(
        self, name: str, args: InferenceEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition

        bucket = PrivateBucket(
            f"{name}-artifacts",
            # Holds only archives this stack uploads (and can upload again).
            PrivateBucketArgs(force_destroy=True, tags=args.tags),
            opts=child,
        )
        tls_only_bucket_policy(f"{name}-artifacts-policy", bucket, opts=child)
        key = f"models/{args.archive.slug}/model.tar.gz"
        # Retained like the model and config below, and retired with the model that reads
        # it (by EndpointRollout, never while a config in use needs it), because Pulumi's
        # delete of an object in a versioned bucket removes every version of its key: after
        # a failed rollout, a rollback re-uploads the old key and would then delete it as
        # the pending replaced object, under the endpoint that serves it. Destroy still
        # empties the bucket (force_destroy).
        artifact = aws.s3.BucketObjectv2(
            f"{name}-model-archive",
            bucket=bucket.name,
            key=key,
            source=pulumi.FileAsset(str(args.archive.path)),
            content_type="application/gzip",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[bucket], retain_on_delete=True),
        )
        object_arn = pulumi.Output.concat(bucket.arn, "/", key)

        execution = service_role(
            self,
            ServiceRoleNames(
                log_group=f"{name}-logs",
                role=f"{name}-execution",
                policy=f"{name}-execution-policy",
            ),
            service="sagemaker.amazonaws.com",
            log_group_name=f"/aws/sagemaker/Endpoints/{args.endpoint_name}",
            retention_days=args.log_retention_days,
            statements=pulumi.Output.all(object_arn, args.image_repository_arn).apply(
                lambda arns: [
                    {
                        "Sid": "ReadTheModelArchive",
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": arns[0],
                    },
                    {
                        "Sid": "PullTheServingImage",
                        "Effect": "Allow",
                        "Action": [
                            "ecr:BatchCheckLayerAvailability",
                            "ecr:BatchGetImage",
                            "ecr:GetDownloadUrlForLayer",
                        ],
                        "Resource": arns[1],
                    },
                    {
                        # GetAuthorizationToken has no resource-level permissions.
                        "Sid": "LogInToEcr",
                        "Effect": "Allow",
                        "Action": "ecr:GetAuthorizationToken",
                        "Resource": "*",
                    },
                ]
            ),
            extra_log_actions=("logs:DescribeLogStreams",),
            source_account=account,
            tags=args.tags,
        )

        # Configs and models are retained by Pulumi: after a failed rollout the previous
        # ones still serve, and Pulumi would delete them on its next run. EndpointRollout
        # retires them once nothing uses them. Their names are unique per creation, so
        # rolling back to a version whose config still exists creates a fresh one.
        retained = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        versioned_tags = pulumi.Output.from_input(args.tags or {}).apply(
            lambda tags: {
                **tags,
                "model-version": args.archive.version,
                # How EndpointRollout finds what a failed rollout left behind.
                ENDPOINT_TAG: args.endpoint_name,
            }
        )
        model = aws.sagemaker.Model(
            f"{name}-model",
            execution_role_arn=execution.role.arn,
            # The serving image needs no environment: `model.serve` reads the model from
            # /opt/ml/model and the port from SAGEMAKER_BIND_TO_PORT, as SageMaker sets them.
            primary_container={
                "image": args.image_uri,
                "model_data_url": pulumi.Output.concat("s3://", bucket.name, "/", artifact.key),
            },
            tags=versioned_tags,
            opts=pulumi.ResourceOptions.merge(
                retained, pulumi.ResourceOptions(depends_on=[execution.policy])
            ),
        )
        serverless = args.serverless
        serverless_config: dict[str, int] = {
            "memory_size_in_mb": serverless.memory_mb,
            "max_concurrency": serverless.max_concurrency,
        }
        if serverless.provisioned_concurrency:
            serverless_config["provisioned_concurrency"] = serverless.provisioned_concurrency
        # AWS appends a 26-character unique suffix to the config's name; names stop at 63.
        config_name_prefix = f"{args.endpoint_name[:20]}-"
        config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            name_prefix=f"{config_name_prefix}{args.archive.slug}-",
            production_variants=[
                {
                    "variant_name": "AllTraffic",
                    "model_name": model.name,
                    "serverless_config": serverless_config,
                }
            ],
            tags=versioned_tags,
            opts=retained,
        )
        session = provider_session(self, args.aws_session, args.region)
        # Exists before the first rollout attempt: a create that fails never reaches the
        # state, and this is what still deletes its endpoint on destroy. Deleted after
        # the rollout, before the bucket and the role policy.
        cleanup = EndpointCleanup(
            f"{name}-endpoint-cleanup",
            EndpointCleanupArgs(
                endpoint_name=args.endpoint_name,
                config_name_prefix=config_name_prefix,
                region=args.region,
                aws=session,
                timeout_seconds=args.rollout_timeout_seconds,
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[bucket, execution.log_group, execution.policy]
            ),
        )
        rollout = EndpointRollout(
            f"{name}-endpoint",
            EndpointRolloutArgs(
                endpoint_name=args.endpoint_name,
                endpoint_config_name=config.name,
                config_name_prefix=config_name_prefix,
                region=args.region,
                aws=session,
                timeout_seconds=args.rollout_timeout_seconds,
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[execution.log_group, execution.policy, cleanup]
            ),
        )

        self.endpoint_name = rollout.endpoint_name
        # SageMaker ARNs carry the name in lower case.
        self.endpoint_arn = pulumi.Output.format(
            "arn:{0}:sagemaker:{1}:{2}:endpoint/{3}",
            partition,
            args.region,
            account,
            args.endpoint_name.lower(),
        )
        self.endpoint_config_name = rollout.endpoint_config_name
        self.model_name = model.name
        self.artifact_bucket = bucket.name
        self.log_group = execution.log_group.name
        self.register_outputs(
            {
                "log_group": self.log_group,
                "endpoint_name": self.endpoint_name,
                "endpoint_arn": self.endpoint_arn,
                "endpoint_config_name": self.endpoint_config_name,
                "model_name": self.model_name,
                "artifact_bucket": self.artifact_bucket,
            }
        )
