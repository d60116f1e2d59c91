"""Embedded Metric Format: each document the proxy builds passes the specification's rules,
in the very log line the proxy writes, and says what happened.

`emf_problems` is the structure of the CloudWatch EMF specification
(docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
its JSON schema (Timestamp an integer of Unix milliseconds; Namespace, dimension references
and metric names strings of 1 to 255; Unit one of CloudWatch's units) and its prose rules
(no members beyond those defined in `_aws` and its objects; a DimensionSet of at most 30
keys, raised from 9 in 2022; at most 100 MetricDefinitions per directive; every reference a
member of the root, a string for a dimension, a number or at most 100 numbers for a metric).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy.logs import append_keys, log, request_context
from proxy.metrics import NAMESPACE, EmfMetrics
from tests.proxy.support import LogLines

NOW = 1_772_366_400.123
# The schema's Unit pattern: every size, each also per second, and the rest.
_SIZES = ("Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes")
_SIZES += tuple(size.replace("bytes", "bits").replace("Bytes", "Bits") for size in _SIZES)
_OTHERS = ("Seconds", "Microseconds", "Milliseconds", "Percent", "Count", "Count/Second", "None")
UNITS = frozenset((*_SIZES, *(f"{size}/Second" for size in _SIZES), *_OTHERS))
MAX_DIMENSION_KEYS = 30
MAX_METRICS = 100
MAX_VALUES = 100


def _name_problem(value: Any, what: str) -> str | None:
    if not isinstance(value, str) or not 1 <= len(value) <= 255:
        return f"{what} {value!r} is not a string of 1 to 255 characters"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def emf_problems(document: Any) -> list[str]:
    """Every way `document` breaks the EMF specification; empty when it is valid."""
    if not isinstance(document, dict):
        return ["the root is not an object"]
    meta = document.get("_aws")
    if not isinstance(meta, dict):
        return ["no _aws object"]
    extra = set(meta) - {"Timestamp", "CloudWatchMetrics"}
    problems = [f"_aws has an undefined member {k!r}" for k in extra]
    timestamp = meta.get("Timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        problems.append(f"_aws.Timestamp {timestamp!r} is not Unix milliseconds (an integer)")
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        return [*problems, "_aws.CloudWatchMetrics is not an array"]
    for directive in directives:
        if not isinstance(directive, dict):
            problems.append("a MetricDirective is not an object")
            continue
        extra = set(directive) - {"Namespace", "Dimensions", "Metrics"}
        problems += [f"a MetricDirective has an undefined member {k!r}" for k in extra]
        problems.append(_name_problem(directive.get("Namespace"), "Namespace"))
        dimension_sets = directive.get("Dimensions")
        if not isinstance(dimension_sets, list) or not dimension_sets:
            problems.append("Dimensions is not a non-empty array of DimensionSets")
            dimension_sets = []
        for keys in dimension_sets:
            if not isinstance(keys, list) or len(keys) > MAX_DIMENSION_KEYS:
                problems.append(f"DimensionSet {keys!r} is not an array of at most 30 keys")
                continue
            for key in keys:
                problems.append(_name_problem(key, "dimension reference"))
                if not isinstance(document.get(key), str):
                    problems.append(f"dimension {key!r} is not a string member of the root")
        metrics = directive.get("Metrics")
        if not isinstance(metrics, list) or len(metrics) > MAX_METRICS:
            problems.append("Metrics is not an array of at most 100 MetricDefinitions")
            metrics = []
        for metric in metrics:
            if not isinstance(metric, dict) or "Name" not in metric:
                problems.append(f"MetricDefinition {metric!r} has no Name")
                continue
            extra = set(metric) - {"Name", "Unit", "StorageResolution"}
            problems += [f"a MetricDefinition has an undefined member {k!r}" for k in extra]
            name = metric["Name"]
            problems.append(_name_problem(name, "metric name"))
            if "Unit" in metric and metric["Unit"] not in UNITS:
                problems.append(f"metric {name!r}: {metric['Unit']!r} is not a CloudWatch unit")
            if metric.get("StorageResolution", 60) not in (1, 60):
                problems.append(f"metric {name!r}: StorageResolution is not 1 or 60")
            value = document.get(name) if isinstance(name, str) else None
            values = value if isinstance(value, list) else [value]
            if not 1 <= len(values) <= MAX_VALUES or not all(map(_is_number, values)):
                problems.append(f"metric {name!r} is not a number (or 1 to 100) on the root")
    return [problem for problem in problems if problem]


def metric_values(document: dict) -> dict[str, tuple[str, Any]]:
    """Name -> (unit, value) for every metric the document declares."""
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    return {m["Name"]: (m["Unit"], document[m["Name"]]) for m in directive["Metrics"]}


@pytest.fixture
def metrics():
    return EmfMetrics("image-classifier-prod-proxy", clock=lambda: NOW)


# -- the checker itself ---------------------------------------------------------------------


def test_the_specifications_own_example_passes():
    example = {
        "_aws": {
            "Timestamp": 1574109732004,
            "CloudWatchMetrics": [
                {
                    "Namespace": "lambda-function-metrics",
                    "Dimensions": [["functionVersion"]],
                    "Metrics": [{"Name": "time", "Unit": "Milliseconds"}],
                }
            ],
        },
        "functionVersion": "$LATEST",
        "time": 100,
        "requestId": "989ffbf8-9ace-4817-a57c-e4dd734019ee",
    }
    assert emf_problems(example) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["_aws"].update(Timestamp=1574109732.5), "Timestamp"),
        (lambda d: d["_aws"].update(Extra=1), "undefined member 'Extra'"),
        (lambda d: d.pop("functionVersion"), "'functionVersion' is not a string member"),
        (lambda d: d.update(functionVersion=3), "'functionVersion' is not a string member"),
        (lambda d: d.update(time="100"), "'time' is not a number"),
        (lambda d: d.update(time=[1] * 101), "'time' is not a number"),
        (lambda d: d.update(time=True), "'time' is not a number"),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Dimensions=[]), "non-empty array"),
        (
            lambda d: d["_aws"]["CloudWatchMetrics"][0].update(
                Dimensions=[[f"d{i}" for i in range(31)]]
            ),
            "at most 30 keys",
        ),
        (
            lambda d: d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0].update(Unit="ms"),
            "not a CloudWatch unit",
        ),
        (lambda d: d["_aws"]["CloudWatchMetrics"][0].update(Namespace=""), "Namespace"),
    ],
)
def test_the_checker_finds_each_broken_rule(change, problem):
    document = {
        "_aws": {
            "Timestamp": 1574109732004,
            "CloudWatchMetrics": [
                {
                    "Namespace": "ns",
                    "Dimensions": [["functionVersion"]],
                    "Metrics": [{"Name": "time", "Unit": "Milliseconds"}],
                }
            ],
        },
        "functionVersion": "$LATEST",
        "time": 100,
    }
    change(document)
    assert any(problem in found for found in emf_problems(document)), emf_problems(document)


# -- what the proxy builds ------------------------------------------------------------------


def test_an_answered_prediction(metrics):
    members = metrics.request("canary", status=200, latency_ms=412.56789, needs_review=True)
    assert emf_problems(members) == []
    assert members["_aws"]["Timestamp"] == 1_772_366_400_123
    (directive,) = members["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == NAMESPACE == "ImageClassifier"
    assert directive["Dimensions"] == [["Service", "Variant"]]
    assert (members["Service"], members["Variant"]) == ("image-classifier-prod-proxy", "canary")
    assert metric_values(members) == {
        "Requests": ("Count", 1),
        "Errors": ("Count", 0),
        "Latency": ("Milliseconds", 412.568),
        "NeedsReview": ("Count", 1),
    }


@pytest.mark.parametrize(
    ("status", "errors"), [(400, 0), (415, 0), (500, 1), (502, 1), (503, 1), (504, 1)]
)
def test_a_failed_request_counts_as_an_error_only_when_it_is_ours(metrics, status, errors):
    members = metrics.request("main", status=status, latency_ms=29_000)
    assert emf_problems(members) == []
    assert metric_values(members) == {
        "Requests": ("Count", 1),
        "Errors": ("Count", errors),
        "Latency": ("Milliseconds", 29_000),
    }


@pytest.mark.parametrize(("verdict", "correct"), [("correct", 1), ("wrong", 0)])
def test_feedback(metrics, verdict, correct):
    members = metrics.feedback("main", verdict)
    assert emf_problems(members) == []
    assert metric_values(members) == {
        "FeedbackCorrect": ("Count", correct),
        "FeedbackWrong": ("Count", 1 - correct),
    }


@pytest.mark.parametrize(
    ("verdict", "previous", "counts"),
    [("wrong", "correct", (-1, 1)), ("correct", "wrong", (1, -1))],
)
def test_a_changed_verdict_moves_the_count(metrics, verdict, previous, counts):
    members = metrics.feedback("main", verdict, previous=previous)
    assert emf_problems(members) == []
    assert metric_values(members) == {
        "FeedbackCorrect": ("Count", counts[0]),
        "FeedbackWrong": ("Count", counts[1]),
    }


@pytest.mark.parametrize("verdict", ["correct", "wrong"])
def test_a_repeated_verdict_counts_nothing(metrics, verdict):
    assert metrics.feedback("main", verdict, previous=verdict) == {}


def test_the_request_log_line_is_an_emf_document(metrics):
    """Appended to the request's keys, the members make the proxy's own line valid EMF."""
    logs = LogLines()
    with request_context(request_id="JKJaXmPLvHcESHA=", endpoint="image-classifier-prod"):
        append_keys(status=200, total_ms=412.6, needs_review=False)
        append_keys(**metrics.request("main", status=200, latency_ms=412.6, needs_review=False))
        log.info("request")
    (line,) = logs.text.splitlines()
    document = json.loads(line)
    assert emf_problems(document) == []
    assert document["event"] == "request"
    assert document["request_id"] == "JKJaXmPLvHcESHA="
    assert metric_values(document)["NeedsReview"] == ("Count", 0)


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(ValueError, match="service"):
        EmfMetrics("")
    with pytest.raises(ValueError, match="AWS/"):
        EmfMetrics("svc", namespace="AWS/Lambda")
    with pytest.raises(ValueError, match="namespace"):
        EmfMetrics("svc", namespace="x" * 256)
    with pytest.raises(ValueError, match="variant"):
        EmfMetrics("svc").request("", status=200, latency_ms=1)
    with pytest.raises(ValueError, match="verdict"):
        EmfMetrics("svc").feedback("main", "maybe")
    with pytest.raises(ValueError, match="verdict"):
        EmfMetrics("svc").feedback("main", "wrong", previous="maybe")
