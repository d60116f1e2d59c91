"""Retries never outlive the Lambda: fake clock, scripted endpoint, no real waiting."""

import random

import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from proxy.app import RESPONSE_RESERVE
from proxy.sagemaker import MIN_READ_TIMEOUT, Backoff
from tests.proxy.photos import encoded
from tests.proxy.support import (
    FakeClock,
    Hang,
    LambdaContext,
    LogLines,
    ScriptedRuntime,
    body_of,
    build_proxy,
    client_error,
    http_event,
    prediction_payload,
)

NOT_READY = client_error("ModelNotReadyException", 429, "Model is not ready yet.")


def run(script, timeout_ms=29_000, latency=0.05, **config):
    clock = FakeClock()
    runtime = ScriptedRuntime(clock, script, latency)
    logs = LogLines()
    proxy = build_proxy(runtime, clock, clock.sleep, **config)
    context = LambdaContext(clock, timeout_ms)
    response = proxy.handle(http_event(encoded("chelsea")), context)
    elapsed = clock.now - context.started
    (record,) = logs.records()
    return response, runtime, clock, elapsed, record


def test_a_hanging_endpoint_is_retried_then_a_504_inside_the_budget():
    response, runtime, _, elapsed, record = run([Hang()], timeout_ms=29_000)
    assert response["statusCode"] == 504
    assert body_of(response)["error"]["code"] == "model_timeout"
    assert response["headers"]["retry-after"] == "5"
    # 20 s for the first attempt, the rest of the budget for the second.
    assert runtime.read_timeouts[0] == 20.0
    assert len(runtime.read_timeouts) == 2
    assert elapsed <= 29.0 - RESPONSE_RESERVE
    assert record["failures"] == ["timeout", "timeout"]


def test_a_slow_first_answer_leaves_room_for_a_retry_that_succeeds():
    response, runtime, _, elapsed, record = run([Hang(), prediction_payload()])
    assert response["statusCode"] == 200
    assert record["attempts"] == 2
    assert runtime.read_timeouts[1] < 29.0 - 20.0
    assert elapsed < 29.0


def test_connection_errors_are_retried():
    script = [
        EndpointConnectionError(endpoint_url="https://runtime.sagemaker.eu-west-1.amazonaws.com"),
        ConnectionClosedError(endpoint_url="https://runtime.sagemaker.eu-west-1.amazonaws.com"),
        prediction_payload(),
    ]
    response, _, _, _, record = run(script)
    assert response["statusCode"] == 200
    assert record["failures"] == ["connection", "connection"]


def test_the_attempt_count_is_bounded():
    response, runtime, clock, _, _ = run([NOT_READY], max_attempts=3)
    assert response["statusCode"] == 503
    assert len(runtime.calls) == 3
    assert len(clock.sleeps) == 2


def test_a_short_lambda_budget_cuts_the_retries_short():
    response, runtime, _, elapsed, record = run([NOT_READY], timeout_ms=3_500, max_attempts=10)
    assert response["statusCode"] == 503
    assert body_of(response)["error"]["code"] == "model_not_ready"
    assert elapsed <= 3.5 - RESPONSE_RESERVE
    assert record["attempts"] == len(runtime.calls) < 10
    for timeout in runtime.read_timeouts:
        assert timeout >= MIN_READ_TIMEOUT


def test_no_time_left_means_no_call_and_a_503():
    response, runtime, _, _, record = run([prediction_payload()], timeout_ms=1_500)
    assert response["statusCode"] == 503
    assert response["headers"]["retry-after"] == "1"
    assert runtime.calls == []
    assert record["attempts"] == 0


@pytest.mark.parametrize("seed", range(200))
def test_any_sequence_of_failures_finishes_inside_the_budget(seed):
    rng = random.Random(seed)
    outcomes = [
        Hang(),
        NOT_READY,
        client_error("ThrottlingException", 400, "Rate exceeded"),
        client_error("ServiceUnavailable", 503),
        EndpointConnectionError(endpoint_url="https://runtime"),
    ]
    script = [rng.choice(outcomes) for _ in range(12)]
    timeout_ms = rng.randint(1_000, 60_000)
    latency = rng.uniform(0.0, 3.0)
    response, runtime, _, elapsed, _ = run(
        script,
        timeout_ms=timeout_ms,
        latency=latency,
        max_attempts=rng.randint(1, 10),
        read_timeout=rng.choice([1.0, 5.0, 20.0, 60.0]),
        connect_timeout=rng.choice([0.5, 2.0]),
    )
    assert response["statusCode"] in (503, 504)
    assert elapsed <= max(timeout_ms / 1000 - RESPONSE_RESERVE, 0)
    for timeout in runtime.read_timeouts:
        assert timeout >= MIN_READ_TIMEOUT


def test_backoff_grows_with_jitter_and_is_capped():
    backoff = Backoff(base=0.25, cap=4.0)
    assert [backoff.delay(n, lambda: 0.0) for n in range(6)] == [0.125, 0.25, 0.5, 1.0, 2.0, 2.0]
    assert [backoff.delay(n, lambda: 1.0) for n in range(6)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
