"""A stand-in for SageMaker's control plane on loopback, whose transform jobs do what Batch
Transform does, over moto server's S3, with the real serving image's server.

It answers the SageMaker JSON protocol (`X-Amz-Target: SageMaker.<Operation>`) for the
calls `batch.transform_job` makes, so `python -m batch run ... --on sagemaker` runs
unchanged with `AWS_ENDPOINT_URL_SAGEMAKER` pointing here. A job:

- downloads its model's `ModelDataUrl` from S3 and starts `python -m serving.serve` on it
  (`machine.model_server.ModelServer`) with the environment SageMaker gives a transform's
  container: `SAGEMAKER_BATCH=true`, `SAGEMAKER_MAX_PAYLOAD_IN_MB`,
  `SAGEMAKER_BATCH_STRATEGY=SINGLE_RECORD`, and `SAGEMAKER_MAX_CONCURRENT_TRANSFORMS`
  when the job sets it (else it asks `GET /execution-parameters`, as SageMaker does);
- for each manifest entry: GET the object, POST it to `/invocations` with the job's
  content type and accept, PUT the answer to `<S3OutputPath><entry>.out`; a non-2xx answer
  (or a record over `MaxPayloadInMB`) fails the job, as SageMaker fails it;
- is `InProgress`, then `Completed`, `Failed`, or after `StopTransformJob`, `Stopping` and
  `Stopped` (records in flight finish).

`delay` slows each record down, so that a test can signal the command mid-job.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from machine.model_server import ModelServer
from tests.batch.support import QuietHandler, loopback_server

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Job:
    request: dict[str, Any]
    status: str = "InProgress"
    failure: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict[str, Any]:
        answer = {
            **self.request,
            "TransformJobArn": f"{ARN}:transform-job/{self.request['TransformJobName'].lower()}",
            "TransformJobStatus": self.status,
            "CreationTime": self.created,
        }
        answer.pop("Tags", None)
        for name, value in (
            ("FailureReason", self.failure),
            ("TransformStartTime", self.started),
            ("TransformEndTime", self.ended),
        ):
            if value is not None:
                answer[name] = value
        return answer


@dataclass
class StandIn:
    """The control plane's state, and what tests may tune."""

    moto_url: str
    url: str = ""
    delay: float = 0.0
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.moto_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(operation)
        return getattr(self, f"_{operation}")(request)

    def _DescribeModel(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["ModelName"]
        if name not in self.models:
            raise Refused("ValidationException", f'Could not find model "{ARN}:model/{name}".')
        return {**self.models[name], "ModelArn": f"{ARN}:model/{name}", "CreationTime": 0}

    def _CreateModel(self, request: dict[str, Any]) -> dict[str, Any]:
        self.models[request["ModelName"]] = request
        return {"ModelArn": f"{ARN}:model/{request['ModelName']}"}

    def _CreateTransformJob(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["TransformJobName"]
        if request["ModelName"] not in self.models:
            raise Refused("ValidationException", f"Could not find model {request['ModelName']}")
        job = self.jobs[name] = Job(request)
        thread = threading.Thread(target=self._transform, args=(job,), daemon=True)
        self.threads.append(thread)
        thread.start()
        return {"TransformJobArn": f"{ARN}:transform-job/{name}"}

    def _DescribeTransformJob(self, request: dict[str, Any]) -> dict[str, Any]:
        name = request["TransformJobName"]
        if name not in self.jobs:
            raise Refused("ValidationException", f"Could not find job to update with name {name}")
        return self.jobs[name].describe()

    def _StopTransformJob(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self.jobs[request["TransformJobName"]]
        if job.status == "InProgress":
            job.status = "Stopping"
            job.stop.set()
        return {}

    def _ListTransformJobs(self, request: dict[str, Any]) -> dict[str, Any]:
        found = [
            {
                "TransformJobName": name,
                "TransformJobArn": f"{ARN}:transform-job/{name}",
                "TransformJobStatus": job.status,
                "CreationTime": job.created,
            }
            for name, job in self.jobs.items()
            if request.get("NameContains", "") in name
            and request.get("StatusEquals", job.status) == job.status
        ]
        return {"TransformJobSummaries": found}

    # -- the transform itself -------------------------------------------------------------

    def _transform(self, job: Job) -> None:
        job.started = time.time()
        try:
            self._run(job)
        except Exception as error:  # the job's failure, as SageMaker reports one
            job.failure = f"ClientError: {error}"
            job.status = "Failed"
        else:
            job.status = "Stopped" if job.stop.is_set() else "Completed"
        job.ended = time.time()

    def _run(self, job: Job) -> None:
        request, s3 = job.request, self.s3()
        model = self.models[request["ModelName"]]["PrimaryContainer"]
        with tempfile.TemporaryDirectory() as scratch:
            archive = Path(scratch) / "model.tar.gz"
            bucket, key = _split(model["ModelDataUrl"])
            s3.download_file(bucket, key, str(archive))
            environment = {
                "SAGEMAKER_BATCH": "true",
                "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(request["MaxPayloadInMB"]),
                "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
            }
            if request.get("MaxConcurrentTransforms"):
                environment["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(
                    request["MaxConcurrentTransforms"]
                )
            server = ModelServer(archive, environment=environment)
            with (Path(scratch) / "server.log").open("wb") as log:
                server.start(output=log)
                try:
                    self._records(job, s3, server.url)
                finally:
                    server.stop()

    def _records(self, job: Job, s3: Any, url: str) -> None:
        request = job.request
        parameters = json.loads(_get(f"{url}/execution-parameters"))
        concurrency = (
            request.get("MaxConcurrentTransforms") or parameters["MaxConcurrentTransforms"]
        )
        source = request["TransformInput"]["DataSource"]["S3DataSource"]
        bucket, key = _split(source["S3Uri"])
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        prefix, names = manifest[0]["prefix"], manifest[1:]
        out_bucket, out_prefix = _split(request["TransformOutput"]["S3OutputPath"])
        limit = request["MaxPayloadInMB"] * 2**20

        def one(name: str) -> None:
            if job.stop.is_set():
                return
            time.sleep(self.delay)
            in_bucket, in_key = _split(prefix + name)
            body = s3.get_object(Bucket=in_bucket, Key=in_key)["Body"].read()
            if len(body) > limit:
                raise RuntimeError(f"{prefix}{name}: larger than MaxPayloadInMB")
            answer = _post(
                f"{url}/invocations",
                body,
                request["TransformInput"]["ContentType"],
                request["TransformOutput"]["Accept"],
            )
            s3.put_object(Bucket=out_bucket, Key=f"{out_prefix}{name}.out", Body=answer)

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for future in [pool.submit(one, name) for name in names]:
                future.result()


def _split(uri: str) -> tuple[str, str]:
    bucket, _slash, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def _post(url: str, body: bytes, content_type: str, accept: str) -> bytes:
    call = urllib.request.Request(
        url, data=body, headers={"Content-Type": content_type, "Accept": accept}, method="POST"
    )
    try:
        with urllib.request.urlopen(call, timeout=60) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"the model answered {error.code}: {error.read()[:200]!r}") from None


@contextmanager
def control_plane(moto_url: str, **options: Any) -> Iterator[StandIn]:
    """The stand-in on a free loopback port, until the block ends (its jobs' threads
    joined: no model server outlives a test)."""
    plane = StandIn(moto_url, **options)

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            operation = self.headers.get("X-Amz-Target", "").removeprefix("SageMaker.")
            request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            try:
                self._answer(200, plane.call(operation, request))
            except Refused as refused:
                self._answer(400, {"__type": refused.code, "message": str(refused)})

        def _answer(self, status: int, document: dict[str, Any]) -> None:
            self.send(status, json.dumps(document).encode(), "application/x-amz-json-1.1")

    with loopback_server(Handler) as url:
        plane.url = url
        try:
            yield plane
        finally:
            for job in plane.jobs.values():
                job.stop.set()
            for thread in plane.threads:
                thread.join(120)
