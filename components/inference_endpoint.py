"""`InferenceEndpoint`: a model version served by a SageMaker Serverless endpoint.

Everything that depends on the model is named by its content version, so a new archive
means a new object, model and endpoint config, and `EndpointRollout` moves the endpoint
to it; the same archive twice changes nothing.

The stack's first endpoint creates the artifact bucket, the model registry: each archive
under `models/<version>/model.tar.gz` with its `metadata.json` beside it, kept for good.
Every other endpoint of the stack (one per model variant) shares it (`artifacts`). An
endpoint serves either a local archive, which it uploads, or a version already in the
bucket (`RegistryVersion`), which it reads the metadata of at deploy time (in preview too)
and refuses, with how to list the versions, when the bucket does not hold it.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from artifact.metadata import ArchiveMetadataError, memory_mb_min
from components.aws_session import AwsSessionSettings, provider_session
from components.endpoint_rollout import (
    ENDPOINT_TAG,
    EndpointCleanup,
    EndpointCleanupArgs,
    EndpointRollout,
    EndpointRolloutArgs,
)
from components.iam_policy import image_pull_statements
from components.model_archive import (
    ModelArchive,
    ModelArchiveError,
    RegistryVersion,
    metadata_labels,
    read_model_archive,
    version_slug,
)
from components.private_bucket import PrivateBucket, PrivateBucketArgs, tls_only_bucket_policy
from components.service_role import (
    DEFAULT_LOG_RETENTION_DAYS,
    ServiceLogs,
    ServiceRole,
    ServiceRoleNames,
    service_role,
)
from shared.registry import KEY_PREFIX, archive_key, metadata_key
from shared.serverless import SERVERLESS_MEMORY_MB, SERVERLESS_MEMORY_STEP_MB

TYPE = "image-classifier:inference_endpoint:InferenceEndpoint"

ENDPOINT_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"
"""Where SageMaker publishes an endpoint's container metrics with the execution role."""
SERVERLESS_MAX_CONCURRENCY = 200
MEMORY_INPUT = "serverless.memory_mb"
"""The input that sets the endpoint's memory, as its memory errors name it."""
ROLLOUT_TIMEOUT_SECONDS = 3600
_VariantServerless = aws.sagemaker.EndpointConfigurationProductionVariantServerlessConfigArgsDict


class ModelMemoryError(pulumi.RunError):
    """The model needs more memory than the endpoint has (or than Serverless offers); the
    message names the setting to change."""


def check_model_memory(
    version: str, memory_mb: int, needed_mb: int | None, keys: Sequence[str]
) -> None:
    """Refuse to serve model `version` with `memory_mb` when its archive recorded, at
    packaging time, that it needs `needed_mb` (None: an archive from before that, not
    checked). `keys` name what sets `memory_mb`, the one in effect first."""
    if needed_mb is None:
        return
    if needed_mb > SERVERLESS_MEMORY_MB[-1]:
        raise ModelMemoryError(
            f"model version {version} needs {needed_mb} MB: it cannot be served on SageMaker "
            f"Serverless, whose maximum is {SERVERLESS_MEMORY_MB[-1]} MB; package a smaller "
            "model (or int8)"
        )
    if memory_mb < needed_mb:
        raise ModelMemoryError(
            f"{keys[0]}: {memory_mb} MB is too small for model version {version}: it needs "
            f"at least {needed_mb} MB (set {' or '.join(keys)})"
        )


def serverless_problems(
    memory_mb: int, max_concurrency: int, provisioned_concurrency: int
) -> dict[str, str]:
    """What is wrong with a serverless config, by field; empty when it is valid."""
    problems = {}
    if memory_mb not in SERVERLESS_MEMORY_MB:
        problems["memory_mb"] = (
            f"memory {memory_mb} MB is not allowed: SageMaker Serverless takes "
            f"{SERVERLESS_MEMORY_MB[0]}-{SERVERLESS_MEMORY_MB[-1]} MB in "
            f"{SERVERLESS_MEMORY_STEP_MB} MB steps ({', '.join(map(str, SERVERLESS_MEMORY_MB))})"
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


@dataclass(frozen=True)
class ArtifactBucket:
    """The stack's artifact bucket: the model registry its endpoints share."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    resource: pulumi.Resource
    """What uploads and the endpoint's cleanup wait for."""


# The args are plain dicts (`TypedDict`s): the component provider passes them so to a
# program in another language, and infers its schema from these annotations at run time
# (so no annotations from `__future__` in this module).
class ServerlessCapacity(TypedDict, total=False):
    """SageMaker Serverless capacity, checked before anything is created; each value left
    out takes its default (`ServerlessConfig`)."""

    memory_mb: int
    """Memory in MB, 1024-6144 in steps of 1024; it also sets the vCPUs."""
    max_concurrency: int
    """Requests served at once, 1-200."""
    provisioned_concurrency: int
    """Instances kept warm and billed while idle; 0 accepts cold starts."""


class InferenceEndpointArgs(TypedDict):
    """Names, the model and capacity are plain values: they decide resource names and are
    checked before anything is created. Everything else may be an output."""

    endpoint_name: str
    """The SageMaker endpoint's name (at most 63 characters); the model's config is named
    after it too."""
    region: str
    """The AWS region of the endpoint (its ARN, and the rollout's API calls)."""
    model_archive: NotRequired[str]
    """A model archive to upload and serve (`python -m model.package` builds one): its path,
    relative to the program's directory. Exactly one of `model_archive` and `model_version`."""
    model_version: NotRequired[str]
    """A model version the artifact bucket already holds (an earlier deployment uploaded
    it): served without its archive file, once its metadata is read from the bucket."""
    image_uri: pulumi.Input[str]
    """The serving image SageMaker pulls, an ECR image (`serving/Dockerfile`), best pinned
    by digest."""
    image_repository_arn: pulumi.Input[str]
    """Its ECR repository: the only one the execution role may pull from."""
    serverless: NotRequired[ServerlessCapacity]
    """The endpoint's capacity (each value left out: its default)."""
    log_retention_days: NotRequired[pulumi.Input[int]]
    """How long the endpoint's logs are kept, in days (by default `DEFAULT_LOG_RETENTION_DAYS`)."""
    rollout_timeout_seconds: NotRequired[pulumi.Input[int]]
    """How long a create or update of the endpoint may take before the deployment fails
    (by default `ROLLOUT_TIMEOUT_SECONDS`); SageMaker carries on, and the next deployment
    waits for it again."""
    aws_session: NotRequired[AwsSessionSettings]
    """How the rollout reaches AWS: as the AWS provider does (left out: the default
    credential chain)."""
    tags: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Tags of every resource that takes them."""


class InferenceEndpoint(pulumi.ComponentResource):
    """A model version served by a SageMaker Serverless endpoint running the serving image:
    its archive kept in the artifact bucket (the model registry), the model and its config
    named by its content version, and the endpoint rolled out to them."""

    model_version: str
    """The served model's content version, from its metadata."""
    weights: pulumi.Output[str]
    """The weights its metadata records (`random`: an untrained model)."""
    labels: pulumi.Output[Sequence[str]]
    """Its class labels, in the model's output order."""
    endpoint_name: pulumi.Output[str]
    """The endpoint, once rolled out to this model."""
    endpoint_arn: pulumi.Output[str]
    """What a caller's role is allowed to invoke (`sagemaker:InvokeEndpoint`)."""
    endpoint_config_name: pulumi.Output[str]
    """The endpoint configuration it runs."""
    model_name: pulumi.Output[str]
    """The SageMaker model of this version."""
    artifact_bucket: pulumi.Output[str]
    """The bucket holding the model archives (the registry)."""
    log_group: pulumi.Output[str]
    """The endpoint's log group, `/aws/sagemaker/Endpoints/<endpoint>`."""

    def __init__(
        self,
        name: str,
        args: InferenceEndpointArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        artifacts: ArtifactBucket | None = None,
    ) -> None:
        """`artifacts`: another endpoint's artifact bucket to share (its `artifacts`), in a
        Python program; None: this endpoint creates its own. (Python objects, not inputs:
        the uploads wait for the bucket's whole configuration.)"""
        served = _served_model(args)
        serverless = ServerlessConfig(**args.get("serverless", ServerlessCapacity()))
        if isinstance(served, ModelArchive):
            # Before anything exists (for a version from the bucket, once it is read).
            check_model_memory(
                served.version, serverless.memory_mb, served.memory_mb_min, self.memory_setting()
            )
        super().__init__(TYPE, name, None, opts)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        # Not a class annotation: the schema has no place for a Python object.
        self.artifacts: ArtifactBucket = (
            artifacts if artifacts is not None else self._artifact_bucket(name, args)
        )
        key: pulumi.Input[str]
        data_key: pulumi.Input[str]
        if isinstance(served, ModelArchive):
            key, data_key = self._upload(name, served, args.get("tags"))
        else:
            key = data_key = self._registered(served, serverless.memory_mb)
        object_arn = pulumi.Output.concat(self.artifacts.arn, "/", key)
        execution = self._execution_role(name, args, object_arn, account)
        model, config = self._model_and_config(
            name, args, served.version, serverless, execution, data_key
        )
        rollout = self._rollout(name, args, execution, config)

        self.endpoint_name = rollout.endpoint_name
        # SageMaker ARNs carry the name in lower case.
        self.endpoint_arn = pulumi.Output.format(
            "arn:{0}:sagemaker:{1}:{2}:endpoint/{3}",
            partition,
            args["region"],
            account,
            args["endpoint_name"].lower(),
        )
        self.endpoint_config_name = rollout.endpoint_config_name
        self.model_name = model.name
        self.artifact_bucket = self.artifacts.name
        self.model_version = served.version
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

    def memory_setting(self) -> Sequence[str]:
        """What sets `serverless.memory_mb`, as a memory error names it, the one in effect
        first: the input itself. A program that sets it from elsewhere (the stack: its
        config keys) overrides this to name that."""
        return (MEMORY_INPUT,)

    def _artifact_bucket(self, name: str, args: InferenceEndpointArgs) -> ArtifactBucket:
        """The endpoint's own archive bucket, when it is given none to share."""
        child = pulumi.ResourceOptions(parent=self)
        bucket = PrivateBucket(
            f"{name}-artifacts",
            # Holds only archives the stack uploads (and can upload again).
            PrivateBucketArgs(force_destroy=True, tags=args.get("tags")),
            opts=child,
        )
        tls_only_bucket_policy(f"{name}-artifacts-policy", bucket, opts=child)
        return ArtifactBucket(name=bucket.name, arn=bucket.arn, resource=bucket)

    def _execution_role(
        self,
        name: str,
        args: InferenceEndpointArgs,
        object_arn: pulumi.Output[str],
        account: pulumi.Output[str],
    ) -> ServiceRole:
        """SageMaker's role: read the one archive, pull the image, write its logs and
        endpoint metrics."""
        return service_role(
            self,
            ServiceRoleNames(
                log_group=f"{name}-logs",
                role=f"{name}-execution",
                policy=f"{name}-execution-policy",
            ),
            service="sagemaker.amazonaws.com",
            logs=ServiceLogs(
                f"/aws/sagemaker/Endpoints/{args['endpoint_name']}",
                args.get("log_retention_days", DEFAULT_LOG_RETENTION_DAYS),
                extra_actions=("logs:DescribeLogStreams",),
            ),
            statements=pulumi.Output.all(object_arn, args["image_repository_arn"]).apply(
                lambda arns: [
                    {
                        "Sid": "ReadTheModelArchive",
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": arns[0],
                    },
                    *image_pull_statements(arns[1]),
                    {
                        # In AWS's minimum policy for a CreateModel execution role.
                        # PutMetricData has no resource-level permissions; the condition
                        # keeps it to SageMaker's namespace for endpoint container metrics.
                        "Sid": "PublishEndpointMetrics",
                        "Effect": "Allow",
                        "Action": "cloudwatch:PutMetricData",
                        "Resource": "*",
                        "Condition": {
                            "StringEquals": {"cloudwatch:namespace": ENDPOINT_METRICS_NAMESPACE}
                        },
                    },
                ]
            ),
            source_account=account,
            tags=args.get("tags"),
        )

    def _model_and_config(
        self,
        name: str,
        args: InferenceEndpointArgs,
        version: str,
        serverless: ServerlessConfig,
        execution: ServiceRole,
        data_key: pulumi.Input[str],
    ) -> tuple[aws.sagemaker.Model, aws.sagemaker.EndpointConfiguration]:
        # Configs and models are retained by Pulumi: after a failed rollout the previous
        # ones still serve, and Pulumi would delete them on its next run. EndpointRollout
        # retires them once nothing uses them. Their names are unique per creation, so
        # rolling back to a version whose config still exists creates a fresh one.
        retained = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        versioned_tags = pulumi.Output.from_input(args.get("tags") or {}).apply(
            lambda tags: {
                **tags,
                "model-version": version,
                # How EndpointRollout finds what a failed rollout left behind.
                ENDPOINT_TAG: args["endpoint_name"],
            }
        )
        model = aws.sagemaker.Model(
            f"{name}-model",
            execution_role_arn=execution.role.arn,
            # The serving image needs no environment: `serving.serve` reads the model from
            # /opt/ml/model and the port from SAGEMAKER_BIND_TO_PORT, as SageMaker sets them.
            primary_container={
                "image": args["image_uri"],
                "model_data_url": pulumi.Output.concat("s3://", self.artifacts.name, "/", data_key),
            },
            tags=versioned_tags,
            opts=pulumi.ResourceOptions.merge(
                retained, pulumi.ResourceOptions(depends_on=[execution.policy])
            ),
        )
        serverless_config: _VariantServerless = {
            "memory_size_in_mb": serverless.memory_mb,
            "max_concurrency": serverless.max_concurrency,
        }
        if serverless.provisioned_concurrency:
            serverless_config["provisioned_concurrency"] = serverless.provisioned_concurrency
        config_name_prefix = _config_name_prefix(args["endpoint_name"])
        config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            name_prefix=f"{config_name_prefix}{version_slug(version)}-",
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
        return model, config

    def _rollout(
        self,
        name: str,
        args: InferenceEndpointArgs,
        execution: ServiceRole,
        config: aws.sagemaker.EndpointConfiguration,
    ) -> EndpointRollout:
        """The endpoint itself, rolled out to `config`, and what deletes it on destroy."""
        config_name_prefix = _config_name_prefix(args["endpoint_name"])
        session = provider_session(
            self, args.get("aws_session", AwsSessionSettings()), args["region"]
        )
        timeout = args.get("rollout_timeout_seconds", ROLLOUT_TIMEOUT_SECONDS)
        # Exists before the first rollout attempt: a create that fails never reaches the
        # state, and this is what still deletes its endpoint on destroy. Deleted after
        # the rollout, before the bucket and the role policy.
        cleanup = EndpointCleanup(
            f"{name}-endpoint-cleanup",
            EndpointCleanupArgs(
                endpoint_name=args["endpoint_name"],
                config_name_prefix=config_name_prefix,
                region=args["region"],
                aws=session,
                timeout_seconds=timeout,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.artifacts.resource, execution.log_group, execution.policy],
            ),
        )
        rollout = EndpointRollout(
            f"{name}-endpoint",
            EndpointRolloutArgs(
                endpoint_name=args["endpoint_name"],
                endpoint_config_name=config.name,
                config_name_prefix=config_name_prefix,
                region=args["region"],
                aws=session,
                timeout_seconds=timeout,
                tags=args.get("tags"),
            ),
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[execution.log_group, execution.policy, cleanup]
            ),
        )
        return rollout

    def _upload(
        self, name: str, archive: ModelArchive, tags: pulumi.Input[Mapping[str, str]] | None
    ) -> tuple[str, pulumi.Output[str]]:
        """Upload the archive and its sidecar: the key, and the key once uploaded."""
        key = archive_key(archive.slug)
        # Both are retained, and the archive is never deleted by EndpointRollout either:
        # they are the registry a rollback serves from. (Pulumi's delete of an object in a
        # versioned bucket would also remove every version of its key: after a failed
        # rollout, a rollback re-uploads the old key and would then delete it as the
        # pending replaced object, under the endpoint that serves it.) Destroy still
        # empties the bucket (force_destroy).
        kept = pulumi.ResourceOptions(
            parent=self, depends_on=[self.artifacts.resource], retain_on_delete=True
        )
        artifact = aws.s3.BucketObjectv2(
            f"{name}-model-archive",
            bucket=self.artifacts.name,
            key=key,
            source=pulumi.FileAsset(str(archive.path)),
            content_type="application/gzip",
            tags=tags,
            opts=kept,
        )
        aws.s3.BucketObjectv2(
            f"{name}-model-metadata",
            bucket=self.artifacts.name,
            key=metadata_key(archive.slug),
            content=archive.metadata_json,
            # A text type: the S3 object data source returns the body of text objects only.
            content_type="application/json",
            tags=tags,
            opts=kept,
        )
        self.weights = pulumi.Output.from_input(archive.weights)
        self.labels = pulumi.Output.from_input(list(archive.labels))
        return key, artifact.key

    def _registered(self, model: RegistryVersion, memory_mb: int) -> pulumi.Output[str]:
        """The archive key of a version the bucket already holds, once its archive and
        sidecar are found (else a `ModelArchiveError` that says how to list the versions)
        and the memory the sidecar records fits (else a `ModelMemoryError`), with the
        weights and labels it records."""
        invoke = pulumi.InvokeOutputOptions(parent=self)
        listing = aws.s3.get_objects_output(
            bucket=self.artifacts.name, prefix=f"{KEY_PREFIX}{model.slug}/", opts=invoke
        )
        key = pulumi.Output.all(self.artifacts.name, listing.keys).apply(
            lambda found: _registered_key(model, found[0], found[1] or [])
        )
        sidecar = aws.s3.get_object_output(
            bucket=self.artifacts.name,
            key=key.apply(lambda _: metadata_key(model.slug)),
            opts=invoke,
        )
        metadata = pulumi.Output.all(self.artifacts.name, sidecar.body).apply(
            lambda found: _sidecar(model, found[0], found[1])
        )
        self.weights = metadata.apply(lambda meta: str(meta["weights"]))
        self.labels = pulumi.Output.all(self.artifacts.name, metadata).apply(
            lambda found: list(
                metadata_labels(found[1], f"s3://{found[0]}/{metadata_key(model.slug)}")
            )
        )
        fits = metadata.apply(
            lambda meta: check_model_memory(
                model.version, memory_mb, meta["memory_mb_min"], self.memory_setting()
            )
        )
        # The model and its config take the key only once the memory fits: a version the
        # endpoint cannot hold is refused before either exists (in preview too).
        return pulumi.Output.all(key, fits).apply(lambda found: found[0])


def _served_model(args: InferenceEndpointArgs) -> ModelArchive | RegistryVersion:
    """The archive to upload (read, so checked, now) or the version to find in the bucket."""
    archive, version = args.get("model_archive"), args.get("model_version")
    if (archive is None) == (version is None):
        raise ModelArchiveError(
            "InferenceEndpoint: set exactly one of model_archive (a model.tar.gz to upload) "
            "and model_version (a version the artifact bucket holds)"
        )
    if archive is not None:
        return read_model_archive(Path(archive))
    return RegistryVersion(str(version))


def _registered_key(model: RegistryVersion, bucket: str, keys: Sequence[str]) -> str:
    """The version's archive key, or the error that says it is not in the registry."""
    missing = [
        what for what in (archive_key(model.slug), metadata_key(model.slug)) if what not in keys
    ]
    if missing:
        raise ModelArchiveError(
            f"model version {model.version} is not in this stack's registry: "
            f"s3://{bucket} has no {' and no '.join(missing)}. The versions it can serve: "
            f"`python -m admin.registry list --bucket {bucket}`; or deploy the version from "
            "its archive file (model, or archive in a variant)"
        )
    return archive_key(model.slug)


def _sidecar(model: RegistryVersion, bucket: str, body: str | None) -> dict[str, Any]:
    """The version's `metadata.json` from the bucket, checked to be that version's."""
    where = f"s3://{bucket}/{metadata_key(model.slug)}"
    try:
        metadata = json.loads(body or "")
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("weights"), str):
        raise ModelArchiveError(f"{where} is not a model's metadata.json (no weights)")
    if metadata.get("version") != model.version:
        raise ModelArchiveError(
            f"{where} describes version {metadata.get('version')!r}, not {model.version}"
        )
    try:
        return metadata | {"memory_mb_min": memory_mb_min(metadata, where)}
    except ArchiveMetadataError as error:
        raise ModelArchiveError(str(error)) from error


def _config_name_prefix(endpoint_name: str) -> str:
    # AWS appends a 26-character unique suffix to the config's name; names stop at 63.
    return f"{endpoint_name[:20]}-"
