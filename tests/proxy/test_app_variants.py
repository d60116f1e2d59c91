"""Variants end to end through `PredictProxy.handle`: the weighted split, sticky clients, a
weight of 0, a variant's failure named, the record of each prediction, and the metrics.

The split counts draws of fixed seeds (so it is deterministic) and accepts a count within
4 standard deviations of its binomial expectation, n*p +/- 4*sqrt(n*p*(1-p)) (as
tests/proxy/test_variants.py does for `Variants.pick` alone): a correct split falls outside
with a probability of about 6e-5; one off by 3 points of percentage at n = 4000 lands
outside for certain.
"""

from __future__ import annotations

import io
import json
import math
import random
import string
from collections import Counter
from typing import Any

import pytest
from botocore.response import StreamingBody

from machine.predictions_sqlite import SqlitePredictionStore
from proxy.predictions import Prediction, StoreError
from proxy.variants import parse_variants
from tests.proxy.photos import encoded
from tests.proxy.support import (
    FakeClock,
    LambdaContext,
    LogLines,
    body_of,
    build_proxy,
    client_error,
    http_event,
    prediction_payload,
)
from tests.proxy.test_metrics import emf_problems, metric_values

DRAWS = 4000
PHOTO = encoded("chelsea")
THREE = parse_variants(
    json.dumps(
        [
            {"name": "main", "weight": 70, "endpoint": "ic-prod"},
            {"name": "canary", "weight": 30, "endpoint": "ic-prod-canary"},
            {"name": "previous", "weight": 0, "endpoint": "ic-prod-previous"},
        ]
    )
)
VERSIONS = {"ic-prod": "aaaaaaaaaaaa", "ic-prod-canary": "cccccccccccc", "ic-prod-previous": "0"}


class Endpoints:
    """A SageMaker Runtime with one endpoint per variant: each answers with its own model
    version, or fails as scripted."""

    def __init__(self, clock: FakeClock, failing: dict[str, Exception] | None = None) -> None:
        self.clock = clock
        self.failing = failing or {}
        self.calls: Counter[str] = Counter()

    def __call__(self, read_timeout: float) -> Endpoints:
        return self

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        endpoint = kwargs["EndpointName"]
        self.calls[endpoint] += 1
        self.clock.now += 0.05
        if endpoint in self.failing:
            raise self.failing[endpoint]
        data = prediction_payload(version=VERSIONS[endpoint])
        return {"Body": StreamingBody(io.BytesIO(data), len(data))}


class Harness:
    def __init__(self, failing: dict[str, Exception] | None = None, **options: Any) -> None:
        self.clock = FakeClock()
        self.endpoints = Endpoints(self.clock, failing)
        self.logs = LogLines()
        self.proxy = build_proxy(
            self.endpoints, self.clock, self.clock.sleep, variants=THREE, **options
        )

    def predict(self, client_id: str | None = None, request_id: str = "JKJaXmPLvHcESHA="):
        headers = {} if client_id is None else {"x-client-id": client_id}
        event = http_event(PHOTO, headers=headers, request_id=request_id)
        return self.proxy.handle(event, LambdaContext(self.clock))


def client_ids(count: int, seed: int = 7) -> list[str]:
    """Ids as the site makes them: 22 random URL-safe characters."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "_-"
    return ["".join(rng.choices(alphabet, k=22)) for _ in range(count)]


def assert_binomial(count: int, n: int, p: float) -> None:
    tolerance = 4 * math.sqrt(n * p * (1 - p))
    assert abs(count - n * p) <= tolerance, (count, n * p, tolerance)


def test_the_weighted_split_holds_through_handle_and_weight_0_gets_nothing():
    harness = Harness(max_attempts=1)
    served = Counter()
    for client_id in client_ids(DRAWS):
        response = harness.predict(client_id)
        assert response["statusCode"] == 200
        served[body_of(response)["model"]["variant"]] += 1
    assert_binomial(served["canary"], DRAWS, 0.30)
    assert served["main"] + served["canary"] == DRAWS
    assert served["previous"] == 0
    assert harness.endpoints.calls["ic-prod-previous"] == 0
    assert harness.endpoints.calls["ic-prod-canary"] == served["canary"]


def test_without_a_client_id_each_request_is_drawn_by_weight():
    harness = Harness(rng=random.Random(3))
    served = Counter(body_of(harness.predict())["model"]["variant"] for _ in range(DRAWS))
    assert_binomial(served["canary"], DRAWS, 0.30)
    assert served["previous"] == 0


def test_a_client_id_sticks_to_its_variant_and_the_response_names_it():
    harness = Harness()
    for client_id in client_ids(40, seed=11):
        answers = {
            (body["model"]["variant"], body["model"]["version"])
            for body in (body_of(harness.predict(client_id)) for _ in range(5))
        }
        assert len(answers) == 1, (client_id, answers)
        ((variant, version),) = answers
        endpoint = next(v.endpoint for v in THREE.variants if v.name == variant)
        assert version == VERSIONS[endpoint]


def test_the_response_keeps_the_models_fields_and_adds_the_variant():
    harness = Harness()
    body = body_of(harness.predict(client_ids(1)[0]))
    assert set(body["model"]) == {"name", "version", "weights", "variant"}
    assert body["model"]["name"] == "mobilenet_v2"


def test_the_client_id_is_never_logged_or_echoed():
    harness = Harness()
    (client_id,) = client_ids(1, seed=99)
    response = harness.predict(client_id)
    assert client_id not in json.dumps(response)
    assert client_id not in harness.logs.text


def test_a_variants_failure_is_reported_with_its_name():
    failing = {"ic-prod-canary": client_error("ModelError", 424, "boom", OriginalStatusCode=500)}
    harness = Harness(failing, max_attempts=1)
    outcomes = Counter()
    for client_id in client_ids(200, seed=5):
        response = harness.predict(client_id)
        body = body_of(response)
        if response["statusCode"] == 200:
            outcomes["main"] += 1
            assert body["model"]["variant"] == "main"
            continue
        outcomes["canary"] += 1
        assert response["statusCode"] == 502
        assert body["error"]["code"] == "model_error"
        assert body["variant"] == "canary"
    assert outcomes["main"]
    assert outcomes["canary"]
    failed = [r for r in harness.logs.records() if r["status"] == 502]
    assert failed
    assert all(
        (r["variant"], r["endpoint"], r["level"]) == ("canary", "ic-prod-canary", "ERROR")
        for r in failed
    )
    assert all(metric_values(r)["Errors"] == ("Count", 1) for r in failed)


def test_a_timeout_of_one_variant_names_it_too():
    failing = {
        "ic-prod": client_error("ModelNotReadyException", 429),
        "ic-prod-canary": client_error("ModelNotReadyException", 429),
    }
    harness = Harness(failing, max_attempts=1)
    body = body_of(harness.predict("a-client-on-some-variant"))
    assert body["error"]["code"] == "model_not_ready"
    assert body["variant"] in ("main", "canary")


def test_each_request_line_carries_valid_metrics_of_its_variant():
    harness = Harness()
    for client_id in client_ids(30, seed=2):
        harness.predict(client_id)
    harness.predict()
    for record in harness.logs.records():
        assert emf_problems(record) == [], record
        assert record["Variant"] == record["variant"]
        assert record["Service"] == "image-classifier-dev-proxy"
        assert metric_values(record) == {
            "Requests": ("Count", 1),
            "Errors": ("Count", 0),
            "Latency": ("Milliseconds", record["total_ms"]),
            "NeedsReview": ("Count", 1),
        }


# -- the prediction record ------------------------------------------------------------------


class FailingStore:
    def put(self, prediction: Prediction) -> None:
        raise StoreError("DynamoDB put_item on t: ProvisionedThroughputExceededException: slow")


def test_each_answered_prediction_is_recorded_with_its_variant_and_never_the_image(tmp_path):
    with SqlitePredictionStore(tmp_path / "predictions.sqlite3") as store:
        harness = Harness(store=store)
        answered = {}
        for number, client_id in enumerate(client_ids(12, seed=4)):
            request_id = f"request-{number:02}"
            body = body_of(harness.predict(client_id, request_id=request_id))
            answered[request_id] = body
        harness.endpoints.failing["ic-prod"] = client_error("ThrottlingException", 400)
        harness.endpoints.failing["ic-prod-canary"] = client_error("ThrottlingException", 400)
        harness.predict(request_id="failed-one")
        records = {record.request_id: record for record in store.records()}
    assert set(records) == set(answered), "only 200s are recorded"
    for request_id, body in answered.items():
        record = records[request_id]
        assert record.variant == body["model"]["variant"]
        assert record.model_version == body["model"]["version"]
        assert (record.label, record.probability) == ("tabby", 0.71)
        assert record.needs_review is True
        assert record.latency_ms == 50.0
    database = (tmp_path / "predictions.sqlite3").read_bytes()
    assert PHOTO[100:140] not in database
    assert all(r["recorded"] for r in harness.logs.records() if r.get("status") == 200)


def test_a_failed_write_never_fails_the_answer_and_is_logged():
    harness = Harness(store=FailingStore())
    response = harness.predict("a-client-of-the-store")
    assert response["statusCode"] == 200
    warning, request = harness.logs.records()
    assert (warning["level"], warning["event"]) == ("WARNING", "prediction_store_error")
    assert "ProvisionedThroughputExceededException" in warning["message"]
    assert warning["request_id"] == request["request_id"]
    assert (request["status"], request["recorded"]) == (200, False)


def test_a_bug_in_the_store_never_fails_the_answer_either():
    class Broken:
        def put(self, prediction: Prediction) -> None:
            raise AttributeError("no such thing")

    harness = Harness(store=Broken())
    assert harness.predict()["statusCode"] == 200
    assert harness.logs.records()[0]["event"] == "prediction_store_error"


@pytest.mark.parametrize("status_code", [400, 422])
def test_a_refused_image_is_not_recorded(tmp_path, status_code):
    with SqlitePredictionStore(tmp_path / "p.sqlite3") as store:
        harness = Harness(store=store)
        body = b"nope" if status_code == 422 else b""
        response = harness.proxy.handle(http_event(body), LambdaContext(harness.clock))
        assert response["statusCode"] == status_code
        assert list(store.records()) == []
