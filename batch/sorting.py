"""A transform job's outputs, sorted into `results/`, `review/` and `failed/`.

Each output `<name>.out` is what the container answered for one image: the model's JSON,
or under Batch Transform the API's error object of an image it refused
(`serving.batch_transform`). It becomes exactly the outcome file `python -m batch run DIR`
writes for the same image, by the same code: the answer's checks and `needs_review`
(`proxy.responses.prediction_body`), a refusal read as the API reads a model's 4xx
(`proxy.sagemaker.classify` of the `ModelError` a real-time endpoint would have sent),
then `pipeline.tasks.classified` and `record_failure`. Two fields differ by nature:
`classified_at` (and `failed_at`) is when the job wrote the output (its `LastModified`),
and `latency_ms` is null, Batch Transform timing no single image.

Sorting is idempotent: an image whose outcome is already there for its bytes (sorted
before, or decided by a person since) is left as it is, as a run over a folder leaves it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from batch.manifest import Image, S3Folder, each
from batch.runner import Pass, Progress
from pipeline.storage import Blob
from pipeline.tasks import (
    TaskError,
    caught,
    classified,
    record_classified,
    record_failure,
    task_error,
)
from proxy.responses import ApiError, prediction_body
from proxy.sagemaker import classify as failed_call

OUTPUT_SUFFIX = ".out"
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class OutputMissing(Exception):
    """The job wrote no output for the image (yet): it stays pending."""


def output_key(outputs: S3Folder, name: str) -> str:
    """Where the job writes the output of image `name` (its key under the manifest's
    prefix), as Batch Transform names it."""
    return f"{outputs.prefix}{name}{OUTPUT_SUFFIX}"


def answer(payload: bytes, threshold: float) -> dict[str, Any]:
    """The API's 200 body for an output, or the `TaskError` its refusal or nonsense is."""
    refusal = _refusal(payload)
    try:
        if refusal is not None:
            raise refusal
        return prediction_body(payload, threshold)
    except ApiError as error:
        raise task_error(error) from None


def _refusal(payload: bytes) -> ApiError | None:
    """The API's error for `{"error": {"code", "message", "status"}}`, as the proxy reads
    the same refusal from a real-time endpoint (`ModelError` with the handler's body)."""
    try:
        document = json.loads(payload)
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict) or "predictions" in document:
        return None
    status = error.get("status")
    handler_body = json.dumps(
        {"error": {"code": error.get("code"), "message": error.get("message")}}
    )
    response = {
        "Error": {"Code": "ModelError", "Message": "Received client error from the model"},
        "OriginalStatusCode": status if isinstance(status, int) else 500,
        "OriginalMessage": handler_body,
    }
    return failed_call(ClientError(response, "InvokeEndpoint")).error


def sort_one(
    image: Image, media_type: str, payload: bytes, written: datetime, threshold: float
) -> dict[str, Any]:
    """Write the outcome of one image's output; the task's output (`outcome`, ...)."""
    at = written.timestamp()
    try:
        body = answer(payload, threshold)
    except TaskError as error:
        return record_failure(image.job, caught(error), clock=lambda: at)
    blob = Blob(None, image.info.size, image.info.etag)
    document = classified(
        image.job, blob, media_type, body, threshold, classified_at=at, latency_ms=None
    )
    return record_classified(image.job, document, None, at)


def read_output(s3: Any, bucket: str, key: str) -> tuple[bytes, datetime]:
    """An output's bytes and when it was written; `OutputMissing`."""
    try:
        answer = s3.get_object(Bucket=bucket, Key=key)
        try:
            return answer["Body"].read(), answer["LastModified"]
        finally:
            answer["Body"].close()
    except ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) in _MISSING:
            raise OutputMissing(key) from None
        raise


def sort_outputs(
    s3: Any,
    todo: list[tuple[Image, str]],
    outputs: S3Folder,
    *,
    threshold: float,
    should_stop: Callable[[], bool],
    progress: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Pass:
    """Sort the outputs of the images `todo` (each with its media type); an image without
    an output stays pending, one whose outcome could not be written is `unrecorded`."""
    done = Pass()
    bar = Progress(len(todo), progress, clock)
    lock = threading.Lock()
    started = clock()

    def one(item: tuple[Image, str]) -> None:
        image, media_type = item
        try:
            payload, written = read_output(s3, outputs.bucket, output_key(outputs, image.job.name))
            output = sort_one(image, media_type, payload, written, threshold)
        except OutputMissing:
            return
        except (TaskError, ClientError, BotoCoreError) as error:
            with lock:
                done.unrecorded.append(f"{image.job.key}: {type(error).__name__}: {error}")
            return
        with lock:
            done.processed[output["outcome"]] += 1
            if output.get("model_version"):
                done.versions[output["model_version"]] += 1
        bar.update(output["outcome"])

    each(todo, one, should_stop=should_stop)
    bar.finish()
    done.stopped = should_stop()
    done.seconds = clock() - started
    return done
