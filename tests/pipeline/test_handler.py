"""The Lambda entry points, as Step Functions invokes them: S3 through moto, the
environment the proxy's, one JSON log line per task."""

from __future__ import annotations

import importlib
import json

import pytest

from pipeline import handler
from pipeline.tasks import ImageRefused, caught
from proxy.config import ConfigError
from tests.batch.support import ENDPOINT, answer, photo, scripted
from tests.pipeline.conftest import BUCKET


class Context:
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


@pytest.fixture
def cold_start() -> None:
    """A new container: the module run afresh, as Lambda's init runs it, so nothing an
    earlier test's invocations set up (clients, config, stores) carries over."""
    importlib.reload(handler)


@pytest.fixture
def lambda_env(s3, monkeypatch, cold_start):
    monkeypatch.setenv("SAGEMAKER_ENDPOINT_NAME", ENDPOINT)
    monkeypatch.setenv("REVIEW_THRESHOLD", "0.8")
    runtime = scripted(answer(0.9))
    monkeypatch.setattr(handler, "RuntimeClients", lambda *_args: runtime)
    return runtime


def log_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_classify_routes_an_inbox_object(s3, lambda_env, capsys):
    s3.put_object(Bucket=BUCKET, Key="inbox/a.jpg", Body=photo())
    output = handler.classify({"bucket": BUCKET, "key": "inbox/a.jpg"}, Context())
    # REVIEW_THRESHOLD is read as the proxy reads it: 0.9 is confident at 0.8.
    assert output["bucket"] == BUCKET
    assert (output["outcome"], output["result_key"]) == ("result", "results/a.jpg.json")
    [line] = log_lines(capsys)
    assert line["event"] == "batch_task"
    assert line["task"] == "classify"
    assert (line["bucket"], line["key"], line["outcome"]) == (BUCKET, "inbox/a.jpg", "result")
    assert line["request_id"] == output["request_id"]
    assert line["attempts"] == 1  # the invoker's own keys join the line


def test_a_refusal_and_its_catch(s3, lambda_env, capsys):
    s3.put_object(Bucket=BUCKET, Key="inbox/notes.jpg", Body=b"notes")
    event = {"bucket": BUCKET, "key": "inbox/notes.jpg"}
    with pytest.raises(ImageRefused) as raised:
        handler.classify(event, Context())
    # What Step Functions' Catch (ResultPath $.error) hands the failure task:
    output = handler.record_failure({**event, "error": caught(raised.value)}, Context())
    assert (output["outcome"], output["code"]) == ("failed", "not_an_image")
    assert output["result_key"] == "failed/notes.jpg.json"
    refused, recorded = log_lines(capsys)
    assert (refused["level"], refused["error"], refused["code"]) == (
        "WARNING",
        "ImageRefused",
        "not_an_image",
    )
    assert (recorded["task"], recorded["outcome"]) == ("record_failure", "failed")


def test_the_eventbridge_event_itself_is_accepted(s3, lambda_env):
    s3.put_object(Bucket=BUCKET, Key="inbox/a.jpg", Body=photo())
    event = {"detail": {"bucket": {"name": BUCKET}, "object": {"key": "inbox/a.jpg"}}}
    assert handler.classify(event, Context())["outcome"] == "result"


def test_a_bad_environment_names_the_variable(s3, monkeypatch, cold_start):
    monkeypatch.delenv("SAGEMAKER_ENDPOINT_NAME", raising=False)
    with pytest.raises(ConfigError, match="SAGEMAKER_ENDPOINT_NAME"):
        handler.classify({"bucket": BUCKET, "key": "inbox/a.jpg"}, Context())


def create_table(name: str = "predictions"):
    import boto3

    client = boto3.client("dynamodb", region_name="eu-west-1")
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "request_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "request_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


def test_each_prediction_is_recorded_as_the_proxy_records_its_own(
    s3, lambda_env, monkeypatch, capsys
):
    from proxy.predictions import DynamoPredictionStore

    create_table()
    monkeypatch.setenv("PREDICTIONS_TABLE", "predictions")
    lambda_env.respond = lambda *_: answer(0.5)
    s3.put_object(Bucket=BUCKET, Key="inbox/a.jpg", Body=photo())
    output = handler.classify({"bucket": BUCKET, "key": "inbox/a.jpg"}, Context())
    [record] = DynamoPredictionStore("predictions", region="eu-west-1").records()
    assert record.request_id == output["request_id"]
    assert (record.variant, record.label, record.needs_review) == ("batch", "tabby", True)
    assert "store_error" not in log_lines(capsys)[0]


def test_a_store_that_fails_costs_the_record_not_the_image(s3, lambda_env, monkeypatch, capsys):
    monkeypatch.setenv("PREDICTIONS_TABLE", "no-such-table")
    s3.put_object(Bucket=BUCKET, Key="inbox/a.jpg", Body=photo())
    output = handler.classify({"bucket": BUCKET, "key": "inbox/a.jpg"}, Context())
    assert output["outcome"] == "result"
    assert "no-such-table" in log_lines(capsys)[0]["store_error"]


# Real inbox names, and the key S3 puts in the EventBridge event for each: form-encoded
# (a space as "+", a "+" as "%2B", UTF-8 bytes percent-encoded), "/" kept.
ENCODED_KEYS = [
    ("inbox/holiday photo+1.jpg", "inbox/holiday+photo%2B1.jpg"),
    ("inbox/100% cat.jpg", "inbox/100%25+cat.jpg"),
    ("inbox/chats noirs/café ü.jpg", "inbox/chats+noirs/caf%C3%A9+%C3%BC.jpg"),
]


def s3_event(key: str) -> dict:
    """EventBridge's "Object Created" event from S3, `key` as S3 sent it."""
    return {
        "version": "0",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "detail": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 1}},
    }


@pytest.mark.parametrize(("key", "sent"), ENCODED_KEYS, ids=["space-plus", "percent", "utf8"])
def test_an_encoded_event_key_names_the_real_object(s3, lambda_env, key, sent):
    s3.put_object(Bucket=BUCKET, Key=key, Body=photo())
    output = handler.classify(s3_event(sent), Context())
    name = key.removeprefix("inbox/")
    assert (output["key"], output["name"]) == (key, name)
    assert (output["outcome"], output["result_key"]) == ("result", f"results/{name}.json")
    document = json.loads(s3.get_object(Bucket=BUCKET, Key=f"results/{name}.json")["Body"].read())
    assert document["source"]["key"] == key


@pytest.mark.parametrize(("key", "sent"), ENCODED_KEYS, ids=["space-plus", "percent", "utf8"])
def test_a_refused_encoded_key_fails_under_its_real_name(s3, lambda_env, key, sent):
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"notes, not a photo")
    event = s3_event(sent)
    with pytest.raises(ImageRefused) as raised:
        handler.classify(event, Context())
    output = handler.record_failure({**event, "error": caught(raised.value)}, Context())
    name = key.removeprefix("inbox/")
    assert (output["code"], output["result_key"]) == ("not_an_image", f"failed/{name}.json")
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="failed/")["Contents"]
    assert [item["Key"] for item in listing] == [f"failed/{name}.json"]


def test_a_key_sent_unencoded_is_still_found(s3, lambda_env):
    """Should an event ever carry the key as it is, the object is not lost: `a+b.jpg`
    decodes to `a b.jpg`, which does not exist, so the key as sent is used."""
    s3.put_object(Bucket=BUCKET, Key="inbox/a+b.jpg", Body=photo())
    output = handler.classify(s3_event("inbox/a+b.jpg"), Context())
    assert (output["key"], output["result_key"]) == ("inbox/a+b.jpg", "results/a+b.jpg.json")


def test_the_decoded_key_wins_when_both_exist(s3, lambda_env):
    s3.put_object(Bucket=BUCKET, Key="inbox/a b.jpg", Body=photo())
    s3.put_object(Bucket=BUCKET, Key="inbox/a+b.jpg", Body=b"another file")
    output = handler.classify(s3_event("inbox/a+b.jpg"), Context())
    assert (output["key"], output["outcome"]) == ("inbox/a b.jpg", "result")


def test_a_vanished_encoded_key_fails_under_its_real_name(s3, lambda_env):
    from pipeline.tasks import SourceMissing

    event = s3_event("inbox/holiday+photo%2B1.jpg")
    with pytest.raises(SourceMissing) as raised:
        handler.classify(event, Context())
    output = handler.record_failure({**event, "error": caught(raised.value)}, Context())
    assert (output["code"], output["result_key"]) == (
        "source_missing",
        "failed/holiday photo+1.jpg.json",
    )


def test_a_task_event_key_is_taken_as_it_is(s3, lambda_env):
    """`{"bucket", "key"}` (a person, the runner, a test) names the object itself."""
    s3.put_object(Bucket=BUCKET, Key="inbox/100%25+a.jpg", Body=photo())
    output = handler.classify({"bucket": BUCKET, "key": "inbox/100%25+a.jpg"}, Context())
    assert output["result_key"] == "results/100%25+a.jpg.json"
