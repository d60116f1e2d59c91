"""`POST /api/feedback` and `GET /api/labels` through `PredictProxy.handle`: every status
each can answer, what is stored, what is logged (with the feedback metrics), the labels
files, and where the store comes from."""

from __future__ import annotations

import base64
import importlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from machine.predictions_sqlite import SqlitePredictionStore
from machine.proxy_stores import LOCAL_STORES
from proxy.config import ConfigError, ProxyConfig, load_config
from proxy.feedback import LABELS_CACHE_CONTROL, MAX_FEEDBACK_BYTES, SOMETHING_ELSE
from proxy.labels import (
    LabelsUnavailable,
    ModelLabels,
    is_model_version,
    labels_file,
    write_labels_file,
)
from proxy.local_stores import supply
from proxy.predictions import DynamoPredictionStore, StoreError, open_store
from shared.labels import MODEL_LABELS_DIR
from tests.proxy.photos import encoded
from tests.proxy.support import (
    ENDPOINT,
    ORIGIN_SECRET,
    FakeClock,
    LambdaContext,
    LogLines,
    ScriptedRuntime,
    body_of,
    build_proxy,
    http_event,
    prediction_payload,
    via_cloudfront,
)
from tests.proxy.test_metrics import emf_problems, metric_values

ROOT = Path(__file__).resolve().parents[2]
VERSION = "3f9a1c2b"  # prediction_payload's
LABELS = ["tabby", "tiger cat", "Egyptian cat", "lynx", "Persian cat", "golden retriever"]
PREDICTED = "JKJaXmPLvHcESHA="


def feedback_event(document: Any, *, method: str = "POST", **options: Any) -> dict:
    body = document if isinstance(document, str | bytes) else json.dumps(document)
    options.setdefault("request_id", "FbKaXmPLvHcESHB=")
    return http_event(body, "application/json", method=method, path="/api/feedback", **options)


def labels_event(version: str | None, *, method: str = "GET", **options: Any) -> dict:
    event = http_event(None, None, method=method, path="/api/labels", **options)
    if version is not None:
        event["rawQueryString"] = f"version={version}"
        event["queryStringParameters"] = {"version": version}
    return event


class Harness:
    """A proxy with a SQLite store and a labels directory, one prediction made."""

    def __init__(self, tmp_path: Path, *, store: Any = "sqlite", labels: bool = True, **config):
        self.clock = FakeClock()
        self.runtime = ScriptedRuntime(self.clock, [prediction_payload()])
        self.logs = LogLines()
        if store == "sqlite":
            store = SqlitePredictionStore(tmp_path / "predictions.sqlite3")
        self.store = store
        directory = tmp_path / "model_labels"
        write_labels_file(directory, VERSION, LABELS)
        self.labels = ModelLabels(directory) if labels else None
        self.config = config

    def call(self, event: dict) -> dict:
        proxy = build_proxy(
            self.runtime,
            self.clock,
            self.clock.sleep,
            store=self.store,
            labels=self.labels,
            **self.config,
        )
        return proxy.handle(event, LambdaContext(self.clock))

    def predict(self, request_id: str = PREDICTED) -> dict:
        response = self.call(http_event(encoded("chelsea"), request_id=request_id))
        assert response["statusCode"] == 200
        return body_of(response)

    def records(self) -> list[dict]:
        return self.logs.records()


@pytest.fixture
def harness(tmp_path):
    made = Harness(tmp_path)
    made.predict()
    yield made
    made.store.close()


def assert_error(response: dict, status: int, code: str) -> dict:
    assert response["statusCode"] == status, response
    body = body_of(response)
    assert body["error"]["code"] == code, body
    assert body["error"]["message"].endswith((".", ")")), body
    assert body["request_id"] == response["headers"]["x-request-id"]
    return body


# -- 200 ------------------------------------------------------------------------------------


def test_a_verdict_is_stored_and_answered(harness):
    response = harness.call(feedback_event({"request_id": PREDICTED, "verdict": "correct"}))
    assert response["statusCode"] == 200
    assert response["headers"]["cache-control"] == "no-store"
    assert body_of(response) == {
        "feedback": {"request_id": PREDICTED, "verdict": "correct", "label": None},
        "request_id": "FbKaXmPLvHcESHB=",
    }
    stored = harness.store.get(PREDICTED)
    assert (stored.verdict, stored.feedback_label, stored.variant) == ("correct", None, "main")


def test_wrong_with_a_label_of_the_model_and_a_second_verdict_replaces_the_first(harness):
    wrong = {"request_id": PREDICTED, "verdict": "wrong", "label": "golden retriever"}
    assert body_of(harness.call(feedback_event(wrong)))["feedback"] == wrong
    assert harness.store.get(PREDICTED).feedback_label == "golden retriever"
    harness.call(feedback_event({"request_id": PREDICTED, "verdict": "correct"}))
    stored = harness.store.get(PREDICTED)
    assert (stored.verdict, stored.feedback_label) == ("correct", None)


def test_the_content_type_does_not_matter(harness):
    """curl -d sends form data's type; the body is JSON all the same."""
    event = feedback_event({"request_id": PREDICTED, "verdict": "wrong"})
    event["headers"]["content-type"] = "application/x-www-form-urlencoded"
    assert harness.call(event)["statusCode"] == 200
    encoded_body = base64.b64encode(event["body"].encode()).decode()
    event = dict(event, body=encoded_body, isBase64Encoded=True)
    assert harness.call(event)["statusCode"] == 200


def test_the_log_line_says_what_was_judged_with_valid_feedback_metrics(harness):
    harness.call(feedback_event({"request_id": PREDICTED, "verdict": "wrong", "label": "lynx"}))
    record = harness.records()[-1]
    assert emf_problems(record) == []
    assert metric_values(record) == {
        "FeedbackCorrect": ("Count", 0),
        "FeedbackWrong": ("Count", 1),
    }
    assert {key: record[key] for key in record if not key[0].isupper() and key != "_aws"} == {
        "level": "INFO",
        "event": "request",
        "request_id": "FbKaXmPLvHcESHB=",
        "lambda_request_id": "c6af9ac6-7b61-11e6-9a41-93e812345678",
        "via": "execute-api",
        "viewer_ip": "203.0.113.7",
        "route": "feedback",
        "access": "open",
        "method": "POST",
        "feedback_for": PREDICTED,
        "verdict": "wrong",
        "variant": "main",
        "model_version": VERSION,
        "feedback_label": "lynx",
        "status": 200,
        "total_ms": 0.0,
    }
    assert (record["Variant"], record["Service"]) == ("main", "image-classifier-dev-proxy")


def feedback_sums(harness: Harness) -> dict[str, float]:
    """The feedback metrics of every log line, summed as the dashboard's metric math does."""
    sums = {"FeedbackCorrect": 0.0, "FeedbackWrong": 0.0}
    for record in harness.records():
        for name in sums:
            sums[name] += record.get(name, 0)
    return sums


def test_a_label_after_no_counts_the_prediction_once(harness):
    """The page sends "wrong" on No and "wrong" again with the label: one wrong prediction."""
    harness.call(feedback_event({"request_id": PREDICTED, "verdict": "wrong"}))
    harness.call(feedback_event({"request_id": PREDICTED, "verdict": "wrong", "label": "lynx"}))
    harness.call(
        feedback_event({"request_id": PREDICTED, "verdict": "wrong", "label": SOMETHING_ELSE})
    )
    assert feedback_sums(harness) == {"FeedbackCorrect": 0, "FeedbackWrong": 1}
    assert all(emf_problems(record) == [] for record in harness.records() if "_aws" in record)


def test_a_changed_verdict_moves_the_count_as_the_store_replaces_it(harness):
    harness.call(feedback_event({"request_id": PREDICTED, "verdict": "correct"}))
    assert feedback_sums(harness) == {"FeedbackCorrect": 1, "FeedbackWrong": 0}
    harness.call(feedback_event({"request_id": PREDICTED, "verdict": "wrong", "label": "lynx"}))
    assert metric_values(harness.records()[-1]) == {
        "FeedbackCorrect": ("Count", -1),
        "FeedbackWrong": ("Count", 1),
    }
    assert feedback_sums(harness) == {"FeedbackCorrect": 0, "FeedbackWrong": 1}
    harness.call(feedback_event({"request_id": PREDICTED, "verdict": "correct"}))
    assert feedback_sums(harness) == {"FeedbackCorrect": 1, "FeedbackWrong": 0}
    assert harness.store.get(PREDICTED).verdict == "correct"


# -- refusals -------------------------------------------------------------------------------


def test_an_unknown_id_is_404_and_creates_nothing(harness):
    response = harness.call(feedback_event({"request_id": "never-predicted", "verdict": "wrong"}))
    assert_error(response, 404, "prediction_not_found")
    assert [r.request_id for r in harness.store.records()] == [PREDICTED]
    assert not set(harness.records()[-1]) & {"_aws", "FeedbackWrong"}


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"request_id": PREDICTED, "verdict": "maybe"}, "verdict must be"),
        ({"request_id": PREDICTED}, "verdict must be"),
        ({"request_id": PREDICTED, "verdict": "correct", "label": "lynx"}, "with the verdict"),
        ({"request_id": PREDICTED, "verdict": "wrong", "label": ""}, "label must be"),
        ({"request_id": PREDICTED, "verdict": "wrong", "comment": "hi"}, "Unknown field"),
        ({"verdict": "wrong"}, "request_id must be"),
        ({"request_id": "a b", "verdict": "wrong"}, "request_id must be"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_a_bad_document_is_400_invalid_feedback(harness, document, words):
    body = assert_error(harness.call(feedback_event(document)), 400, "invalid_feedback")
    assert words in body["error"]["message"]
    assert harness.store.get(PREDICTED).verdict is None


def test_a_label_the_model_does_not_have_is_400_unknown_label(harness):
    document = {"request_id": PREDICTED, "verdict": "wrong", "label": "hot dog"}
    body = assert_error(harness.call(feedback_event(document)), 400, "unknown_label")
    message = body["error"]["message"]
    assert "'hot dog'" in message
    assert VERSION in message
    assert "/api/labels" in message
    assert harness.store.get(PREDICTED).verdict is None


@pytest.mark.parametrize("labels", [True, False], ids=["with-labels", "without-labels"])
def test_something_else_is_taken_for_any_model(tmp_path, labels):
    """The web UI's "Something else": the image is none of the model's labels."""
    harness = Harness(tmp_path, labels=labels)
    harness.predict()
    document = {"request_id": PREDICTED, "verdict": "wrong", "label": SOMETHING_ELSE}
    response = harness.call(feedback_event(document))
    assert body_of(response)["feedback"] == document
    assert harness.store.get(PREDICTED).feedback_label == "(something else)"
    harness.store.close()


def test_without_the_versions_labels_file_a_label_is_refused_and_logged(tmp_path):
    harness = Harness(tmp_path)
    harness.runtime.script = [prediction_payload(version="999999999999")]
    harness.predict()
    document = {"request_id": PREDICTED, "verdict": "wrong", "label": "tabby"}
    body = assert_error(harness.call(feedback_event(document)), 400, "labels_unavailable")
    assert "999999999999" in body["error"]["message"]
    assert "without one" in body["error"]["message"]
    warning = next(r for r in harness.records() if r["event"] == "model_labels_missing")
    assert warning["level"] == "WARNING"
    assert warning["model_version"] == "999999999999"
    assert "999999999999.json does not exist" in warning["message"]
    # The verdict alone is still taken.
    verdict = {"request_id": PREDICTED, "verdict": "wrong"}
    assert harness.call(feedback_event(verdict))["statusCode"] == 200


def test_without_a_labels_directory_a_label_is_refused(tmp_path):
    harness = Harness(tmp_path, labels=False)
    harness.predict()
    document = {"request_id": PREDICTED, "verdict": "wrong", "label": "tabby"}
    assert_error(harness.call(feedback_event(document)), 400, "labels_unavailable")
    assert any("MODEL_LABELS_DIR is not set" in r.get("message", "") for r in harness.records())


def test_an_unreadable_labels_file_is_an_error_in_the_log(tmp_path):
    harness = Harness(tmp_path)
    harness.predict()
    labels_file(tmp_path / "model_labels", VERSION).write_text('{"not": "a list"}')
    harness.labels = ModelLabels(tmp_path / "model_labels")
    document = {"request_id": PREDICTED, "verdict": "wrong", "label": "tabby"}
    assert_error(harness.call(feedback_event(document)), 400, "labels_unavailable")
    error = next(r for r in harness.records() if r["event"] == "model_labels_unreadable")
    assert error["level"] == "ERROR"


@pytest.mark.parametrize(("body", "code"), [("{not json", "invalid_json"), ("", "empty_body")])
def test_a_body_that_is_not_json_is_400(harness, body, code):
    assert_error(harness.call(feedback_event(body)), 400, code)


def test_an_oversized_body_is_413_before_it_is_read(harness):
    document = {"request_id": PREDICTED, "verdict": "wrong", "label": "x" * MAX_FEEDBACK_BYTES}
    body = assert_error(harness.call(feedback_event(document)), 413, "payload_too_large")
    assert body["error"]["limit_bytes"] == MAX_FEEDBACK_BYTES, "a client words its message from it"
    raw = json.dumps(document).encode()
    event = feedback_event(base64.b64encode(raw).decode(), base64_encoded=True)
    assert_error(harness.call(event), 413, "payload_too_large")
    padded = json.dumps({"request_id": PREDICTED, "verdict": "wrong"}).ljust(MAX_FEEDBACK_BYTES)
    assert harness.call(feedback_event(padded))["statusCode"] == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_with_allow_post(harness, method):
    response = harness.call(feedback_event(None, method=method))
    assert_error(response, 405, "method_not_allowed")
    assert response["headers"]["allow"] == "POST"
    assert "use POST /api/feedback" in body_of(response)["error"]["message"]


def test_without_a_store_feedback_is_404_feedback_disabled(tmp_path):
    harness = Harness(tmp_path, store=None)
    harness.predict()
    response = harness.call(feedback_event({"request_id": PREDICTED, "verdict": "correct"}))
    assert_error(response, 404, "feedback_disabled")


class UnreachableStore:
    def get(self, request_id: str):
        raise StoreError("DynamoDB get_item on t: AccessDeniedException: no")


def test_a_store_that_fails_is_503_with_retry_after(tmp_path):
    harness = Harness(tmp_path, store=UnreachableStore())
    response = harness.call(feedback_event({"request_id": PREDICTED, "verdict": "correct"}))
    assert_error(response, 503, "feedback_unavailable")
    assert response["headers"]["retry-after"] == "5"
    record = harness.records()[-1]
    assert (record["level"], record["detail"]) == (
        "WARNING",
        "DynamoDB get_item on t: AccessDeniedException: no",
    )


def test_feedback_is_behind_the_same_access_check(tmp_path):
    harness = Harness(tmp_path, origin_secret=ORIGIN_SECRET)
    harness.predict_event = via_cloudfront(http_event(encoded("chelsea"), request_id=PREDICTED))
    assert harness.call(harness.predict_event)["statusCode"] == 200
    document = {"request_id": PREDICTED, "verdict": "correct"}
    assert_error(harness.call(feedback_event(document)), 403, "forbidden")
    assert harness.store.get(PREDICTED).verdict is None
    assert harness.call(via_cloudfront(feedback_event(document)))["statusCode"] == 200


# -- GET /api/labels ------------------------------------------------------------------------


def test_labels_of_a_version_are_listed_and_may_be_kept(harness):
    response = harness.call(labels_event(VERSION))
    assert response["statusCode"] == 200
    assert response["headers"]["cache-control"] == LABELS_CACHE_CONTROL
    assert body_of(response) == {
        "model_version": VERSION,
        "labels": LABELS,
        "request_id": "JKJaXmPLvHcESHA=",
    }
    record = harness.records()[-1]
    assert (record["route"], record["model_version"], record["status"]) == ("labels", VERSION, 200)
    assert "_aws" not in record


@pytest.mark.parametrize("version", [None, "", "../../etc/passwd", ".hidden", "a/b", "x" * 129])
def test_labels_need_a_version_that_is_a_file_name(harness, version):
    assert_error(harness.call(labels_event(version)), 400, "invalid_version")


def test_labels_of_an_unknown_version_are_404(harness, tmp_path):
    assert_error(harness.call(labels_event("0123456789ab")), 404, "labels_not_found")
    no_directory = Harness(tmp_path / "other", labels=False)
    assert_error(no_directory.call(labels_event(VERSION)), 404, "labels_not_found")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_labels_are_get_only(harness, method):
    response = harness.call(labels_event(VERSION, method=method))
    assert_error(response, 405, "method_not_allowed")
    assert response["headers"]["allow"] == "GET"


def test_labels_are_behind_the_access_check(tmp_path):
    harness = Harness(tmp_path, origin_secret=ORIGIN_SECRET)
    assert_error(harness.call(labels_event(VERSION)), 403, "forbidden")
    assert harness.call(via_cloudfront(labels_event(VERSION)))["statusCode"] == 200


# -- the labels files -----------------------------------------------------------------------


def test_a_labels_file_is_a_json_array_named_after_its_version(tmp_path):
    path = write_labels_file(tmp_path / MODEL_LABELS_DIR, "3f9a1c2b4d5e", ["é", "b"])
    assert path == tmp_path / "model_labels" / "3f9a1c2b4d5e.json"
    assert json.loads(path.read_text(encoding="utf-8")) == ["é", "b"]
    labels = ModelLabels(tmp_path / "model_labels").get("3f9a1c2b4d5e")
    assert labels.labels == ("é", "b")
    assert "é" in labels
    assert "c" not in labels


def test_labels_are_read_once_and_kept(tmp_path):
    path = write_labels_file(tmp_path, VERSION, LABELS)
    labels = ModelLabels(tmp_path)
    first = labels.get(VERSION)
    path.unlink()
    assert labels.get(VERSION) is first


def test_a_missing_file_is_looked_for_again(tmp_path):
    labels = ModelLabels(tmp_path)
    with pytest.raises(LabelsUnavailable) as caught:
        labels.get(VERSION)
    assert caught.value.missing
    write_labels_file(tmp_path, VERSION, LABELS)
    assert len(labels.get(VERSION)) == len(LABELS)


@pytest.mark.parametrize("content", [b"[]", b'["a", 2]', b'{"a": 1}', b"\xff", b'["a", ""]'])
def test_a_labels_file_that_is_not_an_array_of_labels_is_unusable(tmp_path, content):
    (tmp_path / f"{VERSION}.json").write_bytes(content)
    with pytest.raises(LabelsUnavailable) as caught:
        ModelLabels(tmp_path).get(VERSION)
    assert not caught.value.missing


def test_versions_are_plain_file_names():
    assert is_model_version("3f9a1c2b4d5e")
    for bad in ("", "..", "../x", "a/b", "a\\b", ".x", None, 12):
        assert not is_model_version(bad)
    with pytest.raises(ValueError, match="not a model version"):
        labels_file("/tmp", "../secrets")


# -- where the store comes from -------------------------------------------------------------


def test_the_store_follows_the_configuration(tmp_path):
    assert open_store(ProxyConfig(ENDPOINT)) is None
    table = open_store(ProxyConfig(ENDPOINT, predictions_table="ic-dev-predictions"))
    assert isinstance(table, DynamoPredictionStore)
    assert table.table == "ic-dev-predictions"
    path = tmp_path / "data" / "predictions.sqlite3"
    config = ProxyConfig(ENDPOINT, predictions_file=str(path))
    with open_store(config, local=LOCAL_STORES) as local:
        assert isinstance(local, SqlitePredictionStore)
        assert path.is_file()


def test_a_file_that_cannot_be_a_database_fails_the_configuration(tmp_path):
    (tmp_path / "a-file").write_text("")
    config = ProxyConfig(ENDPOINT, predictions_file=str(tmp_path / "a-file" / "db"))
    with pytest.raises(ConfigError, match=r"^PREDICTIONS_FILE="):
        open_store(config, local=LOCAL_STORES)


def test_a_file_is_opened_only_with_the_stores_a_machine_supplied(tmp_path):
    """On Lambda nothing is supplied: a PREDICTIONS_FILE there names the variable to set."""
    path = tmp_path / "predictions.sqlite3"
    with pytest.raises(ConfigError, match=r"^PREDICTIONS_FILE=.*PREDICTIONS_TABLE"):
        open_store(ProxyConfig(ENDPOINT, predictions_file=str(path)))
    assert not path.exists()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"PREDICTIONS_TABLE": "ic-dev-predictions", "PREDICTIONS_FILE": "x"},
            "PREDICTIONS_TABLE and ",
        ),
        ({"PREDICTIONS_TABLE": "no spaces please"}, "PREDICTIONS_TABLE="),
        ({"VARIANTS": "[]"}, "VARIANTS"),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f" * 1025}, "AWS_LAMBDA_FUNCTION_NAME"),
    ],
)
def test_bad_store_or_variant_settings_name_the_variable(environ, message):
    with pytest.raises(ConfigError, match=f"^{message}"):
        load_config({"SAGEMAKER_ENDPOINT_NAME": ENDPOINT, **environ})


def test_the_new_variables_are_read():
    variants = '[{"name": "main", "weight": 9, "endpoint": "ic-a"}, {"name": "b", "weight": 1, "endpoint": "ic-b"}]'  # noqa: E501
    config = load_config(
        {
            "VARIANTS": variants,
            "PREDICTIONS_TABLE": "ic-dev-predictions",
            "MODEL_LABELS_DIR": "/var/task/model_labels",
            "AWS_LAMBDA_FUNCTION_NAME": "ic-dev-proxy",
        }
    )
    assert config.endpoint_name == "ic-a", "VARIANTS alone is enough"
    assert [v.name for v in config.variant_set.variants] == ["main", "b"]
    assert config.predictions_table == "ic-dev-predictions"
    assert config.model_labels_dir == "/var/task/model_labels"
    assert config.metrics_service == "ic-dev-proxy"
    assert config.records_predictions
    plain = load_config({"SAGEMAKER_ENDPOINT_NAME": ENDPOINT})
    assert [(v.name, v.endpoint) for v in plain.variant_set.variants] == [("main", ENDPOINT)]
    assert (plain.metrics_service, plain.records_predictions) == ("image-classifier", False)


def _import_handler(monkeypatch):
    """The handler module as the local runtime loads it: this machine's stores supplied."""
    sys.modules.pop("proxy.handler", None)
    supply(LOCAL_STORES)
    try:
        return importlib.import_module("proxy.handler")
    finally:
        supply(None)
        sys.modules.pop("proxy.handler", None)


def test_the_lambda_with_a_table_never_loads_sqlite3(aws_env):
    probe = "import sys, proxy.handler; print('sqlite3' in sys.modules)"
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "SAGEMAKER_ENDPOINT_NAME": ENDPOINT,
        "PREDICTIONS_TABLE": "ic-dev-predictions",
        "MODEL_LABELS_DIR": str(ROOT / "nowhere"),
    }
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = result.stdout.splitlines()
    assert lines[-1] == "False"
    warning = json.loads(lines[0])
    assert (warning["level"], warning["event"]) == ("WARNING", "model_labels_missing")


def test_the_handler_records_to_predictions_file_and_takes_feedback(aws_env, tmp_path):
    path = tmp_path / "local-data" / "predictions.sqlite3"
    aws_env.setenv("PREDICTIONS_FILE", str(path))
    aws_env.setenv("MODEL_LABELS_DIR", str(tmp_path / "model_labels"))
    write_labels_file(tmp_path / "model_labels", VERSION, LABELS)
    module = _import_handler(aws_env)
    client = module.PROXY.invoker.clients(20.0)
    data = prediction_payload()
    with Stubber(client) as stubber:
        stubber.add_response(
            "invoke_endpoint", {"Body": StreamingBody(io.BytesIO(data), len(data))}
        )
        predicted = module.handler(http_event(encoded("chelsea")), LambdaContext(time.monotonic))
    request_id = body_of(predicted)["request_id"]
    document = {"request_id": request_id, "verdict": "wrong", "label": "lynx"}
    answer = module.handler(feedback_event(document), LambdaContext(time.monotonic))
    assert answer["statusCode"] == 200, answer
    module.PROXY.store.close()
    with SqlitePredictionStore(path) as store:
        assert store.get(request_id).feedback_label == "lynx"
