"""Prediction records and feedback: one contract for both stores (SQLite, and DynamoDB
through moto), the feedback document's checks, and what each store holds."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import botocore.session
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from machine.predictions_sqlite import DEFAULT_SQLITE_PATH, SqlitePredictionStore
from proxy.predictions import (
    DEFAULT_RETENTION_DAYS,
    DynamoPredictionStore,
    Feedback,
    InvalidFeedback,
    Prediction,
    PredictionNotFound,
    StoreError,
    check_verdict,
    iso_time,
    parse_feedback,
)
from shared.predictions import PARTITION_KEY, TTL_ATTRIBUTE

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
TABLE = "image-classifier-dev-predictions"
NOON = 1_772_366_400.0  # 2026-03-01T12:00:00Z
DAY = 86_400
LABELS = ("tabby", "tiger cat", "Egyptian cat", "lynx")


class Clock:
    """Unix seconds, moved by hand."""

    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def body(request_id: str, top1: float = 0.71, version: str = "3f9a1c2b4d5e") -> dict:
    """A 200 body as the proxy sends it."""
    return {
        "predictions": [
            {"label": "tabby", "index": 281, "probability": top1},
            {"label": "tiger cat", "index": 282, "probability": round(1 - top1, 4)},
        ],
        "model": {"name": "mobilenet_v2", "version": version, "weights": "IMAGENET1K_V2"},
        "needs_review": top1 < 0.93,
        "request_id": request_id,
    }


def prediction(request_id: str = "JKJaXmPLvHcESHA=", *, at: float = NOON, **changes) -> Prediction:
    record = Prediction.from_response(body(request_id), variant="main", latency_ms=412.5678, now=at)
    return dataclasses.replace(record, **changes)


@pytest.fixture(scope="module")
def session():
    """One botocore session for the module: it loads the DynamoDB model once."""
    return botocore.session.get_session()


@pytest.fixture
def dynamodb(aws_env, session):
    """A moto DynamoDB with the table as the stack creates it, and a client on it."""
    with mock_aws():
        client = session.create_client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.update_time_to_live(
            TableName=TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
        yield client


@pytest.fixture(params=["sqlite", "dynamodb"])
def clock_and_store(request, tmp_path):
    clock = Clock()
    if request.param == "sqlite":
        store = SqlitePredictionStore(tmp_path / "local-data" / "predictions.sqlite3", clock=clock)
        yield clock, store
        store.close()
    else:
        client = request.getfixturevalue("dynamodb")
        yield clock, DynamoPredictionStore(TABLE, client=client, clock=clock)


@pytest.fixture
def store(clock_and_store):
    return clock_and_store[1]


# -- the record -----------------------------------------------------------------------------


def test_a_record_is_what_the_response_said_and_no_more():
    record = Prediction.from_response(
        body("JKJaXmPLvHcESHA=", top1=0.71), variant="canary", latency_ms=412.5678, now=NOON + 0.25
    )
    assert record == Prediction(
        request_id="JKJaXmPLvHcESHA=",
        variant="canary",
        model_version="3f9a1c2b4d5e",
        label="tabby",
        probability=0.71,
        needs_review=True,
        latency_ms=412.568,
        created_epoch=NOON + 0.25,
        expires_at=int(NOON) + 1 + DEFAULT_RETENTION_DAYS * DAY,
    )
    assert record.created_at == "2026-03-01T12:00:00.250Z"
    assert record.feedback_at is None


def test_a_response_without_classes_records_no_label():
    empty = {"predictions": [], "model": {}, "needs_review": True, "request_id": "r1"}
    record = Prediction.from_response(empty, variant="main", latency_ms=3, now=NOON)
    assert (record.label, record.probability, record.model_version) == (None, None, "unknown")


def test_iso_time_is_utc_with_milliseconds():
    assert iso_time(NOON) == "2026-03-01T12:00:00.000Z"
    assert iso_time(NOON + 59.9996) == "2026-03-01T12:00:59.999Z"


# -- the store contract, for both stores ----------------------------------------------------


def test_a_stored_prediction_reads_back_as_it_was(store):
    record = prediction()
    store.put(record)
    assert list(store.records()) == [record]


def test_feedback_sets_the_verdict_and_returns_the_record(clock_and_store):
    clock, store = clock_and_store
    store.put(prediction())
    clock.now = NOON + 30.5
    updated = store.record_feedback("JKJaXmPLvHcESHA=", "wrong", "tiger cat")
    assert updated == prediction(
        verdict="wrong", feedback_label="tiger cat", feedback_epoch=NOON + 30.5
    )
    assert updated.feedback_at == "2026-03-01T12:00:30.500Z"
    assert list(store.records()) == [updated]


def test_a_second_verdict_replaces_the_first_label_and_all(clock_and_store):
    clock, store = clock_and_store
    store.put(prediction())
    store.record_feedback("JKJaXmPLvHcESHA=", "wrong", "lynx")
    clock.now = NOON + 60
    updated = store.record_feedback("JKJaXmPLvHcESHA=", "correct")
    assert (updated.verdict, updated.feedback_label, updated.feedback_epoch) == (
        "correct",
        None,
        NOON + 60,
    )
    assert list(store.records()) == [updated]


def test_get_reads_one_prediction_with_its_latest_feedback(clock_and_store):
    clock, store = clock_and_store
    store.put(prediction())
    store.put(prediction("other", variant="canary"))
    assert store.get("JKJaXmPLvHcESHA=") == prediction()
    clock.now = NOON + 5
    updated = store.record_feedback("JKJaXmPLvHcESHA=", "wrong", "lynx")
    assert store.get("JKJaXmPLvHcESHA=") == updated
    assert store.get("other").variant == "canary"


def test_get_of_an_unknown_or_expired_id_is_not_found(clock_and_store):
    clock, store = clock_and_store
    store.put(prediction("old", expires_at=int(NOON) + 10))
    with pytest.raises(PredictionNotFound) as caught:
        store.get("never-predicted")
    assert caught.value.request_id == "never-predicted"
    assert store.get("old").request_id == "old"
    clock.now = NOON + 10
    with pytest.raises(PredictionNotFound):
        store.get("old")


def test_feedback_on_an_unknown_id_is_not_found_and_creates_nothing(store):
    store.put(prediction("known"))
    with pytest.raises(PredictionNotFound) as caught:
        store.record_feedback("never-predicted", "correct")
    assert caught.value.request_id == "never-predicted"
    assert "never-predicted" in str(caught.value)
    assert [r.request_id for r in store.records()] == ["known"]


def test_an_expired_prediction_is_gone_for_reads_and_feedback(clock_and_store):
    clock, store = clock_and_store
    store.put(prediction("old", expires_at=int(NOON) + 10))
    store.put(prediction("young"))
    clock.now = NOON + 10
    assert [r.request_id for r in store.records()] == ["young"]
    with pytest.raises(PredictionNotFound):
        store.record_feedback("old", "correct")


def test_a_bad_verdict_or_label_is_refused_before_the_store(store):
    store.put(prediction())
    with pytest.raises(InvalidFeedback):
        store.record_feedback("JKJaXmPLvHcESHA=", "maybe")
    with pytest.raises(InvalidFeedback):
        store.record_feedback("JKJaXmPLvHcESHA=", "correct", "tabby")
    assert list(store.records()) == [prediction()]


def test_records_are_filtered_by_time_window(store):
    for hour in range(5):
        store.put(prediction(f"r{hour}", at=NOON + hour * 3600))
    ids = lambda **window: sorted(r.request_id for r in store.records(**window))  # noqa: E731
    assert ids() == ["r0", "r1", "r2", "r3", "r4"]
    assert ids(since=NOON + 3600) == ["r1", "r2", "r3", "r4"]
    assert ids(until=NOON + 3600) == ["r0"]
    assert ids(since=NOON + 3600, until=NOON + 3 * 3600) == ["r1", "r2"]


def test_a_prediction_put_again_replaces_the_old_one(store):
    store.put(prediction(verdict="wrong"))
    store.put(prediction(variant="canary"))
    assert [(r.variant, r.verdict) for r in store.records()] == [("canary", None)]


def test_every_record_is_read_however_many(store):
    ids = {f"req-{i:03}" for i in range(120)}
    for request_id in ids:
        store.put(prediction(request_id))
    assert {r.request_id for r in store.records()} == ids


# -- the feedback document ------------------------------------------------------------------


def test_a_feedback_document_is_checked_against_the_models_labels():
    assert parse_feedback({"request_id": "JKJaXmPLvHcESHA=", "verdict": "correct"}) == Feedback(
        "JKJaXmPLvHcESHA=", "correct"
    )
    document = {"request_id": "a1b2c3", "verdict": "wrong", "label": "lynx"}
    assert parse_feedback(document, LABELS) == Feedback("a1b2c3", "wrong", "lynx")
    assert parse_feedback({**document, "label": None}, LABELS) == Feedback("a1b2c3", "wrong")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "JSON object"),
        ({"verdict": "correct"}, "request_id"),
        ({"request_id": "", "verdict": "correct"}, "request_id"),
        ({"request_id": "x" * 129, "verdict": "correct"}, "request_id"),
        ({"request_id": "a b", "verdict": "correct"}, "request_id"),
        ({"request_id": "r1\n", "verdict": "correct"}, "request_id"),
        ({"request_id": 7, "verdict": "correct"}, "request_id"),
        ({"request_id": "r1"}, "verdict"),
        ({"request_id": "r1", "verdict": "Correct"}, "verdict"),
        ({"request_id": "r1", "verdict": "wrong", "label": "dog"}, "not one of the model's 4"),
        ({"request_id": "r1", "verdict": "wrong", "label": ""}, "label must be"),
        ({"request_id": "r1", "verdict": "wrong", "label": 281}, "label must be"),
        ({"request_id": "r1", "verdict": "correct", "label": "tabby"}, "'wrong'"),
        ({"request_id": "r1", "verdict": "wrong", "lable": "lynx"}, "'lable'"),
    ],
)
def test_a_bad_feedback_document_says_what_to_fix(document, message):
    with pytest.raises(InvalidFeedback, match=message):
        parse_feedback(document, LABELS)


def test_without_the_label_list_any_reasonable_label_passes():
    assert check_verdict("wrong", "a label the proxy cannot check") == (
        "wrong",
        "a label the proxy cannot check",
    )
    with pytest.raises(InvalidFeedback):
        check_verdict("wrong", "x" * 201)


# -- DynamoDB: what the table holds, pages, failures ----------------------------------------


def test_the_item_has_typed_attributes_and_no_image(dynamodb):
    store = DynamoPredictionStore(TABLE, client=dynamodb, clock=Clock(NOON + 5))
    store.put(prediction())
    store.record_feedback("JKJaXmPLvHcESHA=", "wrong", "lynx")
    item = dynamodb.get_item(TableName=TABLE, Key={PARTITION_KEY: {"S": "JKJaXmPLvHcESHA="}})
    assert item["Item"] == {
        "request_id": {"S": "JKJaXmPLvHcESHA="},
        "variant": {"S": "main"},
        "model_version": {"S": "3f9a1c2b4d5e"},
        "label": {"S": "tabby"},
        "probability": {"N": "0.71"},
        "needs_review": {"BOOL": True},
        "latency_ms": {"N": "412.568"},
        "created_at": {"S": "2026-03-01T12:00:00.000Z"},
        "created_epoch": {"N": "1772366400"},
        "expires_at": {"N": str(int(NOON) + DEFAULT_RETENTION_DAYS * DAY)},
        "verdict": {"S": "wrong"},
        "feedback_label": {"S": "lynx"},
        "feedback_at": {"S": "2026-03-01T12:00:05.000Z"},
        "feedback_epoch": {"N": "1772366405"},
    }


def test_feedback_is_one_conditional_update_of_the_item(session):
    """The condition is what keeps UpdateItem from creating an item for an unknown id."""
    client = session.create_client("dynamodb", region_name=REGION)
    store = DynamoPredictionStore(TABLE, client=client, clock=Clock())
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "update_item",
            service_error_code="ConditionalCheckFailedException",
            http_status_code=400,
            expected_params={
                "TableName": TABLE,
                "Key": {"request_id": {"S": "r1"}},
                "UpdateExpression": "SET #verdict = :verdict, #at = :at, #epoch = :epoch "
                "REMOVE #label",
                "ConditionExpression": "attribute_exists(#id) AND #expires > :now",
                "ExpressionAttributeNames": {
                    "#id": "request_id",
                    "#expires": "expires_at",
                    "#verdict": "verdict",
                    "#label": "feedback_label",
                    "#at": "feedback_at",
                    "#epoch": "feedback_epoch",
                },
                "ExpressionAttributeValues": {
                    ":verdict": {"S": "correct"},
                    ":at": {"S": "2026-03-01T12:00:00.000Z"},
                    ":epoch": {"N": "1772366400"},
                    ":now": {"N": "1772366400"},
                },
                "ReturnValues": "ALL_NEW",
            },
        )
        with pytest.raises(PredictionNotFound):
            store.record_feedback("r1", "correct")


def test_a_scan_follows_every_page(dynamodb, session):
    """moto answers in one page below 1 MB: a stubbed client answers in two."""
    first, second = prediction("r1"), prediction("r2")
    writer = DynamoPredictionStore(TABLE, client=dynamodb)
    items = []
    for record in (first, second):
        writer.put(record)
        key = {PARTITION_KEY: {"S": record.request_id}}
        items.append(dynamodb.get_item(TableName=TABLE, Key=key)["Item"])
    client = session.create_client("dynamodb", region_name=REGION)
    store = DynamoPredictionStore(TABLE, client=client, clock=Clock())
    with Stubber(client) as stubber:
        stubber.add_response(
            "scan", {"Items": [items[0]], "LastEvaluatedKey": {"request_id": {"S": "r1"}}}
        )
        stubber.add_response(
            "scan",
            {"Items": [items[1]]},
            expected_params={
                "TableName": TABLE,
                "FilterExpression": "#expires > :now",
                "ExpressionAttributeNames": {"#expires": "expires_at"},
                "ExpressionAttributeValues": {":now": {"N": "1772366400"}},
                "ExclusiveStartKey": {"request_id": {"S": "r1"}},
            },
        )
        assert list(store.records()) == [first, second]


def test_a_missing_table_is_a_store_error_that_names_it(dynamodb):
    store = DynamoPredictionStore("no-such-table", client=dynamodb)
    with pytest.raises(StoreError, match=r"no-such-table.*ResourceNotFoundException"):
        store.put(prediction())
    with pytest.raises(StoreError, match="no-such-table"):
        list(store.records())


def test_an_item_the_proxy_did_not_write_is_named(dynamodb):
    dynamodb.put_item(
        TableName=TABLE,
        Item={"request_id": {"S": "stray"}, "expires_at": {"N": str(int(NOON) + DAY)}},
    )
    store = DynamoPredictionStore(TABLE, client=dynamodb, clock=Clock())
    with pytest.raises(StoreError, match=r"'stray'.*no created_epoch, latency_ms"):
        list(store.records())


def test_without_a_region_the_error_says_how_to_give_one(aws_env):
    aws_env.delenv("AWS_DEFAULT_REGION")
    aws_env.delenv("AWS_REGION", raising=False)
    with pytest.raises(StoreError, match="--region"):
        DynamoPredictionStore(TABLE).put(prediction())


# -- SQLite: the file, restarts, threads ----------------------------------------------------


def test_the_lambda_never_loads_sqlite3():
    """Only the local runtime's store needs it; the Lambda's cold start would pay for it."""
    probe = "import sys, proxy.predictions; print('sqlite3' in sys.modules)"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "False"


def test_the_local_default_is_under_build_which_git_ignores():
    assert DEFAULT_SQLITE_PATH.parts == ("build", "local-data", "predictions.sqlite3")


def test_the_database_outlives_the_store_and_uses_wal(tmp_path):
    path = tmp_path / "data" / "predictions.sqlite3"
    with SqlitePredictionStore(path, clock=Clock()) as store:
        store.put(prediction())
        store.record_feedback("JKJaXmPLvHcESHA=", "correct")
    with SqlitePredictionStore(path, clock=Clock()) as reopened:
        assert [r.verdict for r in reopened.records()] == ["correct"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        columns = [row[1] for row in db.execute("PRAGMA table_info(predictions)")]
    assert columns == [
        "request_id", "variant", "model_version", "label", "probability", "needs_review",
        "latency_ms", "created_at", "created_epoch", "expires_at", "verdict",
        "feedback_label", "feedback_at", "feedback_epoch",
    ]  # fmt: skip


def test_opening_the_file_drops_expired_rows(tmp_path):
    path = tmp_path / "predictions.sqlite3"
    with SqlitePredictionStore(path, clock=Clock()) as store:
        store.put(prediction("old", expires_at=int(NOON) + 10))
        store.put(prediction("young"))
    with SqlitePredictionStore(path, clock=Clock(NOON + 20)):
        pass
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT request_id FROM predictions").fetchall() == [("young",)]


def test_threads_write_and_read_at_once_and_another_process_reads_meanwhile(tmp_path):
    """The local runtime's thread pool shares one store; the report opens its own."""
    path = tmp_path / "predictions.sqlite3"
    store = SqlitePredictionStore(path, clock=Clock())
    reader = SqlitePredictionStore(path, clock=Clock())
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(40):
                request_id = f"t{thread}-{i}"
                store.put(prediction(request_id))
                store.record_feedback(request_id, "correct" if i % 2 else "wrong")
                list(reader.records(since=NOON))
        except BaseException as error:  # collected, then asserted in the main thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    records = list(reader.records())
    assert len(records) == 8 * 40
    assert sum(r.verdict == "correct" for r in records) == 8 * 20
    store.close()
    reader.close()


def test_a_path_that_cannot_be_a_database_is_a_store_error(tmp_path):
    (tmp_path / "predictions.sqlite3").mkdir()
    with pytest.raises(StoreError, match="cannot open"):
        SqlitePredictionStore(tmp_path / "predictions.sqlite3")
    (tmp_path / "text").write_bytes(b"not a database, " * 100)
    with pytest.raises(StoreError, match="cannot open"):
        SqlitePredictionStore(tmp_path / "text")
