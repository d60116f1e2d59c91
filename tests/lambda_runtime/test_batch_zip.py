"""The batch zip's handlers under awslambdaric, as Step Functions invokes them with the
EventBridge event S3 sends: an inbox photo named with a space and a `+` (its key
URL-encoded in the event) is classified under its real name, a refused file recorded."""

from __future__ import annotations

import json

import pytest

from machine.lambda_runtime_api import LambdaFunction
from tests.infra.conftest import StackRun
from tests.lambda_runtime.conftest import aws_clients
from tests.proxy.photos import encoded

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def classify(start_function) -> LambdaFunction:
    return start_function("batch-classify")


@pytest.fixture(scope="module")
def record_failure(start_function) -> LambdaFunction:
    return start_function("batch-record-failure")


def s3_event(bucket: str, sent_key: str) -> dict:
    """EventBridge's "Object Created" event from S3, the key as S3 sends it."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-12-07T00:00:00Z",
        "region": "eu-west-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": sent_key, "size": 1, "etag": "0", "sequencer": "0"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


def test_an_encoded_inbox_key_is_classified_under_its_real_name(classify, stack, moto_url):
    bucket = stack.outputs["batch_bucket"]
    s3, _dynamodb = aws_clients(moto_url)
    s3.put_object(Bucket=bucket, Key="inbox/holiday photo+1.jpg", Body=encoded("chelsea"))

    invocation = classify.invoke(s3_event(bucket, "inbox/holiday+photo%2B1.jpg"))

    assert invocation.kind == "response", invocation
    output = invocation.body
    assert output["key"] == "inbox/holiday photo+1.jpg"
    assert output["outcome"] in ("result", "review")
    folder = "results" if output["outcome"] == "result" else "review"
    assert output["result_key"] == f"{folder}/holiday photo+1.jpg.json"
    document = json.loads(s3.get_object(Bucket=bucket, Key=output["result_key"])["Body"].read())
    assert len(document["predictions"]) == 5
    assert document["source"]["key"] == "inbox/holiday photo+1.jpg"


def test_a_refused_file_is_an_error_step_functions_catches_then_failed(
    classify, record_failure, stack: StackRun, moto_url
):
    bucket = stack.outputs["batch_bucket"]
    s3, _dynamodb = aws_clients(moto_url)
    s3.put_object(Bucket=bucket, Key="inbox/notes 100%.jpg", Body=b"notes, not a photo")
    event = s3_event(bucket, "inbox/notes+100%25.jpg")

    refused = classify.invoke(event)
    assert (refused.kind, refused.body["errorType"]) == ("error", "ImageRefused")
    # What the Classify state's Catch (ResultPath $.error) hands RecordFailure.
    error = {"Error": refused.body["errorType"], "Cause": json.dumps(refused.body)}
    recorded = record_failure.invoke({**event, "error": error})

    assert recorded.kind == "response", recorded
    assert (recorded.body["code"], recorded.body["result_key"]) == (
        "not_an_image",
        "failed/notes 100%.jpg.json",
    )
    assert s3.head_object(Bucket=bucket, Key="failed/notes 100%.jpg.json")
