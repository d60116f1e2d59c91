"""The retry table and the state machine: names that match the task errors, every
failure caught into failed/, and the local runner retrying as Step Functions would."""

from __future__ import annotations

import json

import pytest

from batch.runner import run_job
from pipeline import tasks, workflow
from pipeline.storage import LocalStorage
from pipeline.tasks import Job
from pipeline.workflow import FAILURE_RETRIES, LAMBDA_SERVICE_ERRORS, RETRIES, RetryPolicy
from tests.batch.support import answer, classifier, client_error, photo, scripted

CLASSIFY = "arn:aws:lambda:eu-west-1:123456789012:function:batch-classify"
RECORD = "arn:aws:lambda:eu-west-1:123456789012:function:batch-record-failure"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:review"
TASK_ERROR_NAMES = {error.__name__ for error in tasks.TASK_ERRORS}


def test_retriers_name_only_task_errors_and_lambdas_own():
    for policy in (*RETRIES, *FAILURE_RETRIES):
        for name in policy.errors:
            assert name in {*TASK_ERROR_NAMES, *LAMBDA_SERVICE_ERRORS, LAMBDA_THROTTLED}, name


@pytest.mark.parametrize("error", tasks.TASK_ERRORS, ids=lambda error: error.__name__)
def test_what_is_retried_is_what_may_pass_another_time(error):
    retried = workflow.policy_for(error.__name__) is not None
    assert retried is error.retryable or error.__name__ in {"EndpointNotFound", "UpstreamError"}
    if not error.retryable:
        assert not retried


@pytest.mark.parametrize("topic", [None, TOPIC], ids=["no-topic", "topic"])
def test_the_state_machine_is_whole(topic):
    document = workflow.definition(CLASSIFY, RECORD, topic)
    json.dumps(document)  # what the component uploads
    states = document["States"]
    assert document["StartAt"] == "Classify"
    for name, state in states.items():
        targets = [state.get("Next"), state.get("Default")]
        targets += [rule["Next"] for rule in state.get("Catch", []) + state.get("Choices", [])]
        for target in filter(None, targets):
            assert target in states, f"{name} -> {target}"
        for retrier in state.get("Retry", []):
            assert retrier["IntervalSeconds"] >= 1
            assert retrier["MaxAttempts"] >= 1
            assert retrier["JitterStrategy"] == "FULL"
            if "States.ALL" in retrier["ErrorEquals"]:
                assert retrier["ErrorEquals"] == ["States.ALL"]
    classify = states["Classify"]
    assert classify["Resource"] == CLASSIFY
    assert classify["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}
    ]
    assert states["RecordFailure"]["Resource"] == RECORD
    assert ("NotifyReview" in states) is (topic is not None)


def test_only_a_new_review_is_notified():
    states = workflow.definition(CLASSIFY, RECORD, TOPIC)["States"]
    [choice] = states["Routed"]["Choices"]
    assert {"Variable": "$.outcome", "StringEquals": "review"} in choice["And"]
    assert {"Variable": "$.skipped", "BooleanEquals": False} in choice["And"]
    notify = states["NotifyReview"]
    assert notify["Parameters"]["TopicArn"] == TOPIC
    assert notify["Next"] == "Done"
    assert notify["Catch"][0]["Next"] == "Done"


def test_full_jitter_stays_within_the_capped_backoff():
    policy = RetryPolicy(("Throttled",), interval=2, max_attempts=8, max_delay=60)
    assert [policy.delay(n, lambda: 1.0) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]
    assert policy.delay(3, lambda: 0.0) == 0.0
    assert policy.delay(3, lambda: 0.5) == 8.0
    assert policy.as_state()["MaxDelaySeconds"] == 60


@pytest.fixture
def job(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(photo())
    source, out = LocalStorage(tmp_path / "in"), LocalStorage(tmp_path / "out")
    return Job(source, "a.jpg", out, "a.jpg")


def test_the_runner_retries_as_the_state_machine_says(job):
    runtime = scripted(
        client_error("ModelNotReadyException", 429),
        client_error("ModelNotReadyException", 429),
        answer(0.99),
    )
    sleeps: list[float] = []
    output = run_job(
        job, classifier(runtime, max_attempts=1), sleep=sleeps.append, jitter=lambda: 1.0
    )
    assert output["outcome"] == "result"
    policy = workflow.policy_for("ModelNotReady")
    assert sleeps == [policy.delay(0, lambda: 1.0), policy.delay(1, lambda: 1.0)]


def test_the_runner_records_what_is_still_failing_after_its_retries(job):
    runtime = scripted(client_error("ThrottlingException", 400))
    sleeps: list[float] = []
    output = run_job(job, classifier(runtime, max_attempts=1), sleep=sleeps.append)
    assert (output["outcome"], output["code"], output["retryable"]) == (
        "failed",
        "model_busy",
        True,
    )
    assert len(sleeps) == workflow.policy_for("Throttled").max_attempts
    assert len(runtime.calls) == 1 + len(sleeps)


def test_the_runner_catches_a_refusal_at_once(job, tmp_path):
    (tmp_path / "in" / "a.jpg").write_text("notes")
    sleeps: list[float] = []
    output = run_job(job, classifier(scripted(answer(0.99))), sleep=sleeps.append)
    assert (output["outcome"], output["code"]) == ("failed", "not_an_image")
    assert sleeps == []


def test_the_runner_records_a_bug_as_an_internal_error(job):
    def broken(_body, _type):
        raise RuntimeError("a bug")

    from tests.batch.support import FakeRuntime

    output = run_job(job, classifier(FakeRuntime(broken)), sleep=lambda _s: None)
    assert (output["outcome"], output["code"]) == ("failed", "internal_error")
    document = job.out.read_json("failed/a.jpg.json")
    assert document["detail"].startswith("RuntimeError")
    assert "a bug" in document["detail"]


LAMBDA_THROTTLED = "Lambda.TooManyRequestsException"
"""What Step Functions raises when the classify function is at its reserved concurrency
(`batchConcurrency`): the batch's bound, which an image waits out."""


def expected_wait(policy: RetryPolicy) -> float:
    """Seconds an execution waits through all of `policy`'s retries, on average."""
    return sum(policy.delay(retry, lambda: 0.5) for retry in range(policy.max_attempts))


@pytest.mark.parametrize("retries", [RETRIES, FAILURE_RETRIES], ids=["classify", "failure"])
def test_an_image_waits_out_the_batch_bound_for_a_day(retries):
    """A flood of uploads queues at the bound: every image retries until a slot is free,
    for about a day (86,400 images at one slot and a second each), polling every few
    minutes at most so that a freed slot is soon taken again."""
    policy = workflow.policy_for(LAMBDA_THROTTLED, retries)
    assert policy is not None
    assert expected_wait(policy) >= 24 * 3600
    assert policy.max_delay <= 600
    assert policy.as_state()["JitterStrategy"] == "FULL"
    # Each retry is a billed state transition: no more than a few per waiting minute.
    assert policy.max_attempts / (expected_wait(policy) / 60) <= 0.25


def test_the_service_errors_are_still_retried_briefly():
    for name in LAMBDA_SERVICE_ERRORS:
        policy = workflow.policy_for(name)
        assert policy is not None
        assert LAMBDA_THROTTLED not in policy.errors
        assert expected_wait(policy) < 60
