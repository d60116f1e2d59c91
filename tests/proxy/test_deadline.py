"""The request's deadline starts when API Gateway received it (`requestContext.timeEpoch`),
not when the handler started: the HTTP API's 30 s also cover a cold start's init."""

import pytest

from proxy.app import HTTP_API_BUDGET_MS, RESPONSE_RESERVE
from tests.proxy.photos import encoded
from tests.proxy.support import (
    FakeClock,
    Hang,
    LambdaContext,
    LogLines,
    ScriptedRuntime,
    body_of,
    build_proxy,
    http_event,
    prediction_payload,
)

RECEIVED_MS = 1_795_238_183_220
"""When API Gateway received the request (Unix ms), as `timeEpoch` carries it."""


def run(waited: float, script=None, time_epoch=RECEIVED_MS, timeout_ms=30_000):
    """One request whose handler starts `waited` seconds after API Gateway received it
    (a cold start's init, say), on a fake clock and a wall clock that moves with it."""
    clock = FakeClock()
    runtime = ScriptedRuntime(clock, script or [Hang()])
    logs = LogLines()
    started = clock.now

    def wall_clock():
        return RECEIVED_MS / 1000 + waited + (clock.now - started)

    proxy = build_proxy(runtime, clock, clock.sleep, wall_clock=wall_clock)
    event = http_event(encoded("chelsea"))
    event["requestContext"]["timeEpoch"] = time_epoch
    # A cold start's invocation: the Lambda's own 30 s start after the init.
    response = proxy.handle(event, LambdaContext(clock, timeout_ms))
    (record,) = logs.records()
    return response, runtime, clock.now - started, record


def test_a_cold_init_that_ate_5_s_leaves_the_invoker_5_s_less():
    _, warm, warm_elapsed, _ = run(0.0)
    response, cold, cold_elapsed, record = run(5.0)
    assert response["statusCode"] == 504
    budget = HTTP_API_BUDGET_MS / 1000
    assert warm_elapsed <= budget - RESPONSE_RESERVE
    assert budget - 5.0 - 1.5 < cold_elapsed <= budget - 5.0 - RESPONSE_RESERVE
    # Same first attempt (the configured 20 s), 5 s less for the retry.
    assert warm.read_timeouts[0] == cold.read_timeouts[0] == 20.0
    assert cold.read_timeouts[1] == pytest.approx(warm.read_timeouts[1] - 5.0)
    assert record["before_handler_ms"] == 5000.0


def test_a_request_api_gateway_has_given_up_on_is_not_sent_to_the_model():
    response, runtime, elapsed, record = run(29.5)
    assert response["statusCode"] == 503
    assert body_of(response)["error"]["code"] == "model_unavailable"
    assert runtime.calls == []
    assert elapsed == 0
    assert record["attempts"] == 0


def test_a_quick_answer_is_not_affected():
    response, _, _, record = run(5.0, [prediction_payload()])
    assert response["statusCode"] == 200
    assert record["before_handler_ms"] == 5000.0


def test_a_receipt_time_ahead_of_the_lambdas_clock_counts_as_now():
    # The two clocks are NTP-synchronised but never equal: skew must not add time.
    _, _, elapsed, record = run(-2.0)
    assert elapsed <= HTTP_API_BUDGET_MS / 1000 - RESPONSE_RESERVE
    assert record["before_handler_ms"] == 0.0


@pytest.mark.parametrize("junk", [None, "1795238183220", -1, 0, True, 1.5e300, [1]])
def test_without_a_usable_time_epoch_the_handler_start_is_the_start(junk):
    response, _, elapsed, record = run(5.0, time_epoch=junk)
    assert response["statusCode"] == 504
    assert HTTP_API_BUDGET_MS / 1000 - 1.5 < elapsed <= HTTP_API_BUDGET_MS / 1000
    assert "before_handler_ms" not in record


def test_the_lambdas_own_time_still_bounds_the_budget():
    _, _, elapsed, _ = run(1.0, timeout_ms=10_000)
    assert elapsed <= 10.0 - RESPONSE_RESERVE
