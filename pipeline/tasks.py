"""The batch pipeline's task functions: read and check an image, classify it, route it.

The cloud's workflow (EventBridge on `inbox/` objects -> Step Functions -> Lambda) and the
local runner (`python -m batch run`) run these same functions; the Lambda entry points are
in `pipeline.handler`, the state machine in `pipeline.workflow`. What they reuse from the proxy,
so that a batch image is judged exactly as an upload to `POST /api/predict` is:
`proxy.request.parse_upload` (size, format sniffing, the API's error codes),
`proxy.sagemaker.EndpointInvoker` (the time-budgeted retries and the failure classes) and
`proxy.responses.prediction_body` (the answer's checks and `needs_review` against the
threshold, `REVIEW_THRESHOLD`, 0.93 by default: `proxy.config.DEFAULT_REVIEW_THRESHOLD`).

Task contract
=============

**classify** (`pipeline.handler.classify`)

- In: `{"bucket": "B", "key": "inbox/cats/1.jpg"}`, the key as it is; or an EventBridge
  S3 "Object Created" event (`detail.bucket.name`, `detail.object.key`), whose key S3
  form-encodes (`inbox/holiday photo+1.jpg` arrives as `inbox/holiday+photo%2B1.jpg`)
  and which is therefore decoded, unless only the key as sent exists (`event_location`,
  `located_key`). The key must be under `inbox/`; the rest of it is the image's *name*
  (`cats/1.jpg`), which names its outcome.
- Out: `{"bucket", "key", "name", "outcome", "result_key", "request_id", "label",
  "probability", "model_version", "skipped"}`: `outcome` is `"result"` (written to
  `results/<name>.json`) or `"review"` (top-1 probability below the threshold, written
  to `review/<name>.json`; the workflow then notifies the reviewers). An image already
  done (an outcome with the same ETag exists, e.g. a duplicate event) is not classified
  again: `"skipped": true` and its existing outcome, which may be `"failed"` when it was
  refused before (a human review is never overwritten this way). With a prediction store
  (`PREDICTIONS_TABLE`), each classification is recorded there as the proxy records a
  200, variant `batch`, under the outcome's `request_id`.
- Errors, by the name Step Functions matches (`Error`), each with a JSON `errorMessage`
  `{"code", "message", "status"}` (the API's code and sentence):

  - `ImageRefused`: any 4xx of the API (`not_an_image`, `payload_too_large`,
    `unsupported_image_format`, `empty_body`, `corrupt_image`, `image_too_large`,
    `invalid_dimensions`, ...). Not retried: caught, `failed/`.
  - `ModelNotReady`: `model_not_ready` (the serverless endpoint is starting). Retried with
    backoff and jitter, as are the next three.
  - `Throttled`: `model_busy`.
  - `ModelUnavailable`: `model_unavailable`, `model_timeout`.
  - `StorageFailed`: `storage_error` (S3 refused or failed).
  - `EndpointNotFound`: `endpoint_not_found`; `UpstreamError`: `upstream_error`
    (permissions, validation). Retried a little, then `failed/`.
  - `ModelFailed`: `model_error`, `bad_model_response`; `SourceMissing`:
    `source_missing` (the object is gone); `InvalidEvent`: `invalid_request` (no bucket or
    key, or a key outside `inbox/`). Not retried.

  The retry table is `pipeline.workflow.RETRIES`. `failed/` records whether running the
  image again may succeed (`retryable`: false for the three classes not retried and
  `ImageRefused`).

**record_failure** (`pipeline.handler.record_failure`), the Catch of every classify error

- In: the classify input plus `"error": {"Error": "<name>", "Cause": "<Lambda's error
  JSON>"}` (a Catch with `"ResultPath": "$.error"`).
- Out: `{"bucket", "key", "name", "outcome": "failed", "result_key":
  "failed/<name>.json", "request_id", "code", "retryable", "skipped": false}`. An error
  that is not one of the above (a Lambda timeout, a bug) is recorded as `internal_error`,
  its name and cause in `detail`; one that waited out the batch's bound
  (`Lambda.TooManyRequestsException` after `pipeline.workflow.WAIT_FOR_A_SLOT`) as
  `batch_busy` (503, retryable). When the image already has a result or review outcome
  for the same bytes (a duplicate's late failure), that outcome stays and is returned
  with `"skipped": true`.
- Errors: `StorageFailed` (retry), `InvalidEvent`.

Every image thus ends in exactly one of `results/`, `review/`, `failed/` (writing one
outcome deletes the other two), and nothing is lost: a failure is a file too. The outcome
files' format is in `batch/__init__.py`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from pipeline.storage import (
    FAILED,
    INBOX,
    OUTCOME_FOLDERS,
    RESULTS,
    REVIEW,
    Blob,
    ObjectMissing,
    Storage,
    StorageError,
)
from pipeline.workflow import LAMBDA_THROTTLED
from proxy.config import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_REVIEW_THRESHOLD, ProxyConfig
from proxy.logs import append_keys
from proxy.predictions import Prediction, PredictionStore, StoreError, iso_time
from proxy.request import ImageUpload, parse_upload
from proxy.responses import ApiError, prediction_body
from proxy.sagemaker import EndpointInvoker
from shared.api import MAX_PAYLOAD_BYTES

SCHEMA = 1
"""The outcome files' format version."""
VARIANT = "batch"
"""The `variant` of batch predictions in the prediction store (`admin.report` shows it)."""
READ_CAP = MAX_PAYLOAD_BYTES
"""Larger objects are refused without being read: API Gateway's own payload limit, so
the API never sees them either."""
RESULT, REVIEW_OUTCOME, FAILED_OUTCOME, REVIEWED = "result", "review", "failed", "reviewed"
_FOLDER = {RESULT: RESULTS, REVIEW_OUTCOME: REVIEW}
# parse_upload's raw form: the bytes as the body, the format sniffed from them.
_RAW = "application/octet-stream"
_MAX_DETAIL = 1000


class TaskError(Exception):
    """A task failure Step Functions matches by class name; the message is JSON
    `{"code", "message", "status"}` so that `record_failure` can read it back."""

    retryable = True
    """Whether running the image again later may succeed (recorded in `failed/`)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(json.dumps({"code": code, "message": message, "status": status}))
        self.status = status
        self.code = code
        self.message = message


class ImageRefused(TaskError):
    """The image itself was refused (any 4xx of the API)."""

    retryable = False


class ModelNotReady(TaskError):
    """The serverless endpoint is still starting."""


class Throttled(TaskError):
    """SageMaker throttled the calls."""


class ModelUnavailable(TaskError):
    """SageMaker unavailable, unreachable or too slow, after the invoker's own retries."""


class EndpointNotFound(TaskError):
    """The endpoint does not exist (not deployed yet, or deleted)."""


class UpstreamError(TaskError):
    """Any other SageMaker error (permissions, validation): fix, then run again."""


class ModelFailed(TaskError):
    """The model failed on this image (5xx) or answered nonsense."""

    retryable = False


class SourceMissing(TaskError):
    """The image's object is gone."""

    retryable = False


class StorageFailed(TaskError):
    """Reading or writing the bucket (or folder) failed."""


class InvalidEvent(TaskError):
    """The event names no image of the inbox."""

    retryable = False


TASK_ERRORS: tuple[type[TaskError], ...] = (
    ImageRefused,
    ModelNotReady,
    Throttled,
    ModelUnavailable,
    EndpointNotFound,
    UpstreamError,
    ModelFailed,
    SourceMissing,
    StorageFailed,
    InvalidEvent,
)
_BY_NAME = {error.__name__: error for error in TASK_ERRORS}
_BY_CODE: dict[str, type[TaskError]] = {
    "model_not_ready": ModelNotReady,
    "model_busy": Throttled,
    "model_unavailable": ModelUnavailable,
    "model_timeout": ModelUnavailable,
    "endpoint_not_found": EndpointNotFound,
    "upstream_error": UpstreamError,
    "model_error": ModelFailed,
    "bad_model_response": ModelFailed,
}


def task_error(error: ApiError) -> TaskError:
    """The named error of an API error: a 4xx refuses the image, the rest by code."""
    if 400 <= error.status < 500:
        return ImageRefused(error.status, error.code, error.message)
    kind = _BY_CODE.get(error.code, ModelFailed)
    return kind(error.status, error.code, error.message)


def storage_failed(error: StorageError) -> TaskError:
    if isinstance(error, ObjectMissing):
        return SourceMissing(404, "source_missing", f"The image is gone: {error}")
    return StorageFailed(503, "storage_error", str(error))


@dataclass(frozen=True)
class Job:
    """One image: where it is (`source`, `key`), where its outcome goes (`out`, `name`)."""

    source: Storage
    key: str
    out: Storage
    name: str

    @property
    def request_id(self) -> str:
        """Stable for the image's place, so its prediction record is found again."""
        digest = hashlib.sha256(f"{self.source.describe()}\n{self.key}".encode()).hexdigest()
        return f"batch-{digest[:40]}"

    def outcome_key(self, folder: str) -> str:
        return f"{folder}{self.name}.json"


def inbox_job(storage: Storage, key: str) -> Job:
    """The job of an inbox object: outcomes in the same bucket, named without `inbox/`."""
    name = key.removeprefix(INBOX)
    if not key.startswith(INBOX) or not name or name.endswith("/"):
        raise InvalidEvent(400, "invalid_request", f"{key!r} is not an image under {INBOX}")
    return Job(storage, key, storage, name)


def event_location(event: Any) -> tuple[str, tuple[str, ...]]:
    """`(bucket, keys)` of a task event: `{"bucket", "key"}` or an EventBridge S3 event.

    `keys` is the key of `{"bucket", "key"}` as it is. S3 sends an event's key URL-encoded
    as a form value (AWS's Powertools decodes `detail.object.key` with `unquote_plus`), so
    an EventBridge event gives the decoded key first, then the key as sent when that
    differs: `located_key` takes the first that exists.
    """
    if isinstance(event, Mapping):
        detail = event.get("detail")
        if isinstance(detail, Mapping):
            bucket = (detail.get("bucket") or {}).get("name")
            key = (detail.get("object") or {}).get("key")
            encoded = True
        else:
            bucket, key, encoded = event.get("bucket"), event.get("key"), False
        if isinstance(bucket, str) and bucket and isinstance(key, str) and key:
            decoded = unquote_plus(key) if encoded else key
            return bucket, (decoded,) if decoded == key else (decoded, key)
    raise InvalidEvent(400, "invalid_request", 'The event has no "bucket" and "key".')


def located_key(storage: Storage, keys: Sequence[str]) -> str:
    """The first of `keys` whose object exists, else the first: a missing image is then
    reported (and its failure named) under the key S3 meant. Looking up stops at an error
    of the store, which the task itself then meets and reports."""
    if len(keys) < 2:
        return keys[0]  # nothing to choose: no request
    for key in keys:
        try:
            if storage.info(key) is not None:
                return key
        except StorageError:
            break
    return keys[0]


@dataclass
class Classifier:
    """The proxy's invocation and answer checks, with the batch's threshold; `store`
    records each prediction as the proxy records its 200s (variant `batch`)."""

    invoker: EndpointInvoker
    threshold: float = DEFAULT_REVIEW_THRESHOLD
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    store: PredictionStore | None = None

    @classmethod
    def from_config(
        cls,
        config: ProxyConfig,
        clients: Callable[[float], Any],
        *,
        threshold: float | None = None,
        store: PredictionStore | None = None,
        **invoker_options: Any,
    ) -> Classifier:
        """As `PredictProxy.create` builds its invoker; `threshold` overrides the config's."""
        invoker = EndpointInvoker(
            clients=clients,
            endpoint_name=config.endpoint_name,
            max_attempts=config.max_attempts,
            read_timeout=config.read_timeout,
            connect_timeout=config.connect_timeout,
            **invoker_options,
        )
        chosen = config.review_threshold if threshold is None else threshold
        return cls(invoker, chosen, config.max_image_bytes, store)


def read_image(job: Job, max_image_bytes: int) -> tuple[ImageUpload, Blob]:
    """The image's bytes, checked as the API checks an upload; `ImageRefused` otherwise."""
    try:
        blob = job.source.read(job.key, READ_CAP)
    except StorageError as error:
        raise storage_failed(error) from None
    return check_image(blob, max_image_bytes), blob


def check_image(blob: Blob, max_image_bytes: int) -> ImageUpload:
    """`blob` checked as the API checks an upload (`ImageRefused` otherwise). A blob of the
    first bytes of a larger object is judged as the whole one is when its `size` is the
    object's and at most `max_image_bytes` (the format is sniffed from the first bytes):
    how a transform's manifest is made without reading whole images (`batch.manifest`)."""
    if blob.data is None:
        raise ImageRefused(
            413,
            "payload_too_large",
            f"The image is {blob.size / (1024 * 1024):.1f} MB; the limit is "
            f"{max_image_bytes / (1024 * 1024):.1f} MB.",
        )
    if not blob.data:  # the API's code, but a file has no request body to speak of
        raise ImageRefused(400, "empty_body", "The file is empty (0 bytes).")
    event = {"headers": {"content-type": _RAW}, "body": blob.data, "isBase64Encoded": False}
    try:
        return parse_upload(event, max_image_bytes)
    except ApiError as error:
        raise task_error(error) from None


def classify_image(classifier: Classifier, upload: ImageUpload, deadline: float) -> dict[str, Any]:
    """The model's answer as the API's 200 body (`predictions`, `model`, `needs_review`)."""
    try:
        payload = classifier.invoker.invoke(upload.data, upload.media_type, deadline)
        return prediction_body(payload, classifier.threshold)
    except ApiError as error:
        raise task_error(error) from None


def route(job: Job, folder: str, document: dict[str, Any]) -> str:
    """Write the outcome to `folder`, then remove any other outcome of the image."""
    key = job.outcome_key(folder)
    try:
        job.out.write_json(key, document)
        for other in OUTCOME_FOLDERS:
            if other != folder:
                job.out.delete(job.outcome_key(other))
    except StorageError as error:
        raise storage_failed(error) from None
    return key


def existing_outcome(job: Job, etag: str) -> tuple[str, dict[str, Any]] | None:
    """The image's outcome if it is done: recorded for these bytes (`etag`), and not a
    failure that may pass another time."""
    try:
        for folder in OUTCOME_FOLDERS:
            document = job.out.read_json(job.outcome_key(folder))
            if document is None or (document.get("source") or {}).get("etag") != etag:
                continue
            if folder == FAILED and document.get("retryable"):
                continue
            return job.outcome_key(folder), document
    except StorageError as error:
        raise storage_failed(error) from None
    return None


def classify(
    job: Job,
    classifier: Classifier,
    *,
    deadline: float,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The classify task (contract above); `deadline` is on the invoker's clock."""
    started = classifier.invoker.clock()
    try:
        info = job.source.info(job.key)
    except StorageError as error:
        raise storage_failed(error) from None
    if info is None:
        raise SourceMissing(404, "source_missing", f"{job.source.describe()}/{job.key}: gone")
    done = existing_outcome(job, info.etag)
    if done is not None:
        return _output(job, *done, skipped=True)
    upload, blob = read_image(job, classifier.max_image_bytes)
    body = classify_image(classifier, upload, deadline)
    document = classified(
        job,
        blob,
        upload.media_type,
        body,
        classifier.threshold,
        classified_at=clock(),
        latency_ms=round((classifier.invoker.clock() - started) * 1000, 3),
    )
    return record_classified(job, document, classifier.store, clock())


def classified(
    job: Job,
    blob: Blob,
    media_type: str,
    body: Mapping[str, Any],
    threshold: float,
    *,
    classified_at: float,
    latency_ms: float | None,
) -> dict[str, Any]:
    """The outcome document of an image (`blob`: its etag and size) the model answered
    with `body` (the API's 200 body); `latency_ms` None where one image was not timed."""
    return {
        "schema": SCHEMA,
        "name": job.name,
        "outcome": REVIEW_OUTCOME if body["needs_review"] else RESULT,
        "request_id": job.request_id,
        "source": {
            "location": job.source.describe(),
            "key": job.key,
            "etag": blob.etag,
            "bytes": blob.size,
            "media_type": media_type,
        },
        "predictions": body["predictions"],
        "model": body["model"],
        "needs_review": body["needs_review"],
        "threshold": threshold,
        "classified_at": iso_time(classified_at),
        "latency_ms": latency_ms,
    }


def record_classified(
    job: Job, document: dict[str, Any], store: PredictionStore | None, now: float
) -> dict[str, Any]:
    """Route a `classified` document to `results/` or `review/` and record the prediction
    (with a store); the task's output."""
    key = route(job, _FOLDER[document["outcome"]], document)
    _record_prediction(store, document, now)
    return _output(job, key, document, skipped=False)


def _record_prediction(store: PredictionStore | None, document: dict[str, Any], now: float) -> None:
    """The prediction's record, as the proxy writes one per 200; a failure to write it is
    logged, never the image's (a review puts the record when it is missing)."""
    if store is None:
        return
    try:
        record = Prediction.from_response(
            document, variant=VARIANT, latency_ms=document["latency_ms"], now=now
        )
        store.put(record)
    except StoreError as error:
        append_keys(store_error=str(error))


def record_failure(
    job: Job, error: Mapping[str, Any], *, clock: Callable[[], float] = time.time
) -> dict[str, Any]:
    """The failure task: write `failed/<name>.json` from a caught error (contract above)."""
    name = str(error.get("Error", "")) if isinstance(error, Mapping) else ""
    cause = error.get("Cause") if isinstance(error, Mapping) else None
    reported = _reported(name, cause)
    try:
        info = job.source.info(job.key)
    except StorageError:
        info = None  # a failure is recorded even when the image cannot be looked at
    if info is not None:
        done = existing_outcome(job, info.etag)
        if done is not None and done[1].get("outcome") != FAILED_OUTCOME:
            # A late failure of a duplicate: the image has its outcome (perhaps a
            # person's decision), which a failure must not replace.
            return _output(job, *done, skipped=True)
    if name == LAMBDA_THROTTLED:
        status, code, retryable = 503, "batch_busy", True
        message = (
            "The image waited about a day for a free slot of the batch (batchConcurrency) "
            "and was not classified; put it again, or raise batchConcurrency."
        )
        detail = f"{name}: {str(cause or '')[:_MAX_DETAIL]}"
    elif reported is None:
        status, code, retryable = 500, "internal_error", True
        message = "The batch task failed unexpectedly; run the image again."
        detail = f"{name or 'unknown error'}: {str(cause or '')[:_MAX_DETAIL]}"
    else:
        status, code, message = reported["status"], reported["code"], reported["message"]
        retryable, detail = _BY_NAME[name].retryable, None
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "name": job.name,
        "outcome": FAILED_OUTCOME,
        "request_id": job.request_id,
        "source": {
            "location": job.source.describe(),
            "key": job.key,
            "etag": info.etag if info else None,
            "bytes": info.size if info else None,
        },
        "error": {"code": code, "message": message, "status": status},
        "error_name": name or None,
        "retryable": retryable,
        "failed_at": iso_time(clock()),
    }
    if detail is not None:
        document["detail"] = detail
    key = route(job, FAILED, document)
    return _output(job, key, document, skipped=False)


def caught(exc: BaseException) -> dict[str, str]:
    """What a Step Functions Catch puts in `$.error` for a Lambda that raised `exc`."""
    cause = {"errorMessage": str(exc), "errorType": type(exc).__name__}
    return {"Error": type(exc).__name__, "Cause": json.dumps(cause)}


def _reported(name: str, cause: Any) -> dict[str, Any] | None:
    """A task error's `{"code", "message", "status"}` from a Catch's Cause, or None."""
    if name not in _BY_NAME or not isinstance(cause, str):
        return None
    try:
        reported = json.loads(json.loads(cause)["errorMessage"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(reported, dict):
        return None
    code, message, status = reported.get("code"), reported.get("message"), reported.get("status")
    if isinstance(code, str) and isinstance(message, str) and isinstance(status, int):
        return {"code": code, "message": message, "status": status}
    return None


def top_prediction(document: Mapping[str, Any]) -> dict[str, Any]:
    """The most probable of an outcome's predictions (empty when there are none)."""
    predictions = [p for p in document.get("predictions") or [] if isinstance(p, dict)]
    return max(predictions, key=lambda p: p.get("probability", 0.0), default={})


def _output(job: Job, key: str, document: Mapping[str, Any], *, skipped: bool) -> dict[str, Any]:
    outcome = document.get("outcome")
    output: dict[str, Any] = {
        "key": job.key,
        "name": job.name,
        "outcome": RESULT if outcome == REVIEWED else outcome,
        "result_key": key,
        "request_id": document.get("request_id", job.request_id),
        "skipped": skipped,
    }
    if outcome == FAILED_OUTCOME:
        output["code"] = (document.get("error") or {}).get("code")
        output["retryable"] = bool(document.get("retryable"))
    else:
        top = top_prediction(document)
        output["label"] = top.get("label")
        output["probability"] = top.get("probability")
        output["model_version"] = (document.get("model") or {}).get("version")
    return output
