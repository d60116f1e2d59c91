"""A SageMaker Batch Transform job of the serving image: its model, request, status, stop.

A transform job runs a SageMaker *model* (image, archive, role), so each registry version
gets one, created on first use and named by a hash of the three
(`<prefix>-bt-<version>-<hash>`, kept: a model costs nothing). The job is
`<prefix>-<UTC time>`; both names start with the stack's prefix, which is what the
operator's policy (docs/operator-policy-transform.json) allows.

The request (`job_request`): one image per request (`SingleRecord`, no split), the
images a manifest lists (`ManifestFile`), one content type for the job (an image's own
when they all share one, else `application/x-image`, which the handler sniffs),
`MaxPayloadInMB` from `--max-image-bytes`, and as many requests at once per instance
as the container says (`GET /execution-parameters`, `serving.batch_transform`). Each
output is `<output path><name>.out`: the model's JSON, or the API's error object for an
image it refused (the container answers 200 for those, so a bad file never fails the
job).

AWS's refusals become one sentence naming the flag to change (`TransformError`):
an instance type the account has no quota for (`ResourceLimitExceeded`), a role SageMaker
cannot assume, a name or type it does not accept (`ValidationException`), permissions.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import botocore.session
from botocore.exceptions import BotoCoreError, ClientError

from batch.runner import LOCAL_BUDGET_SECONDS

DEFAULT_INSTANCE_TYPE = "ml.c5.xlarge"
"""4 vCPUs, 8 GiB: the int8 model runs a request per CPU (docs/cost.md has the rates)."""
GENERIC_CONTENT_TYPE = "application/x-image"
"""A job's content type when its images are of several formats: the handler sniffs them."""
INVOCATION_RETRIES = 3
"""SageMaker's own retries of a request that failed (a 5xx, a timeout), then the job fails."""
IN_PROGRESS, COMPLETED, FAILED, STOPPING, STOPPED = (
    "InProgress",
    "Completed",
    "Failed",
    "Stopping",
    "Stopped",
)
ENDED = frozenset({COMPLETED, FAILED, STOPPED})
NAME_LIMIT = 63
OPERATOR_POLICY = "docs/operator-policy-transform.json"


class TransformError(Exception):
    """SageMaker refused or failed; the message is one sentence, naming a flag to change."""


class TransformRefused(TransformError):
    """SageMaker refused what was asked (an instance type, a quota, the role): bad usage."""


@cache
def instance_types() -> tuple[str, ...]:
    """The instance types Batch Transform takes, from botocore's own service model."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return tuple(model.shape_for("TransformInstanceType").enum)


def instance_type_problem(instance_type: str) -> str | None:
    if instance_type in instance_types():
        return None
    near = [t for t in instance_types() if t.split(".")[1] == instance_type.split(".")[-1]]
    examples = ", ".join(near[:4] or ["ml.c5.xlarge", "ml.m5.xlarge", "ml.c6i.xlarge"])
    return f"--instance-type {instance_type}: not a Batch Transform instance type (e.g. {examples})"


def model_name(prefix: str, slug: str, image: str, data_url: str, role_arn: str) -> str:
    """The SageMaker model of `data_url` served by `image` as `role_arn`."""
    digest = hashlib.sha256(f"{image}\n{data_url}\n{role_arn}".encode()).hexdigest()[:8]
    suffix = f"-bt-{slug}-{digest}"
    return prefix[: NAME_LIMIT - len(suffix)].rstrip("-") + suffix


def job_name(prefix: str, now: datetime) -> str:
    suffix = now.astimezone(UTC).strftime("-%Y%m%d-%H%M%S")
    return prefix[: NAME_LIMIT - len(suffix)].rstrip("-") + suffix


def payload_mb(max_image_bytes: int) -> int:
    """`MaxPayloadInMB` that takes every image of at most `max_image_bytes` (MiB, as the
    container reads it: `serving.batch_transform`)."""
    return max(1, math.ceil(max_image_bytes / 2**20))


@dataclass(frozen=True)
class JobSpec:
    name: str
    model: str
    manifest_uri: str
    output_uri: str
    content_type: str
    instance_type: str = DEFAULT_INSTANCE_TYPE
    instances: int = 1
    max_image_bytes: int = 0


def job_request(spec: JobSpec) -> dict[str, Any]:
    """`CreateTransformJob`'s parameters (module docstring)."""
    return {
        "TransformJobName": spec.name,
        "ModelName": spec.model,
        "BatchStrategy": "SingleRecord",
        "MaxPayloadInMB": payload_mb(spec.max_image_bytes),
        "ModelClientConfig": {
            "InvocationsTimeoutInSeconds": int(LOCAL_BUDGET_SECONDS),
            "InvocationsMaxRetries": INVOCATION_RETRIES,
        },
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": spec.manifest_uri}
            },
            "ContentType": spec.content_type,
            "CompressionType": "None",
            "SplitType": "None",
        },
        "TransformOutput": {
            "S3OutputPath": spec.output_uri,
            "Accept": "application/json",
            "AssembleWith": "None",
        },
        "TransformResources": {"InstanceType": spec.instance_type, "InstanceCount": spec.instances},
    }


@dataclass(frozen=True)
class JobStatus:
    """What `DescribeTransformJob` says of a job, as the command needs it."""

    name: str
    status: str
    failure_reason: str | None
    manifest_uri: str
    output_uri: str
    instance_type: str
    instances: int
    created: datetime
    started: datetime | None
    ended: datetime | None

    @property
    def ended_already(self) -> bool:
        return self.status in ENDED

    def seconds(self, now: datetime) -> float:
        """How long it has transformed (or did): from its start, else its creation."""
        start = self.started or self.created
        return max(0.0, ((self.ended or now) - start).total_seconds())


class TransformJobs:
    """The SageMaker calls of a transform: its model, the job, its status, its stop."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def ensure_model(self, name: str, image: str, data_url: str, role_arn: str) -> None:
        """Create model `name` unless it exists (its name says what it is made of)."""
        try:
            self.client.describe_model(ModelName=name)
            return
        except ClientError as error:
            if not _not_found(error):
                raise _explained(error, "DescribeModel") from None
        except BotoCoreError as error:
            raise TransformError(f"SageMaker DescribeModel: {error}") from None
        request = {
            "ModelName": name,
            "ExecutionRoleArn": role_arn,
            "PrimaryContainer": {"Image": image, "ModelDataUrl": data_url},
        }
        with _explaining("CreateModel", request):
            self.client.create_model(**request)

    def create(self, spec: JobSpec) -> None:
        request = job_request(spec)
        with _explaining("CreateTransformJob", request):
            self.client.create_transform_job(**request)

    def describe(self, name: str) -> JobStatus:
        with _explaining("DescribeTransformJob"):
            answer = self.client.describe_transform_job(TransformJobName=name)
        resources = answer.get("TransformResources") or {}
        source = answer["TransformInput"]["DataSource"]["S3DataSource"]
        return JobStatus(
            name=answer["TransformJobName"],
            status=answer["TransformJobStatus"],
            failure_reason=answer.get("FailureReason") or None,
            manifest_uri=source["S3Uri"],
            output_uri=answer["TransformOutput"]["S3OutputPath"],
            instance_type=resources.get("InstanceType", "?"),
            instances=int(resources.get("InstanceCount", 0)),
            created=answer["CreationTime"],
            started=answer.get("TransformStartTime"),
            ended=answer.get("TransformEndTime"),
        )

    def stop(self, name: str) -> None:
        with _explaining("StopTransformJob"):
            self.client.stop_transform_job(TransformJobName=name)

    def in_progress(self, prefix: str) -> list[str]:
        """The names of the jobs named like the stack's that are running."""
        names: list[str] = []
        request = {"NameContains": prefix, "StatusEquals": IN_PROGRESS, "MaxResults": 100}
        while True:
            with _explaining("ListTransformJobs"):
                page = self.client.list_transform_jobs(**request)
            names += [
                job["TransformJobName"]
                for job in page.get("TransformJobSummaries", [])
                if job["TransformJobName"].startswith(prefix)
            ]
            if not page.get("NextToken"):
                return names
            request["NextToken"] = page["NextToken"]


@contextmanager
def _explaining(operation: str, request: dict[str, Any] | None = None) -> Iterator[None]:
    """AWS's errors of `operation` as `TransformError`s (`_explained`)."""
    try:
        yield
    except ClientError as error:
        raise _explained(error, operation, request) from None
    except BotoCoreError as error:
        raise TransformError(f"SageMaker {operation}: {error}") from None


def _not_found(error: ClientError) -> bool:
    said = error.response.get("Error", {})
    return said.get("Code") == "ValidationException" and "not find" in said.get("Message", "")


def _explained(
    error: ClientError, operation: str, request: dict[str, Any] | None = None
) -> TransformError:
    """One sentence for AWS's refusal of `operation`, naming what to change."""
    said = error.response.get("Error", {})
    code, message = str(said.get("Code", "Unknown")), str(said.get("Message", ""))
    request = request or {}
    resources = request.get("TransformResources") or {}
    instance_type, count = resources.get("InstanceType"), resources.get("InstanceCount")
    if code == "ResourceLimitExceeded" and instance_type:
        return TransformRefused(
            f"--instance-type {instance_type} --instances {count}: more than this account may "
            f"run for transform jobs (Service Quotas, SageMaker, '{instance_type} for "
            "transform job usage'); ask for more there, or choose another --instance-type or "
            f"fewer --instances. SageMaker said: {message}"
        )
    if code == "ValidationException" and instance_type and "instance" in message.lower():
        return TransformRefused(
            f"--instance-type {instance_type}: SageMaker does not take it for transform jobs "
            f"here ({message}); choose another --instance-type"
        )
    if code == "ValidationException" and "role" in message.lower():
        return TransformRefused(
            f"the transform role {request.get('ExecutionRoleArn', '')} (stack output "
            f"transform_role_arn) cannot be used: {message}; run pulumi up with batch on, "
            "and pass --stack-outputs with the stack's current outputs"
        )
    if code in ("AccessDeniedException", "AccessDenied"):
        return TransformError(
            f"SageMaker {operation}: not allowed ({message}); your credentials need "
            f"{OPERATOR_POLICY}"
        )
    return TransformError(f"SageMaker {operation}: {code}: {message}")
