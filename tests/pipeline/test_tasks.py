"""The task functions on S3 (moto), the SageMaker call faked: routing by outcome, the
API's checks and codes, the named errors Step Functions matches, idempotency."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from pipeline import tasks
from pipeline.storage import S3Storage, StorageError
from pipeline.tasks import (
    ImageRefused,
    InvalidEvent,
    Job,
    SourceMissing,
    TaskError,
    caught,
    classify,
    event_location,
    inbox_job,
    located_key,
    record_failure,
)
from proxy.config import DEFAULT_REVIEW_THRESHOLD
from proxy.request import parse_upload
from proxy.responses import ApiError
from proxy.sagemaker import EndpointInvoker
from tests.batch.support import (
    ENDPOINT,
    FakeRuntime,
    answer,
    classifier,
    client_error,
    huge_declared_png,
    model_error,
    oversized_jpeg,
    photo,
    scripted,
    truncated_jpeg,
)
from tests.pipeline.conftest import BUCKET

FAR = 10**9  # a deadline that never comes (the invoker's clock is monotonic seconds)


def put(s3, key: str, data: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)


def outcome_files(s3) -> list[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return sorted(item["Key"] for item in listing if not item["Key"].startswith("inbox/"))


def read(s3, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def api_error(data: bytes) -> ApiError:
    """What the API itself answers for `data` uploaded as image bytes."""
    event = {"headers": {"content-type": "image/jpeg"}, "body": data, "isBase64Encoded": False}
    with pytest.raises(ApiError) as raised:
        parse_upload(event, 3 * 1024 * 1024)
    return raised.value


def test_a_confident_prediction_goes_to_results(s3, bucket):
    put(s3, "inbox/cats/1.jpg", photo())
    runtime = scripted(answer(0.97))
    job = inbox_job(bucket, "inbox/cats/1.jpg")

    output = classify(job, classifier(runtime), deadline=FAR, clock=lambda: 1_790_000_000.0)

    assert output == {
        "key": "inbox/cats/1.jpg",
        "name": "cats/1.jpg",
        "outcome": "result",
        "result_key": "results/cats/1.jpg.json",
        "request_id": job.request_id,
        "skipped": False,
        "label": "tabby",
        "probability": 0.97,
        "model_version": "3f9a1c2b4d5e",
    }
    assert outcome_files(s3) == ["results/cats/1.jpg.json"]
    document = read(s3, "results/cats/1.jpg.json")
    head = s3.head_object(Bucket=BUCKET, Key="inbox/cats/1.jpg")
    assert document["source"] == {
        "location": f"s3://{BUCKET}",
        "key": "inbox/cats/1.jpg",
        "etag": head["ETag"].strip('"'),
        "bytes": head["ContentLength"],
        "media_type": "image/jpeg",
    }
    assert document["outcome"] == "result"
    assert document["needs_review"] is False
    assert document["threshold"] == DEFAULT_REVIEW_THRESHOLD
    assert document["predictions"] == json.loads(answer(0.97))["predictions"]
    assert document["model"]["version"] == "3f9a1c2b4d5e"
    assert document["classified_at"] == "2026-09-21T14:13:20.000Z"
    assert document["request_id"].startswith("batch-")


def test_the_call_is_the_proxys_own(s3, bucket):
    """A stock botocore client, stubbed: the endpoint, the sniffed type, JSON back."""
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1")
    png = photo("coffee", "PNG")
    put(s3, "inbox/coffee.jpg", png)  # named .jpg, but a PNG: sent as what it is
    payload = answer(0.99)
    with Stubber(client) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(payload), len(payload)), "ContentType": "json"},
            {
                "EndpointName": ENDPOINT,
                "Body": png,
                "ContentType": "image/png",
                "Accept": "application/json",
            },
        )
        output = classify(
            inbox_job(bucket, "inbox/coffee.jpg"), classifier(lambda _t: client), deadline=FAR
        )
        stub.assert_no_pending_responses()
    assert output["outcome"] == "result"
    assert read(s3, "results/coffee.jpg.json")["source"]["media_type"] == "image/png"


@pytest.mark.parametrize(
    ("top1", "threshold", "outcome"),
    [
        (0.92, None, "review"),
        (DEFAULT_REVIEW_THRESHOLD, None, "result"),
        (0.5, 0.4, "result"),
        (0.95, 0.99, "review"),
    ],
)
def test_the_proxys_threshold_routes_to_review(s3, bucket, top1, threshold, outcome):
    put(s3, "inbox/a.jpg", photo())
    options = {} if threshold is None else {"threshold": threshold}
    output = classify(
        inbox_job(bucket, "inbox/a.jpg"),
        classifier(scripted(answer(top1)), **options),
        deadline=FAR,
    )
    assert output["outcome"] == outcome
    folder = "review" if outcome == "review" else "results"
    assert outcome_files(s3) == [f"{folder}/a.jpg.json"]
    assert read(s3, f"{folder}/a.jpg.json")["needs_review"] is (outcome == "review")


BAD_FILES = [
    pytest.param(b"just some notes\n", "not_an_image", 422, id="text"),
    pytest.param(oversized_jpeg(), "payload_too_large", 413, id="over-3MB"),
    pytest.param(b"BM" + bytes(64), "unsupported_image_format", 415, id="bmp"),
    pytest.param(b"%PDF-1.7\n" + bytes(32), "unsupported_image_format", 415, id="pdf"),
]


@pytest.mark.parametrize(("data", "code", "status"), BAD_FILES)
def test_bad_files_are_refused_as_the_api_refuses_them(s3, bucket, data, code, status):
    put(s3, "inbox/bad", data)
    runtime = scripted(answer(0.99))
    job = inbox_job(bucket, "inbox/bad")
    with pytest.raises(ImageRefused) as raised:
        classify(job, classifier(runtime), deadline=FAR)
    assert runtime.calls == []  # refused before paying for SageMaker
    error = raised.value
    assert (error.code, error.status) == (code, status)
    api = api_error(data)
    assert (error.code, error.message) == (api.code, api.message)
    assert json.loads(str(error)) == {"code": code, "message": api.message, "status": status}

    output = record_failure(job, caught(error))
    assert output["outcome"] == "failed"
    assert output["code"] == code
    assert outcome_files(s3) == ["failed/bad.json"]
    document = read(s3, "failed/bad.json")
    assert document["error"] == {"code": code, "message": api.message, "status": status}
    assert document["error_name"] == "ImageRefused"
    assert document["retryable"] is False
    assert document["source"]["bytes"] == len(data)


def test_an_object_beyond_the_api_gateway_limit_is_not_even_read(s3, bucket):
    put(s3, "inbox/huge.jpg", oversized_jpeg(tasks.READ_CAP + 1))
    with pytest.raises(ImageRefused) as raised:
        classify(inbox_job(bucket, "inbox/huge.jpg"), classifier(scripted(b"")), deadline=FAR)
    assert raised.value.code == "payload_too_large"
    assert "10.0 MB" in raised.value.message


@pytest.mark.parametrize(
    ("data", "error", "code", "status"),
    [
        (truncated_jpeg(), model_error(400, "corrupt_image", "truncated"), "corrupt_image", 400),
        (
            huge_declared_png(),
            model_error(413, "image_too_large", "too big"),
            "image_too_large",
            413,
        ),
    ],
    ids=["truncated-jpeg", "huge-dimensions"],
)
def test_the_models_refusals_are_image_refusals(s3, bucket, data, error, code, status):
    put(s3, "inbox/x.png", data)
    with pytest.raises(ImageRefused) as raised:
        classify(inbox_job(bucket, "inbox/x.png"), classifier(scripted(error)), deadline=FAR)
    assert (raised.value.code, raised.value.status) == (code, status)


@pytest.mark.parametrize(
    ("error", "name", "code", "retryable"),
    [
        (client_error("ModelNotReadyException", 429), "ModelNotReady", "model_not_ready", True),
        (client_error("ThrottlingException", 400), "Throttled", "model_busy", True),
        (client_error("ServiceUnavailable", 503), "ModelUnavailable", "model_unavailable", True),
        (
            client_error("ValidationError", 400, "Endpoint x of account y not found."),
            "EndpointNotFound",
            "endpoint_not_found",
            True,
        ),
        (client_error("AccessDeniedException", 400), "UpstreamError", "upstream_error", True),
        (model_error(500, "internal_error", "boom"), "ModelFailed", "model_error", False),
    ],
)
def test_sagemaker_failures_raise_the_errors_step_functions_matches(
    s3, bucket, error, name, code, retryable
):
    put(s3, "inbox/a.jpg", photo())
    job = inbox_job(bucket, "inbox/a.jpg")
    with pytest.raises(TaskError) as raised:
        classify(job, classifier(scripted(error)), deadline=FAR)
    assert type(raised.value).__name__ == name
    assert raised.value.code == code
    assert outcome_files(s3) == []  # nothing yet: Step Functions retries, or catches

    record_failure(job, caught(raised.value))
    document = read(s3, "failed/a.jpg.json")
    assert (document["error"]["code"], document["error_name"]) == (code, name)
    assert document["retryable"] is retryable


def test_bad_model_answers_are_model_failures(s3, bucket):
    put(s3, "inbox/a.jpg", photo())
    with pytest.raises(tasks.ModelFailed) as raised:
        classify(inbox_job(bucket, "inbox/a.jpg"), classifier(scripted(b"<html>")), deadline=FAR)
    assert raised.value.code == "bad_model_response"


def test_the_invoker_retries_within_the_task_before_raising(s3, bucket):
    put(s3, "inbox/a.jpg", photo())
    runtime = scripted(client_error("ThrottlingException", 400), answer(0.99))
    output = classify(
        inbox_job(bucket, "inbox/a.jpg"), classifier(runtime, max_attempts=3), deadline=FAR
    )
    assert output["outcome"] == "result"
    assert len(runtime.calls) == 2


def test_a_duplicate_event_does_no_work(s3, bucket):
    put(s3, "inbox/a.jpg", photo())
    runtime = scripted(answer(0.5))
    job = inbox_job(bucket, "inbox/a.jpg")
    first = classify(job, classifier(runtime), deadline=FAR)
    again = classify(job, classifier(runtime), deadline=FAR)
    assert len(runtime.calls) == 1
    assert again == {**first, "skipped": True}


def test_a_human_review_is_never_overwritten_by_a_duplicate(s3, bucket):
    put(s3, "inbox/a.jpg", photo())
    job = inbox_job(bucket, "inbox/a.jpg")
    classify(job, classifier(scripted(answer(0.5))), deadline=FAR)
    item = read(s3, "review/a.jpg.json")
    reviewed = {**item, "outcome": "reviewed", "reviewed": {"by": "ana", "label": "lynx"}}
    s3.put_object(Bucket=BUCKET, Key="results/a.jpg.json", Body=json.dumps(reviewed))
    s3.delete_object(Bucket=BUCKET, Key="review/a.jpg.json")

    output = classify(job, classifier(scripted(answer(0.99))), deadline=FAR)
    assert output["skipped"] is True
    assert output["outcome"] == "result"
    assert read(s3, "results/a.jpg.json")["reviewed"]["by"] == "ana"


def test_new_bytes_under_the_same_key_are_classified_again_in_one_place(s3, bucket):
    job = inbox_job(bucket, "inbox/a.jpg")
    put(s3, "inbox/a.jpg", b"not an image")
    with pytest.raises(ImageRefused) as raised:
        classify(job, classifier(scripted(answer(0.99))), deadline=FAR)
    record_failure(job, caught(raised.value))
    assert outcome_files(s3) == ["failed/a.jpg.json"]
    # A refusal is final for those bytes: the same event again changes nothing.
    assert classify(job, classifier(scripted(answer(0.99))), deadline=FAR)["outcome"] == "failed"

    put(s3, "inbox/a.jpg", photo())
    assert classify(job, classifier(scripted(answer(0.5))), deadline=FAR)["outcome"] == "review"
    assert outcome_files(s3) == ["review/a.jpg.json"]
    put(s3, "inbox/a.jpg", photo("coffee"))
    assert classify(job, classifier(scripted(answer(0.99))), deadline=FAR)["outcome"] == "result"
    assert outcome_files(s3) == ["results/a.jpg.json"]


def test_a_retryable_failure_is_tried_again_by_the_next_event(s3, bucket):
    put(s3, "inbox/a.jpg", photo())
    job = inbox_job(bucket, "inbox/a.jpg")
    with pytest.raises(tasks.Throttled) as raised:
        classify(job, classifier(scripted(client_error("ThrottlingException", 400))), deadline=FAR)
    record_failure(job, caught(raised.value))
    assert read(s3, "failed/a.jpg.json")["retryable"] is True

    output = classify(job, classifier(scripted(answer(0.99))), deadline=FAR)
    assert (output["outcome"], output["skipped"]) == ("result", False)
    assert outcome_files(s3) == ["results/a.jpg.json"]


@pytest.mark.parametrize(
    "error",
    [
        {"Error": "States.Timeout", "Cause": ""},
        {
            "Error": "KeyError",
            "Cause": json.dumps({"errorMessage": "'x'", "errorType": "KeyError"}),
        },
        {"Error": "ImageRefused", "Cause": "not JSON"},
        {},
    ],
    ids=["timeout", "bug", "garbled", "nothing"],
)
def test_any_other_failure_is_recorded_too(s3, bucket, error):
    put(s3, "inbox/a.jpg", photo())
    output = record_failure(inbox_job(bucket, "inbox/a.jpg"), error)
    assert (output["outcome"], output["code"], output["retryable"]) == (
        "failed",
        "internal_error",
        True,
    )
    document = read(s3, "failed/a.jpg.json")
    assert document["error"]["status"] == 500
    assert document["detail"].startswith(error.get("Error", "unknown error"))


def test_a_vanished_object_is_a_missing_source(s3, bucket):
    job = inbox_job(bucket, "inbox/gone.jpg")
    with pytest.raises(SourceMissing) as raised:
        classify(job, classifier(scripted(answer(0.99))), deadline=FAR)
    output = record_failure(job, caught(raised.value))
    assert (output["code"], output["retryable"]) == ("source_missing", False)
    assert read(s3, "failed/gone.jpg.json")["source"]["etag"] is None


def test_storage_failures_are_retryable_task_errors(s3):
    """S3 refusing us (here: a bucket that does not exist) is StorageFailed, retried."""
    storage = S3Storage("no-such-bucket", client=s3)
    job = Job(storage, "inbox/a.jpg", storage, "a.jpg")
    with pytest.raises(tasks.StorageFailed) as raised:
        classify(job, classifier(scripted(answer(0.9))), deadline=FAR)
    assert raised.value.code == "storage_error"
    assert raised.value.retryable is True


@pytest.mark.parametrize(
    "event",
    [
        {"bucket": BUCKET, "key": "inbox/cats/1.jpg"},
        {
            "version": "0",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "detail": {
                "bucket": {"name": BUCKET},
                "object": {"key": "inbox/cats/1.jpg", "size": 1234, "etag": "abc"},
            },
        },
    ],
    ids=["task-event", "eventbridge"],
)
def test_both_event_shapes_name_the_object(event):
    assert event_location(event) == (BUCKET, ("inbox/cats/1.jpg",))


def eventbridge(key: str) -> dict:
    return {"detail": {"bucket": {"name": BUCKET}, "object": {"key": key}}}


@pytest.mark.parametrize(
    ("sent", "keys"),
    [
        (
            "inbox/holiday+photo%2B1.jpg",
            ("inbox/holiday photo+1.jpg", "inbox/holiday+photo%2B1.jpg"),
        ),
        ("inbox/100%25.jpg", ("inbox/100%.jpg", "inbox/100%25.jpg")),
        ("inbox/caf%C3%A9.jpg", ("inbox/café.jpg", "inbox/caf%C3%A9.jpg")),
        ("inbox/plain-name_1.jpg", ("inbox/plain-name_1.jpg",)),
    ],
)
def test_an_s3_event_key_is_decoded_first(sent, keys):
    assert event_location(eventbridge(sent)) == (BUCKET, keys)


def test_a_task_event_key_is_not_decoded():
    assert event_location({"bucket": BUCKET, "key": "inbox/a+b.jpg"}) == (
        BUCKET,
        ("inbox/a+b.jpg",),
    )


def test_the_located_key_is_the_first_that_exists(s3, bucket):
    keys = ("inbox/a b.jpg", "inbox/a+b.jpg")
    assert located_key(bucket, keys) == "inbox/a b.jpg"  # neither: the decoded one
    put(s3, "inbox/a+b.jpg", b"x")
    assert located_key(bucket, keys) == "inbox/a+b.jpg"
    put(s3, "inbox/a b.jpg", b"x")
    assert located_key(bucket, keys) == "inbox/a b.jpg"


def test_a_store_error_while_locating_leaves_the_decoded_key():
    """The task meets the error itself (StorageFailed, retried) under the real name."""
    asked = []

    class Failing:
        def info(self, key):
            asked.append(key)
            raise StorageError(f"{key}: SlowDown")

    assert located_key(Failing(), ("inbox/a b.jpg", "inbox/a+b.jpg")) == "inbox/a b.jpg"
    assert asked == ["inbox/a b.jpg"]


def test_a_single_key_is_located_without_a_request():
    class Unreachable:
        def info(self, key):
            raise AssertionError("no request for a key with nothing to choose")

    assert located_key(Unreachable(), ("inbox/a.jpg",)) == "inbox/a.jpg"


@pytest.mark.parametrize(
    "event", [{}, {"bucket": BUCKET}, {"detail": {"bucket": {}}}, None, "inbox/a.jpg"]
)
def test_an_event_without_an_object_is_invalid(event):
    with pytest.raises(InvalidEvent):
        event_location(event)


@pytest.mark.parametrize("key", ["results/a.jpg.json", "inbox/", "inbox/folder/", "a.jpg"])
def test_only_objects_of_the_inbox_are_jobs(bucket, key):
    with pytest.raises(InvalidEvent):
        inbox_job(bucket, key)


def test_request_ids_are_stable_per_object_and_fit_the_store(bucket):
    from proxy.predictions import parse_feedback

    first = inbox_job(bucket, "inbox/a.jpg").request_id
    assert first == inbox_job(bucket, "inbox/a.jpg").request_id
    assert first != inbox_job(bucket, "inbox/b.jpg").request_id
    parse_feedback({"request_id": first, "verdict": "correct"})  # a valid id for the store


def test_every_task_error_is_named_for_step_functions():
    names = {error.__name__ for error in tasks.TASK_ERRORS}
    assert len(names) == len(tasks.TASK_ERRORS)
    for error in tasks.TASK_ERRORS:
        assert issubclass(error, TaskError)
        assert isinstance(error.retryable, bool)


def test_the_invoker_is_built_as_the_proxy_builds_it():
    from proxy.config import ProxyConfig

    config = ProxyConfig(endpoint_name=ENDPOINT, max_attempts=3, review_threshold=0.8)
    built = tasks.Classifier.from_config(config, FakeRuntime(lambda *_: b""))
    assert isinstance(built.invoker, EndpointInvoker)
    assert (built.invoker.endpoint_name, built.invoker.max_attempts) == (ENDPOINT, 3)
    assert built.threshold == 0.8
    assert (
        tasks.Classifier.from_config(config, FakeRuntime(lambda *_: b""), threshold=0.5).threshold
        == 0.5
    )


def test_a_late_failure_of_a_duplicate_keeps_the_outcome(s3, bucket):
    put(s3, "inbox/a.jpg", photo())
    job = inbox_job(bucket, "inbox/a.jpg")
    classify(job, classifier(scripted(answer(0.5))), deadline=FAR)
    error = tasks.Throttled(503, "model_busy", "busy")
    output = record_failure(job, caught(error))
    assert (output["outcome"], output["skipped"]) == ("review", True)
    assert outcome_files(s3) == ["review/a.jpg.json"]


def test_an_image_that_waited_out_the_batch_bound_says_so(s3, bucket):
    """After `pipeline.workflow.WAIT_FOR_A_SLOT`'s day, the throttle itself is caught."""
    put(s3, "inbox/a.jpg", photo())
    error = {
        "Error": "Lambda.TooManyRequestsException",
        "Cause": "Rate Exceeded. (Service: Lambda, Status Code: 429, "
        "Request ID: 0f3b2c1d-0000-4000-8000-000000000000)",
    }
    output = record_failure(inbox_job(bucket, "inbox/a.jpg"), error)
    assert (output["code"], output["retryable"]) == ("batch_busy", True)
    document = read(s3, "failed/a.jpg.json")
    assert document["error"]["status"] == 503
    assert "batchConcurrency" in document["error"]["message"]
    assert document["detail"].startswith("Lambda.TooManyRequestsException: Rate Exceeded")
