"""Feedback over real HTTP through the whole `python -m local` (the site's one origin, the
real proxy, the real model server): predict, judge, be refused for each mistake, survive a
restart, and report per variant from the SQLite file the runtime kept."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from local.lambda_context import FUNCTION_NAME
from local.process import LocalRuntime, local_runtime
from tests.conftest import ROOT
from tests.local.test_api_errors import assert_error, photo_jpeg
from tests.proxy.test_metrics import emf_problems, metric_values

pytestmark = pytest.mark.slow

CLIENT_ID = "q7Yh2KpX_w9-LmN3cRt5Vb"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-data")


@pytest.fixture(scope="module")
def runtime(model_artifact: Path, data_dir: Path) -> Iterator[LocalRuntime]:
    with local_runtime(model_artifact, data_dir=data_dir) as running:
        yield running


def predict(runtime: LocalRuntime) -> dict:
    response = httpx.post(
        f"{runtime.api_url}/predict",
        content=photo_jpeg(),
        headers={"content-type": "image/jpeg", "x-client-id": CLIENT_ID},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def feedback(runtime: LocalRuntime, document: object, **options) -> httpx.Response:
    content = document if isinstance(document, bytes) else json.dumps(document).encode()
    options.setdefault("headers", {"content-type": "application/json"})
    return httpx.post(f"{runtime.api_url}/feedback", content=content, timeout=30, **options)


def stored(runtime: LocalRuntime, request_id: str) -> tuple:
    with sqlite3.connect(runtime.predictions_file) as db:
        return db.execute(
            "SELECT variant, model_version, verdict, feedback_label FROM predictions "
            "WHERE request_id = ?",
            (request_id,),
        ).fetchone()


def log_records(runtime: LocalRuntime) -> list[dict]:
    return [json.loads(line) for line in runtime.lines if line.startswith('{"level"')]


def test_predict_then_feedback_on_its_request_id(runtime):
    body = predict(runtime)
    request_id, version = body["request_id"], body["model"]["version"]
    assert body["model"]["variant"] == "main"
    assert stored(runtime, request_id) == ("main", version, None, None)

    response = feedback(runtime, {"request_id": request_id, "verdict": "correct"})
    assert response.status_code == 200, response.text
    assert response.json()["feedback"] == {
        "request_id": request_id,
        "verdict": "correct",
        "label": None,
    }
    assert response.headers["x-request-id"] == response.json()["request_id"] != request_id
    assert stored(runtime, request_id)[2:] == ("correct", None)


def test_wrong_with_a_label_from_the_models_labels_replaces_the_verdict(runtime):
    body = predict(runtime)
    request_id, version = body["request_id"], body["model"]["version"]
    labels = httpx.get(f"{runtime.api_url}/labels", params={"version": version})
    assert labels.status_code == 200, labels.text
    assert labels.headers["cache-control"].startswith("private, max-age=")
    names = labels.json()["labels"]
    assert labels.json()["model_version"] == version
    assert len(names) == 1000, "the archive's ImageNet labels, written by the runtime"
    assert feedback(runtime, {"request_id": request_id, "verdict": "correct"}).status_code == 200
    document = {"request_id": request_id, "verdict": "wrong", "label": names[281]}
    assert feedback(runtime, document).status_code == 200
    assert stored(runtime, request_id)[2:] == ("wrong", names[281])
    written = runtime.data_dir / "model_labels" / f"{version}.json"
    assert json.loads(written.read_text(encoding="utf-8")) == names


def test_each_mistake_is_refused_with_its_status_and_json_error(runtime):
    request_id = predict(runtime)["request_id"]
    assert_error(
        feedback(runtime, {"request_id": "never-predicted-id", "verdict": "correct"}),
        404,
        "prediction_not_found",
    )
    assert_error(
        feedback(runtime, {"request_id": request_id, "verdict": "great"}), 400, "invalid_feedback"
    )
    assert_error(
        feedback(runtime, {"request_id": request_id, "verdict": "wrong", "label": "hot dog"}),
        400,
        "unknown_label",
    )
    oversized = {"request_id": request_id, "verdict": "wrong", "label": "x" * 3000}
    assert_error(feedback(runtime, oversized), 413, "payload_too_large")
    assert_error(feedback(runtime, b"{not json"), 400, "invalid_json")
    wrong_method = httpx.get(f"{runtime.api_url}/feedback", params={"request_id": request_id})
    assert_error(wrong_method, 405, "method_not_allowed")
    assert wrong_method.headers["allow"] == "POST"
    assert_error(httpx.get(f"{runtime.api_url}/labels"), 400, "invalid_version")
    assert_error(
        httpx.get(f"{runtime.api_url}/labels", params={"version": "0123456789ab"}),
        404,
        "labels_not_found",
    )
    assert stored(runtime, request_id)[2:] == (None, None), "nothing refused was stored"


def test_the_direct_port_routes_feedback_and_refuses_it_without_the_origin_header(runtime):
    request_id = predict(runtime)["request_id"]
    direct = httpx.post(
        f"{runtime.direct_url}/feedback",
        json={"request_id": request_id, "verdict": "correct"},
        timeout=30,
    )
    assert_error(direct, 403, "forbidden")
    assert_error(httpx.get(f"{runtime.direct_url}/labels?version=x"), 403, "forbidden")
    assert stored(runtime, request_id)[2] is None


def test_the_log_lines_carry_valid_metrics_per_variant(runtime):
    request_id = predict(runtime)["request_id"]
    feedback(runtime, {"request_id": request_id, "verdict": "wrong"})
    # This verdict's own line: an earlier test's change of verdict logs FeedbackWrong too.
    assert runtime.logged(f'"feedback_for": "{request_id}"')
    records = log_records(runtime)
    with_metrics = [record for record in records if "_aws" in record]
    predictions = [r for r in with_metrics if r["route"] == "predict"]
    verdicts = [
        r for r in with_metrics if r["route"] == "feedback" and r.get("feedback_for") == request_id
    ]
    assert predictions
    assert verdicts
    for record in with_metrics:
        assert emf_problems(record) == [], record
        assert (record["Variant"], record["Service"]) == ("main", FUNCTION_NAME)
    assert metric_values(predictions[-1])["Requests"] == ("Count", 1)
    assert metric_values(verdicts[-1]) == {
        "FeedbackCorrect": ("Count", 0),
        "FeedbackWrong": ("Count", 1),
    }
    refused = [r for r in records if r.get("route") == "feedback" and r["status"] != 200]
    assert refused
    assert not [r for r in refused if "_aws" in r], "a refused verdict counts nothing"
    assert CLIENT_ID not in runtime.output, "the client id is never logged"


def test_feedback_survives_a_restart(runtime, model_artifact, data_dir):
    request_id = predict(runtime)["request_id"]
    runtime.stop()
    with local_runtime(model_artifact, data_dir=data_dir) as restarted:
        response = feedback(restarted, {"request_id": request_id, "verdict": "wrong"})
        assert response.status_code == 200, response.text
        assert stored(restarted, request_id)[2] == "wrong"
        # The second run records too, in the same file.
        assert stored(restarted, predict(restarted)["request_id"])[0] == "main"


def test_the_report_prints_the_runs_numbers(data_dir):
    """After the tests above (predictions and feedback in two runs): the report's numbers
    are the file's own."""
    database = data_dir / "predictions.sqlite3"
    with sqlite3.connect(database) as db:
        requests, correct, wrong, version = db.execute(
            "SELECT COUNT(*), SUM(verdict = 'correct'), SUM(verdict = 'wrong'), "
            "MIN(model_version) FROM predictions"
        ).fetchone()
    assert requests >= 7
    assert correct >= 1
    assert wrong >= 2

    def report(*extra: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "admin.report", "--sqlite", str(database), *extra],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout

    (group,) = json.loads(report("--json"))["groups"]
    assert (group["variant"], group["model_version"]) == ("main", version)
    assert (group["requests"], group["correct"], group["wrong"]) == (requests, correct, wrong)
    assert group["accuracy"] == round(correct / (correct + wrong), 4)
    assert group["needs_review_rate"] == 1.0, "random weights never reach the threshold"

    header, row = report().splitlines()
    assert header.split()[:3] == ["VARIANT", "MODEL", "VERSION"]
    cells = row.split()
    assert cells[:4] == ["main", version, str(requests), str(correct + wrong)]
    assert f"{correct / (correct + wrong):.1%}" in row
