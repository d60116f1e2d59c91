"""The batch workflow: which task errors are retried and how, and its Step Functions state
machine. The local runner (`batch.runner`) follows the same retry table, so a local run
and the cloud treat a failure alike.

The state machine (`definition(...)`), for the `BatchPipeline` component:

    Classify --(ok)--> Routed? --outcome "review"--> NotifyReview (SNS) --> Done
        |                   \\--otherwise--> Done
        \\--(Retry as RETRIES, then Catch States.ALL, ResultPath $.error)--> RecordFailure --> Done

Every error that is not retried, or still fails after its retries, is caught and recorded
in `failed/`: an execution fails only when even that cannot be written (the image stays in
`inbox/`, and the execution's history says why).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
)
"""What AWS recommends retrying on every Lambda task: the service's own hiccups."""
LAMBDA_THROTTLED = "Lambda.TooManyRequestsException"
"""The function is at its concurrency: the classify function's reserved concurrency (the
batch's bound, `batchConcurrency`) or the account's. AWS recommends retrying it too; here
an image waits it out (`WAIT_FOR_A_SLOT`)."""


@dataclass(frozen=True)
class RetryPolicy:
    """One Step Functions retrier: `JitterStrategy: FULL`, so each wait is random between 0
    and `min(max_delay, interval * backoff_rate ** retry)`."""

    errors: tuple[str, ...]
    interval: int
    """Seconds before the first retry (at least 1)."""
    max_attempts: int
    """Retries after the first attempt."""
    backoff_rate: float = 2.0
    max_delay: int = 60

    def delay(self, retry: int, jitter: Callable[[], float] = random.random) -> float:
        """Seconds to wait before retry number `retry` (0 for the first)."""
        return jitter() * min(self.max_delay, self.interval * self.backoff_rate**retry)

    def as_state(self) -> dict[str, Any]:
        return {
            "ErrorEquals": list(self.errors),
            "IntervalSeconds": self.interval,
            "MaxAttempts": self.max_attempts,
            "BackoffRate": self.backoff_rate,
            "MaxDelaySeconds": self.max_delay,
            "JitterStrategy": "FULL",
        }


WAIT_FOR_A_SLOT = RetryPolicy((LAMBDA_THROTTLED,), interval=5, max_attempts=300, max_delay=600)
"""A flood of uploads queues at the bound: each image retries for about a day (24.5 h on
average, up to 10 minutes apart once backed off, so a freed slot is soon taken again)
before it is recorded in `failed/` as retryable. Each retry is a billed state transition:
about 12 an hour per waiting image."""

RETRIES: tuple[RetryPolicy, ...] = (
    WAIT_FOR_A_SLOT,
    # A serverless endpoint's cold start takes tens of seconds to a few minutes.
    RetryPolicy(("ModelNotReady",), interval=10, max_attempts=6, max_delay=120),
    RetryPolicy(("Throttled",), interval=2, max_attempts=8, max_delay=60),
    RetryPolicy(("ModelUnavailable", "StorageFailed"), interval=5, max_attempts=4, max_delay=60),
    # Mostly a deployment in progress or a configuration to fix: a few slow tries.
    RetryPolicy(("EndpointNotFound", "UpstreamError"), interval=30, max_attempts=2, max_delay=120),
    RetryPolicy(LAMBDA_SERVICE_ERRORS, interval=1, max_attempts=3, max_delay=10),
)
"""Retried errors of the classify task; any other is caught at once (`ImageRefused`,
`ModelFailed`, `SourceMissing`, `InvalidEvent`, a bug, a Lambda timeout)."""

FAILURE_RETRIES: tuple[RetryPolicy, ...] = (
    WAIT_FOR_A_SLOT,
    RetryPolicy(("StorageFailed",), interval=2, max_attempts=4, max_delay=30),
    RetryPolicy(LAMBDA_SERVICE_ERRORS, interval=1, max_attempts=3, max_delay=10),
)
"""Retried errors of the record_failure task."""


def policy_for(error_name: str, retries: tuple[RetryPolicy, ...] = RETRIES) -> RetryPolicy | None:
    """The first retrier matching `error_name`, as Step Functions picks it."""
    for policy in retries:
        if error_name in policy.errors or "States.ALL" in policy.errors:
            return policy
    return None


TASK_TIMEOUT_MARGIN_SECONDS = 30
"""Each task state waits this much longer than its Lambda may run (its timeout, plus an init
of up to 10 s on a cold start), so a Lambda timeout arrives as the function's own error
(caught and recorded), not the state's."""
RECORD_FAILURE_TIMEOUT_SECONDS = 20
"""The record_failure Lambda's timeout (`BatchPipeline` sets it): writing one JSON file. Its
state waits `TASK_TIMEOUT_MARGIN_SECONDS` longer."""
NOTIFY_RETRY = {
    "ErrorEquals": ["States.ALL"],
    "IntervalSeconds": 2,
    "MaxAttempts": 3,
    "BackoffRate": 2.0,
    "JitterStrategy": "FULL",
}


def classify_state(arn: str, timeout_seconds: int, next_state: str) -> dict[str, Any]:
    """The image is read, checked and classified; what is left after the retries is
    caught, so no image is ever lost."""
    return {
        "Type": "Task",
        "Comment": "Read the image, check it as the API does, classify it and write its "
        "outcome to results/ or review/.",
        "Resource": arn,
        "TimeoutSeconds": timeout_seconds,
        "Retry": [policy.as_state() for policy in RETRIES],
        "Catch": [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}
        ],
        "Next": next_state,
    }


def record_failure_state(arn: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Comment": "Write the error's code and message to failed/.",
        "Resource": arn,
        "TimeoutSeconds": RECORD_FAILURE_TIMEOUT_SECONDS + TASK_TIMEOUT_MARGIN_SECONDS,
        "Retry": [policy.as_state() for policy in FAILURE_RETRIES],
        "Next": "Done",
    }


def routed_state() -> dict[str, Any]:
    """Only a new review is announced: a duplicate event's image is already queued."""
    return {
        "Type": "Choice",
        "Comment": "An image below the confidence threshold goes to a person.",
        "Choices": [
            {
                "And": [
                    {"Variable": "$.outcome", "StringEquals": "review"},
                    {"Variable": "$.skipped", "BooleanEquals": False},
                ],
                "Next": "NotifyReview",
            }
        ],
        "Default": "Done",
    }


def notify_review_state(topic_arn: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Comment": "Tell the reviewers that an image waits in review/.",
        "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {
            "TopicArn": topic_arn,
            "Subject": "An image needs review",
            "Message.$": "States.JsonToString($)",
        },
        "Retry": [NOTIFY_RETRY],
        # The item is in review/ whatever happens to the message.
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.notify_error", "Next": "Done"}],
        "Next": "Done",
    }


def done_state() -> dict[str, Any]:
    return {"Type": "Succeed", "Comment": "The image has exactly one outcome."}


def definition(
    classify_arn: str,
    record_failure_arn: str,
    review_topic_arn: str | None = None,
    *,
    task_timeout_seconds: int = 120,
) -> dict[str, Any]:
    """The Amazon States Language document of the workflow, from the named states above.

    Its input is `{"bucket", "key"}` (an EventBridge input transformer's output) or the
    EventBridge event itself; both Lambda functions read either. With `review_topic_arn`,
    an image that needs review is published to the topic (the task's output as JSON).
    """
    after_classify = "Routed" if review_topic_arn else "Done"
    states: dict[str, Any] = {
        "Classify": classify_state(classify_arn, task_timeout_seconds, after_classify),
        "RecordFailure": record_failure_state(record_failure_arn),
        "Done": done_state(),
    }
    if review_topic_arn:
        states["Routed"] = routed_state()
        states["NotifyReview"] = notify_review_state(review_topic_arn)
    return {
        "Comment": "Classify an image of the inbox; route it to results/, review/ or failed/.",
        "StartAt": "Classify",
        "States": states,
    }
