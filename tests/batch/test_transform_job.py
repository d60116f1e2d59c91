"""The transform's SageMaker side against botocore's real service model (`Stubber`: moto
has no StopTransformJob, and its jobs are Completed at once): the request, the status
sequences InProgress -> Completed / Failed / Stopped, and AWS's refusals as one line
naming the flag. S3 is moto in process; the job's outputs are written when it is
created, as a model that is sure of every image would answer."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.stub import ANY, Stubber
from botocore.validate import validate_parameters

from batch import transform
from batch.__main__ import parser
from batch.transform_job import (
    DEFAULT_INSTANCE_TYPE,
    JobSpec,
    instance_types,
    job_name,
    job_request,
    model_name,
    payload_mb,
)
from shared.registry import archive_key, metadata_key
from tests.batch.support import LABELS, VERSION, answer, photo
from tests.pipeline.conftest import REGION

JOB = "image-classifier-dev-20260921-141320"
PREFIX = "image-classifier-dev"
ARTIFACTS = "model-artifacts-0a1b2c"
WORK = "batch-inbox-3d4e5f"
PHOTOS = "photos-of-the-team"
ROLE = "arn:aws:iam::123456789012:role/batch-transform-role-7a8b9c"
IMAGE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{PREFIX}-serving@sha256:" + "ab" * 32
OUTPUTS = {
    "serving_image": IMAGE,
    "transform_role_arn": ROLE,
    "artifact_bucket": ARTIFACTS,
    "batch_bucket": WORK,
    "endpoint_name": PREFIX,
    "model_version": VERSION,
}


SPEC = JobSpec(
    name=JOB,
    model=model_name(PREFIX, VERSION, IMAGE, "s3://a/models/v/model.tar.gz", ROLE),
    manifest_uri=f"s3://{WORK}/transform/{JOB}/manifest.json",
    output_uri=f"s3://{WORK}/transform/{JOB}/out/",
    content_type="image/jpeg",
    max_image_bytes=3 * 2**20,
)


def sagemaker_model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


def test_the_request_is_valid_for_the_service_model_enums_included():
    request = job_request(SPEC)
    shape = sagemaker_model().operation_model("CreateTransformJob").input_shape
    validate_parameters(request, shape)  # raises on any type, range or required field
    members = shape.members
    assert request["BatchStrategy"] in members["BatchStrategy"].enum
    transform_input = members["TransformInput"].members
    assert request["TransformInput"]["SplitType"] in transform_input["SplitType"].enum
    assert request["TransformInput"]["CompressionType"] in transform_input["CompressionType"].enum
    data_type = transform_input["DataSource"].members["S3DataSource"].members["S3DataType"]
    assert request["TransformInput"]["DataSource"]["S3DataSource"]["S3DataType"] == "ManifestFile"
    assert "ManifestFile" in data_type.enum
    assembly = members["TransformOutput"].members["AssembleWith"]
    assert request["TransformOutput"]["AssembleWith"] in assembly.enum
    assert DEFAULT_INSTANCE_TYPE in instance_types()
    assert "MaxConcurrentTransforms" not in request, "the container's /execution-parameters"
    assert request["MaxPayloadInMB"] == 3


@pytest.mark.parametrize(("size", "mb"), [(1, 1), (2**20, 1), (2**20 + 1, 2), (4 * 2**20, 4)])
def test_the_payload_limit_takes_the_largest_image(size, mb):
    assert payload_mb(size) == mb


def test_names_fit_sagemakers_pattern_and_the_operators_policy():
    pattern = (
        sagemaker_model()
        .operation_model("CreateTransformJob")
        .input_shape.members["TransformJobName"]
    )
    long_prefix = "x" * 40
    for prefix in (PREFIX, long_prefix):
        name = job_name(prefix, datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC))
        model = model_name(prefix, VERSION, IMAGE, "s3://a/k", ROLE)
        for made in (name, model):
            assert len(made) <= pattern.metadata["max"]
            assert made.startswith(prefix[:30])
    assert job_name(PREFIX, datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC)) == JOB
    assert model_name(PREFIX, VERSION, IMAGE, "s3://a/k", ROLE) != model_name(
        PREFIX, VERSION, IMAGE.replace("ab", "cd"), "s3://a/k", ROLE
    ), "a new image is a new model"


# -- the command against a stubbed SageMaker --------------------------------------------------


def described(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "TransformJobName": JOB,
        "TransformJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:transform-job/{JOB}",
        "TransformJobStatus": status,
        "ModelName": "m",
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "ManifestFile",
                    "S3Uri": f"s3://{WORK}/transform/{JOB}/manifest.json",
                }
            }
        },
        "TransformOutput": {"S3OutputPath": f"s3://{WORK}/transform/{JOB}/out/"},
        "TransformResources": {"InstanceType": DEFAULT_INSTANCE_TYPE, "InstanceCount": 1},
        "CreationTime": datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC),
        **extra,
    }


class Playing:
    """The stubbed client; creating a job also writes its outputs (`finished` of them)."""

    def __init__(self, stubbed: Any, s3: Any, finished: int | None = None) -> None:
        self.stubbed = stubbed
        self.s3 = s3
        self.finished = finished
        self.requests: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stubbed, name)

    def create_transform_job(self, **request: Any) -> Any:
        answered = self.stubbed.create_transform_job(**request)
        self.requests.append(request)
        manifest = json.loads(
            self.s3.get_object(Bucket=WORK, Key=f"transform/{JOB}/manifest.json")["Body"].read()
        )
        for name in manifest[1:][: self.finished]:
            self.s3.put_object(
                Bucket=WORK, Key=f"transform/{JOB}/out/{name}.out", Body=answer(0.97)
            )
        return answered


@pytest.fixture
def world(s3, tmp_path: Path, monkeypatch):
    for bucket in (ARTIFACTS, WORK, PHOTOS):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=ARTIFACTS, Key=archive_key(VERSION), Body=b"an archive")
    metadata = {"version": VERSION, "labels": LABELS}
    s3.put_object(Bucket=ARTIFACTS, Key=metadata_key(VERSION), Body=json.dumps(metadata))
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        s3.put_object(Bucket=PHOTOS, Key=f"in/{name}", Body=photo())
    s3.put_object(Bucket=PHOTOS, Key="in/notes.txt", Body=b"hello")
    outputs = tmp_path / "dev.json"
    outputs.write_text(json.dumps(OUTPUTS))
    monkeypatch.setattr(transform, "POLL_FIRST_SECONDS", 0.01)
    monkeypatch.setattr(transform, "job_name", lambda _prefix, _now: JOB)
    return outputs


def stubbed_sagemaker() -> tuple[Any, Stubber]:
    client = botocore.session.get_session().create_client("sagemaker", region_name=REGION)
    return client, Stubber(client)


def expect_start(stub: Stubber) -> None:
    stub.add_response(
        "list_transform_jobs",
        {"TransformJobSummaries": []},
        {"NameContains": PREFIX, "StatusEquals": "InProgress", "MaxResults": 100},
    )
    stub.add_client_error(
        "describe_model",
        "ValidationException",
        "Could not find model",
        expected_params={"ModelName": ANY},
    )
    stub.add_response(
        "create_model",
        {"ModelArn": "arn:aws:sagemaker:eu-west-1:123456789012:model/m"},
        {
            "ModelName": ANY,
            "ExecutionRoleArn": ROLE,
            "PrimaryContainer": {
                "Image": IMAGE,
                "ModelDataUrl": f"s3://{ARTIFACTS}/{archive_key(VERSION)}",
            },
        },
    )
    stub.add_response(
        "create_transform_job",
        {"TransformJobArn": described("InProgress")["TransformJobArn"]},
        expected_params={name: ANY for name in job_request(SPEC)},
    )


def run(outputs: Path, s3: Any, sagemaker: Any, *extra: str) -> tuple[int, str]:
    args = parser().parse_args(
        [
            "run",
            f"s3://{PHOTOS}/in/",
            "--out",
            f"s3://{PHOTOS}/out/",
            "--on",
            "sagemaker",
            "--stack-outputs",
            str(outputs),
            "--quiet",
            *extra,
        ]
    )
    stderr = io.StringIO()
    status = transform.run_command(args, stderr, transform.Clients(s3, sagemaker))
    return status, stderr.getvalue()


def test_in_progress_then_completed_sorts_every_output(world, s3):
    client, stub = stubbed_sagemaker()
    expect_start(stub)
    for status in ("InProgress", "InProgress", "InProgress", "Completed", "Completed"):
        stub.add_response("describe_transform_job", described(status), {"TransformJobName": JOB})
    playing = Playing(client, s3)
    with stub:
        status, said = run(world, s3, playing)
        stub.assert_no_pending_responses()
    assert status == 0, said
    (request,) = playing.requests
    assert request["TransformJobName"] == JOB
    assert request["TransformInput"]["ContentType"] == "image/jpeg"
    summary = json.loads(s3.get_object(Bucket=PHOTOS, Key="out/summary.json")["Body"].read())
    assert summary["counts"] == {"results": 3, "review": 0, "failed": 1, "pending": 0}
    assert summary["failed_codes"] == {"not_an_image": 1}
    result = json.loads(s3.get_object(Bucket=PHOTOS, Key="out/results/a.jpg.json")["Body"].read())
    assert result["latency_ms"] is None
    assert result["classified_at"].endswith("Z")


def test_a_failed_job_sorts_what_it_did_and_says_why(world, s3):
    client, stub = stubbed_sagemaker()
    expect_start(stub)
    reason = "ClientError: the model answered 500"
    for status in ("InProgress", "InProgress", "Failed", "Failed"):
        extra = {"FailureReason": reason} if status == "Failed" else {}
        stub.add_response(
            "describe_transform_job", described(status, **extra), {"TransformJobName": JOB}
        )
    with stub:
        status, said = run(world, s3, Playing(client, s3, finished=1))
    assert status == 1
    assert f"transform job {JOB} failed: {reason}" in said
    assert "2 images pending" in said
    assert "run again to resume" in said
    summary = json.loads(s3.get_object(Bucket=PHOTOS, Key="out/summary.json")["Body"].read())
    assert summary["counts"]["pending"] == 2


def test_a_stopped_job_keeps_its_finished_images(world, s3):
    client, stub = stubbed_sagemaker()
    expect_start(stub)
    for status in ("InProgress", "Stopping", "Stopped", "Stopped"):
        stub.add_response("describe_transform_job", described(status), {"TransformJobName": JOB})
    with stub:
        status, said = run(world, s3, Playing(client, s3, finished=2))
    assert status == 1, said
    summary = json.loads(s3.get_object(Bucket=PHOTOS, Key="out/summary.json")["Body"].read())
    assert summary["counts"] == {"results": 2, "review": 0, "failed": 1, "pending": 1}


@pytest.mark.parametrize(
    ("operation", "code", "message", "expected"),
    [
        (
            "create_transform_job",
            "ResourceLimitExceeded",
            "The account-level service limit 'ml.p3.2xlarge for transform job usage' is 0",
            "--instance-type ml.p3.2xlarge --instances 2: more than this account may run",
        ),
        (
            "create_transform_job",
            "ValidationException",
            "The instance type ml.p3.2xlarge is not supported in this region",
            "--instance-type ml.p3.2xlarge: SageMaker does not take it for transform jobs",
        ),
        (
            "create_model",
            "ValidationException",
            f"Could not assume role {ROLE}",
            f"the transform role {ROLE} (stack output transform_role_arn) cannot be used",
        ),
    ],
)
def test_aws_refusals_are_one_line_naming_the_flag(world, s3, operation, code, message, expected):
    client, stub = stubbed_sagemaker()
    stub.add_response("list_transform_jobs", {"TransformJobSummaries": []})
    stub.add_client_error("describe_model", "ValidationException", "Could not find model")
    if operation == "create_model":
        stub.add_client_error("create_model", code, message)
    else:
        stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:eu-west-1:1:model/m"})
        stub.add_client_error("create_transform_job", code, message)
    with stub:
        status, said = run(
            world, s3, client, "--instance-type", "ml.p3.2xlarge", "--instances", "2"
        )
    assert status == 2
    assert said.count("\n") == 2, said  # what it looked at, then the error
    assert said.splitlines()[-1].startswith(f"error: {expected}")
    assert "Traceback" not in said
