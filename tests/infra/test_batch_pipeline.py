"""`BatchPipeline` (config `batch`) under Pulumi's mocks: the inbox bucket, the EventBridge
rule against S3's own event samples, the state machine's states, retries and catches, the
review topic, and each role's exact permissions."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from pulumi_policy import StackValidationPolicy

from components.batch_pipeline import (
    CLASSIFY_HANDLER,
    RECORD_FAILURE_HANDLER,
    BatchPipelineArgs,
    batch_code,
)
from components.stack_config import REVIEW_THRESHOLD_RANGE, StackConfigError
from pipeline import workflow
from policy import rules
from proxy.config import ConfigError, load_config
from tests.infra.conftest import (
    ACCOUNT,
    ARCHIVE_VERSION,
    PROJECT,
    REGION,
    ROOT,
    StackRun,
    synthetic_metadata,
)
from tests.policy.harness import Resource, violations

BUCKET = "aws:s3/bucket:Bucket"
FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
TOPIC = "aws:sns/topic:Topic"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
BATCH_TYPES = {STATE_MACHINE, RULE, TARGET, NOTIFICATION}
"""Types only the batch pipeline uses (the alarm topic is an SNS topic too)."""
REVIEWERS = "reviewers@classifier-team.io"
ENDPOINT_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{PROJECT}-dev"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{PROJECT}-dev-predictions"
BATCH_ON = {
    f"{PROJECT}:batch": "true",
    f"{PROJECT}:reviewEmail": REVIEWERS,
    f"{PROJECT}:reviewThreshold": "0.8",
}
RunStack = Callable[[dict[str, str]], StackRun]


def key(name: str) -> str:
    return f"{PROJECT}:{name}"


@pytest.fixture(scope="module")
def batch_stack(run_stack: RunStack) -> StackRun:
    run = run_stack(BATCH_ON)
    assert run.error is None, run.error
    return run


def inbox(run: StackRun):
    return run.one(BUCKET, "batch-inbox")


def for_inbox(run: StackRun, token: str):
    return [r for r in run.of_type(token) if r.inputs.get("bucket") == inbox(run).id]


def statements(run: StackRun, policy: str) -> dict[str, dict[str, Any]]:
    document = json.loads(run.one(ROLE_POLICY, policy).inputs["policy"])
    return {statement["Sid"]: statement for statement in document["Statement"]}


def grants(run: StackRun, policy: str) -> dict[str, tuple[Any, Any]]:
    return {sid: (s["Action"], s["Resource"]) for sid, s in statements(run, policy).items()}


def definition(run: StackRun) -> dict[str, Any]:
    return json.loads(run.one(STATE_MACHINE).inputs["definition"])


def arn(run: StackRun, token: str, name: str) -> str:
    return run.one(token, name).state["arn"]


# -- off by default --------------------------------------------------------------------------


def test_off_by_default_it_creates_nothing(dev_stack: StackRun):
    assert not [r for r in dev_stack.resources if r.type in BATCH_TYPES]
    assert not [r for r in dev_stack.resources if r.name.startswith("batch")]
    assert not {name for name in dev_stack.outputs if name.startswith("batch_")}
    proxy = dev_stack.one(FUNCTION).inputs["environment"]["variables"]
    assert "REVIEW_THRESHOLD" not in proxy, "unset: the proxy's own default"


def test_outputs_name_the_bucket_state_machine_topic_and_log_group(batch_stack: StackRun):
    assert {name: batch_stack.outputs[name] for name in batch_stack.outputs if "batch" in name} == {
        "batch_bucket": inbox(batch_stack).id,
        "batch_state_machine_arn": arn(batch_stack, STATE_MACHINE, "batch-workflow"),
        "batch_review_topic_arn": arn(batch_stack, TOPIC, "batch-review"),
        "batch_log_group": f"/aws/vendedlogs/states/{PROJECT}-dev-batch",
    }


def test_every_resource_belongs_to_the_component(batch_stack: StackRun):
    (component,) = [r for r in batch_stack.resources if r.name == "batch" and not r.custom]
    assert component.type == "image-classifier:batch_pipeline:BatchPipeline"
    owned = {component.urn}
    for resource in batch_stack.resources:  # registered parents first
        if resource.parent in owned:
            owned.add(resource.urn)
    batch = {r.urn for r in batch_stack.resources if r.name.startswith("batch-")}
    assert batch
    assert batch <= owned


def test_the_policy_pack_passes_the_stack_with_batch(batch_stack: StackRun):
    for policy in rules.POLICIES:
        # Stack rules see outputs (state), resource rules inputs, as under the engine.
        stack_rule = isinstance(policy, StackValidationPolicy)
        resources = [
            Resource(r.type, r.name, r.state if stack_rule else r.inputs)
            for r in batch_stack.resources
            if r.custom
        ]
        assert violations(policy, resources) == [], policy.name


# -- the inbox bucket ------------------------------------------------------------------------


def test_the_bucket_is_private_encrypted_versioned_and_tls_only(batch_stack: StackRun):
    (block,) = for_inbox(batch_stack, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block.inputs[flag] is True for flag in rules.PUBLIC_ACCESS_FLAGS)
    (ownership,) = for_inbox(batch_stack, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    (encryption,) = for_inbox(
        batch_stack,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )
    [rule] = encryption.inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in rules.SSE_ALGORITHMS
    (versioning,) = for_inbox(batch_stack, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    (policy,) = for_inbox(batch_stack, "aws:s3/bucketPolicy:BucketPolicy")
    [deny] = json.loads(policy.inputs["policy"])["Statement"]  # and no grant to anyone
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert inbox(batch_stack).inputs.get("forceDestroy") is not True, "it holds people's work"


def test_images_expire_before_their_outcomes_and_replaced_versions_after_30_days(
    batch_stack: StackRun,
):
    (lifecycle,) = for_inbox(
        batch_stack, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )
    by_id = {rule["id"]: rule for rule in lifecycle.inputs["rules"]}
    assert all(rule["status"] == "Enabled" for rule in by_id.values())
    assert by_id["expire-replaced-versions"]["noncurrentVersionExpiration"] == {
        "noncurrentDays": 30
    }
    expiring = {
        rule["filter"]["prefix"]: rule["expiration"]["days"]
        for rule in by_id.values()
        if "expiration" in rule
    }
    defaults = BatchPipelineArgs.__dataclass_fields__
    inbox_days, outcome_days = defaults["inbox_days"].default, defaults["outcome_days"].default
    transform_days = defaults["transform_days"].default
    assert expiring == {
        "inbox/": inbox_days,
        "results/": outcome_days,
        "review/": outcome_days,
        "failed/": outcome_days,
        "transform/": transform_days,  # a transform job's work, sorted into outcomes
    }
    assert inbox_days < outcome_days
    assert not any(prefix.startswith("model_labels") for prefix in expiring)


def test_the_models_labels_are_beside_the_outcomes_for_the_review_cli(batch_stack: StackRun):
    (labels,) = for_inbox(batch_stack, "aws:s3/bucketObjectv2:BucketObjectv2")
    assert labels.inputs["key"] == f"model_labels/{ARCHIVE_VERSION}.json"
    assert json.loads(labels.inputs["content"]) == synthetic_metadata()["labels"]
    assert labels.retain_on_delete, "an older version's outcomes are reviewed with its labels"


# -- EventBridge -----------------------------------------------------------------------------

# What S3 sends to EventBridge, as AWS documents it ("EventBridge event message structure",
# Amazon S3 User Guide), with this stack's bucket and keys put in.
OBJECT_CREATED = {
    "version": "0",
    "id": "17793124-05d4-b198-2fde-7ededc63b103",
    "detail-type": "Object Created",
    "source": "aws.s3",
    "account": "111122223333",
    "time": "2021-11-12T00:00:00Z",
    "region": "ca-central-1",
    "resources": ["arn:aws:s3:::amzn-s3-demo-bucket1"],
    "detail": {
        "version": "0",
        "bucket": {"name": "amzn-s3-demo-bucket1"},
        "object": {
            "key": "example-key",
            "size": 5,
            "etag": "b1946ac92492d2347c6235b4d2611184",
            "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
            "sequencer": "617f08299329d189",
        },
        "request-id": "N4N7GDK58NMKJ12R",
        "requester": "123456789012",
        "source-ip-address": "1.2.3.4",
        "reason": "PutObject",
    },
}
OBJECT_DELETED = {
    "version": "0",
    "id": "2ee9cc15-d022-99ea-1fb8-1b1bac4850f9",
    "detail-type": "Object Deleted",
    "source": "aws.s3",
    "account": "111122223333",
    "time": "2021-11-12T00:00:00Z",
    "region": "ca-central-1",
    "resources": ["arn:aws:s3:::amzn-s3-demo-bucket1"],
    "detail": {
        "version": "0",
        "bucket": {"name": "amzn-s3-demo-bucket1"},
        "object": {
            "key": "example-key",
            "etag": "d41d8cd98f00b204e9800998ecf8427e",
            "version-id": "1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF",
            "sequencer": "617f0837b476e463",
        },
        "request-id": "0BH729840619AG5K",
        "requester": "123456789012",
        "source-ip-address": "1.2.3.4",
        "reason": "DeleteObject",
        "deletion-type": "Delete Marker Created",
    },
}


def s3_event(sample: dict[str, Any], bucket: str, object_key: str, **detail: Any) -> dict[str, Any]:
    event = copy.deepcopy(sample)
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = object_key
    event["detail"].update(detail)
    return event


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """EventBridge's matching for the subset of patterns the rule may use: nested fields,
    a list of exact values or `{"prefix": ...}`, any one of which matches. Any other
    operator fails the test, so a pattern that outgrows this matcher is noticed."""
    for field, wanted in pattern.items():
        if field not in event:
            return False
        value = event[field]
        if isinstance(wanted, Mapping):
            if not (isinstance(value, Mapping) and matches(wanted, value)):
                return False
            continue
        values = value if isinstance(value, list) else [value]
        if not any(_matches_one(option, item) for option in wanted for item in values):
            return False
    return True


def _matches_one(option: Any, value: Any) -> bool:
    if isinstance(option, Mapping):
        assert set(option) == {"prefix"}, f"the test's matcher knows no {option}"
        return isinstance(value, str) and value.startswith(option["prefix"])
    return option == value


def test_the_matcher_is_eventbridges_for_the_documented_examples():
    pattern = {"source": ["aws.s3"], "detail": {"object": {"key": [{"prefix": "in"}, "x"]}}}
    assert matches(pattern, s3_event(OBJECT_CREATED, "b", "inbox/a.jpg"))
    assert matches(pattern, s3_event(OBJECT_CREATED, "b", "x"))
    assert not matches(pattern, s3_event(OBJECT_CREATED, "b", "xinbox"))
    assert not matches({"missing": ["x"]}, OBJECT_CREATED)
    assert matches({"resources": ["arn:aws:s3:::b"]}, s3_event(OBJECT_CREATED, "b", "k"))


@pytest.fixture(scope="module")
def pattern(batch_stack: StackRun) -> dict[str, Any]:
    return json.loads(batch_stack.one(RULE).inputs["eventPattern"])


@pytest.mark.parametrize(
    ("key_name", "reason"),
    [
        ("inbox/cats/1.jpg", "PutObject"),
        ("inbox/2.png", "CompleteMultipartUpload"),
        ("inbox/copied.jpg", "CopyObject"),
        ("inbox/form.webp", "POST Object"),
    ],
)
def test_a_new_image_under_inbox_starts_the_workflow(batch_stack, pattern, key_name, reason):
    event = s3_event(OBJECT_CREATED, inbox(batch_stack).id, key_name, reason=reason)
    assert matches(pattern, event)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda b: s3_event(OBJECT_CREATED, "another-bucket", "inbox/1.jpg"), id="bucket"
        ),
        pytest.param(lambda b: s3_event(OBJECT_CREATED, b, "results/1.jpg.json"), id="result"),
        pytest.param(lambda b: s3_event(OBJECT_CREATED, b, "review/1.jpg.json"), id="review"),
        pytest.param(lambda b: s3_event(OBJECT_CREATED, b, "failed/1.jpg.json"), id="failed"),
        pytest.param(
            lambda b: s3_event(OBJECT_CREATED, b, f"model_labels/{ARCHIVE_VERSION}.json"),
            id="labels",
        ),
        pytest.param(lambda b: s3_event(OBJECT_CREATED, b, "cats/inbox/1.jpg"), id="inside"),
        pytest.param(lambda b: s3_event(OBJECT_CREATED, b, "Inbox/1.jpg"), id="case"),
        pytest.param(lambda b: s3_event(OBJECT_DELETED, b, "inbox/1.jpg"), id="deleted"),
        pytest.param(
            lambda b: s3_event(
                OBJECT_DELETED,
                b,
                "inbox/1.jpg",
                reason="Lifecycle Expiration",
                requester="s3.amazonaws.com",
            ),
            id="expired",
        ),
        pytest.param(
            lambda b: {**s3_event(OBJECT_CREATED, b, "inbox/1.jpg"), "source": "aws.s3.x"},
            id="source",
        ),
    ],
)
def test_nothing_else_starts_it(batch_stack, pattern, make):
    """Not the outcomes the tasks write (a loop), not deletions, not another bucket."""
    assert not matches(pattern, make(inbox(batch_stack).id))


def test_the_bucket_sends_its_events_to_eventbridge(batch_stack: StackRun):
    (notification,) = for_inbox(batch_stack, NOTIFICATION)
    assert notification.inputs["eventbridge"] is True
    assert not notification.inputs.get("lambdaFunctions")
    assert not notification.inputs.get("queues")
    assert not notification.inputs.get("topics")


def test_the_rule_starts_exactly_this_state_machine_with_a_role_for_nothing_else(
    batch_stack: StackRun,
):
    rule, target = batch_stack.one(RULE), batch_stack.one(TARGET).inputs
    machine = arn(batch_stack, STATE_MACHINE, "batch-workflow")
    assert target["rule"] == rule.id
    assert target["arn"] == machine
    assert target["roleArn"] == arn(batch_stack, ROLE, "batch-events-role")
    assert "input" not in target, "the event itself is the execution's input"
    assert "inputTransformer" not in target
    assert grants(batch_stack, "batch-events-policy") == {
        "StartTheWorkflow": ("states:StartExecution", machine)
    }
    trust = json.loads(batch_stack.one(ROLE, "batch-events-role").inputs["assumeRolePolicy"])
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


# -- the state machine -----------------------------------------------------------------------


def test_the_state_machine_is_batch_workflows_with_the_deployed_arns(batch_stack: StackRun):
    machine = batch_stack.one(STATE_MACHINE).inputs
    assert machine["type"] == "STANDARD"
    classify = batch_stack.one(FUNCTION, "batch-classify")
    record_failure = batch_stack.one(FUNCTION, "batch-record-failure")
    assert definition(batch_stack) == workflow.definition(
        arn(batch_stack, FUNCTION, "batch-classify"),
        arn(batch_stack, FUNCTION, "batch-record-failure"),
        arn(batch_stack, TOPIC, "batch-review"),
        task_timeout_seconds=definition(batch_stack)["States"]["Classify"]["TimeoutSeconds"],
    )
    states = definition(batch_stack)["States"]
    # Each state outwaits its Lambda's timeout and a cold start's init (up to 10 s), so a
    # Lambda timeout arrives as the function's own error, caught and recorded.
    assert workflow.TASK_TIMEOUT_MARGIN_SECONDS > 10
    for state, function in (("Classify", classify), ("RecordFailure", record_failure)):
        assert (
            states[state]["TimeoutSeconds"]
            == function.inputs["timeout"] + workflow.TASK_TIMEOUT_MARGIN_SECONDS
        )


def test_classify_retries_the_model_starting_and_throttling_with_full_jitter(batch_stack):
    retries = definition(batch_stack)["States"]["Classify"]["Retry"]
    by_error = {error: retrier for retrier in retries for error in retrier["ErrorEquals"]}
    for error in ("ModelNotReady", "Throttled"):
        retrier = by_error[error]
        assert retrier["JitterStrategy"] == "FULL"
        assert retrier["BackoffRate"] > 1
        assert retrier["MaxAttempts"] >= 3
        assert retrier["IntervalSeconds"] <= retrier["MaxDelaySeconds"]
    assert "ImageRefused" not in by_error, "a refused image fails at once"
    assert "States.ALL" not in by_error
    assert retries == [policy.as_state() for policy in workflow.RETRIES]


def test_every_failure_is_caught_and_written_to_failed(batch_stack):
    states = definition(batch_stack)["States"]
    assert states["Classify"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}
    ]
    record = states["RecordFailure"]
    assert record["Resource"] == arn(batch_stack, FUNCTION, "batch-record-failure")
    assert record["Next"] == "Done"
    assert {e for r in record["Retry"] for e in r["ErrorEquals"]} >= {"StorageFailed"}


def test_a_new_review_is_published_to_the_topic_and_every_outcome_ends_done(batch_stack):
    document = definition(batch_stack)
    states = document["States"]
    assert document["StartAt"] == "Classify"
    assert states["Classify"]["Resource"] == arn(batch_stack, FUNCTION, "batch-classify")
    assert states["Classify"]["Next"] == "Routed"
    routed = states["Routed"]
    assert routed["Type"] == "Choice"
    [review] = routed["Choices"]
    assert review["Next"] == "NotifyReview"
    assert {"Variable": "$.outcome", "StringEquals": "review"} in review["And"]
    assert routed["Default"] == "Done", "a result, a skipped or a failed image"
    notify = states["NotifyReview"]
    assert notify["Resource"] == "arn:aws:states:::sns:publish"
    assert notify["Parameters"]["TopicArn"] == arn(batch_stack, TOPIC, "batch-review")
    assert notify["Next"] == "Done"
    assert [c["Next"] for c in notify["Catch"]] == ["Done"], "review/ holds it anyway"
    assert states["Done"]["Type"] == "Succeed"
    assert all(state.get("Comment") for state in states.values()), "readable in the console"
    # Every state is reachable from the start, and every path ends in Done.
    seen, todo = set(), ["Classify"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        nexts = [state.get("Next"), state.get("Default")]
        nexts += [rule["Next"] for rule in state.get("Choices", []) + state.get("Catch", [])]
        todo += [n for n in nexts if n]
        assert any(nexts) or state["Type"] == "Succeed", name
    assert seen == set(states)


def test_every_execution_is_logged_with_its_data_to_a_log_group_that_expires(batch_stack):
    logging = batch_stack.one(STATE_MACHINE).inputs["loggingConfiguration"]
    group = batch_stack.one(LOG_GROUP, "batch-workflow-logs")
    assert logging == {
        "level": "ALL",
        "includeExecutionData": True,
        "logDestination": f"{group.state['arn']}:*",
    }
    assert group.inputs["name"].startswith("/aws/vendedlogs/states/")
    assert group.inputs["retentionInDays"] == 14  # Pulumi.dev.yaml's logRetentionDays


def test_the_workflow_role_may_invoke_its_two_tasks_publish_reviews_and_deliver_logs(
    batch_stack: StackRun,
):
    found = grants(batch_stack, "batch-workflow-policy")
    assert found == {
        "InvokeTheTasks": (
            "lambda:InvokeFunction",
            [
                arn(batch_stack, FUNCTION, "batch-classify"),
                arn(batch_stack, FUNCTION, "batch-record-failure"),
            ],
        ),
        "NotifyTheReviewers": ("sns:Publish", arn(batch_stack, TOPIC, "batch-review")),
        "DeliverExecutionLogs": (
            [
                "logs:CreateLogDelivery",
                "logs:GetLogDelivery",
                "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups",
            ],
            "*",  # CloudWatch Logs' delivery actions take no resource
        ),
    }
    trust = json.loads(batch_stack.one(ROLE, "batch-workflow-role").inputs["assumeRolePolicy"])
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "states.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert not batch_stack.one(STATE_MACHINE).inputs["tracingConfiguration"]["enabled"]


# -- the task functions ----------------------------------------------------------------------


def objects(run: StackRun, *folders: str) -> list[str]:
    return [f"{inbox(run).state['arn']}/{folder}*" for folder in folders]


def test_classify_reads_the_image_writes_results_or_review_invokes_the_endpoint(batch_stack):
    logs = batch_stack.one(LOG_GROUP, "batch-classify-logs")
    assert grants(batch_stack, "batch-classify-policy") == {
        "ReadTheImageAndItsOutcomes": (
            "s3:GetObject",
            objects(batch_stack, "inbox/", "results/", "review/", "failed/"),
        ),
        "WriteItsOutcome": ("s3:PutObject", objects(batch_stack, "results/", "review/")),
        "RemoveTheOtherOutcomes": (
            "s3:DeleteObject",
            objects(batch_stack, "results/", "review/", "failed/"),
        ),
        "TellMissingObjectsFromForbiddenOnes": ("s3:ListBucket", inbox(batch_stack).state["arn"]),
        "InvokeTheEndpoint": ("sagemaker:InvokeEndpoint", ENDPOINT_ARN),
        "RecordPredictions": ("dynamodb:PutItem", TABLE_ARN),
        "WriteItsOwnLogs": (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            f"{logs.state['arn']}:*",
        ),
    }


def test_record_failure_writes_failed_and_nothing_else(batch_stack):
    logs = batch_stack.one(LOG_GROUP, "batch-record-failure-logs")
    assert grants(batch_stack, "batch-record-failure-policy") == {
        "ReadTheImageAndItsOutcomes": (
            "s3:GetObject",
            objects(batch_stack, "inbox/", "results/", "review/", "failed/"),
        ),
        "WriteItsOutcome": ("s3:PutObject", objects(batch_stack, "failed/")),
        "RemoveTheOtherOutcomes": ("s3:DeleteObject", objects(batch_stack, "results/", "review/")),
        "TellMissingObjectsFromForbiddenOnes": ("s3:ListBucket", inbox(batch_stack).state["arn"]),
        "WriteItsOwnLogs": (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            f"{logs.state['arn']}:*",
        ),
    }


@pytest.mark.parametrize(
    ("task", "handler"),
    [("classify", CLASSIFY_HANDLER), ("record-failure", RECORD_FAILURE_HANDLER)],
)
def test_each_task_runs_its_handler_as_its_own_role_logging_to_its_own_group(
    batch_stack, task, handler
):
    function = batch_stack.one(FUNCTION, f"batch-{task}").inputs
    assert (function["runtime"], function["architectures"]) == ("python3.12", ["arm64"])
    assert function["handler"] == handler
    assert function["role"] == arn(batch_stack, ROLE, f"batch-{task}-role")
    logs = batch_stack.one(LOG_GROUP, f"batch-{task}-logs").inputs
    assert function["loggingConfig"]["logGroup"] == logs["name"]
    assert logs["name"] == f"/aws/lambda/{PROJECT}-dev-batch-{task}"
    assert function["tracingConfig"] == {"mode": "PassThrough"}
    members = set(function["code"].assets)
    assert {m.split("/")[0] for m in members} == {"proxy", "pipeline", "shared"}
    assert {"proxy/handler.py", "pipeline/handler.py", "pipeline/workflow.py"} <= members
    assert "shared/__init__.py" in members
    assert not any("__pycache__" in m or m.endswith(".pyc") for m in members)


def test_the_tasks_are_configured_as_the_proxy_is(batch_stack):
    proxy = batch_stack.one(FUNCTION, "api-function").inputs["environment"]["variables"]
    classify = batch_stack.one(FUNCTION, "batch-classify").inputs["environment"]["variables"]
    record = batch_stack.one(FUNCTION, "batch-record-failure").inputs["environment"]["variables"]
    endpoint = batch_stack.outputs["endpoint_name"]
    assert classify == {
        "SAGEMAKER_ENDPOINT_NAME": endpoint,
        "LOG_LEVEL": "INFO",
        "SAGEMAKER_MAX_ATTEMPTS": "2",
        "PREDICTIONS_TABLE": batch_stack.outputs["predictions_table"],
        "REVIEW_THRESHOLD": "0.8",
    }
    assert record == {"SAGEMAKER_ENDPOINT_NAME": endpoint, "LOG_LEVEL": "INFO"}
    # One config key: the API's needs_review and the batch's review/ agree.
    assert proxy["REVIEW_THRESHOLD"] == classify["REVIEW_THRESHOLD"]
    for variables in (classify, record):
        assert load_config(variables).endpoint_name == endpoint
    assert load_config(classify).review_threshold == 0.8


def test_the_zip_runs_both_handler_strings_from_the_zip_alone(tmp_path):
    """Lambda puts the zip's root on sys.path and imports the handler's module: do the same,
    in a fresh interpreter that cannot see the repository."""
    bundle = tmp_path / "batch.zip"
    with zipfile.ZipFile(bundle, "w") as zipped:
        for member, asset in sorted(batch_code(ROOT).assets.items()):
            zipped.write(asset.path, member)
    checks = "; ".join(
        f"assert callable(getattr(importlib.import_module({module!r}), {function!r}))"
        for module, function in (
            h.rsplit(".", 1) for h in (CLASSIFY_HANDLER, RECORD_FAILURE_HANDLER)
        )
    )
    script = f"import importlib, sys; sys.path.insert(0, sys.argv[1]); {checks}"
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "SAGEMAKER_ENDPOINT_NAME": "image-classifier-test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    done = subprocess.run(
        [sys.executable, "-I", "-c", script, str(bundle)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


# -- the review topic ------------------------------------------------------------------------


def test_the_review_topic_is_encrypted_and_mailed_to_the_reviewers(batch_stack):
    topic = batch_stack.one(TOPIC, "batch-review").inputs
    assert topic["kmsMasterKeyId"] == "alias/aws/sns"
    (subscription,) = batch_stack.of_type(SUBSCRIPTION)
    assert subscription.inputs == {
        "topic": arn(batch_stack, TOPIC, "batch-review"),
        "protocol": "email",
        "endpoint": REVIEWERS,
    }


def test_without_a_review_email_the_topic_has_no_subscriber(run_stack: RunStack):
    run = run_stack({key("batch"): "true"})
    assert run.error is None, run.error
    assert run.one(TOPIC, "batch-review")
    assert not run.of_type(SUBSCRIPTION)
    classify = run.one(FUNCTION, "batch-classify").inputs["environment"]["variables"]
    assert "REVIEW_THRESHOLD" not in classify, "unset: the proxy's own default"


def test_tracing_reaches_the_state_machine_and_both_tasks(run_stack: RunStack):
    run = run_stack({key("batch"): "true", key("tracing"): "true"})
    assert run.error is None, run.error
    assert run.one(STATE_MACHINE).inputs["tracingConfiguration"] == {"enabled": True}
    assert statements(run, "batch-workflow-policy")["WriteTraces"]["Resource"] == "*"
    for task in ("classify", "record-failure"):
        assert run.one(FUNCTION, f"batch-{task}").inputs["tracingConfig"] == {"mode": "Active"}
        assert "WriteTraces" in statements(run, f"batch-{task}-policy")


def test_only_log_delivery_and_traces_take_every_resource(run_stack: RunStack):
    run = run_stack({key("batch"): "true", key("tracing"): "true"})
    assert run.error is None, run.error
    for policy in run.of_type(ROLE_POLICY):
        if not policy.name.startswith("batch-"):
            continue
        for sid, statement in statements(run, policy.name).items():
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            assert not any(a == "*" or a.endswith(":*") for a in actions), sid
            if statement["Resource"] == "*":
                # And the transform role's, as the endpoint's role has them.
                allowed = {"DeliverExecutionLogs", "WriteTraces"}
                if policy.name == "batch-transform-policy":
                    allowed = {"LogInToEcr", "PublishTransformMetrics"}
                assert sid in allowed, (policy.name, sid)


# -- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"reviewThreshold": "1.5"}, r"reviewThreshold: '1.5' is not a number from 0 to 1"),
        ({"reviewThreshold": "-0.1"}, r"reviewThreshold: '-0.1' is not a number from 0 to 1"),
        ({"reviewThreshold": "high"}, r"reviewThreshold: 'high' is not a number"),
        ({"reviewThreshold": "nan"}, r"reviewThreshold: 'nan' is not a number"),
        ({"reviewEmail": REVIEWERS}, r"reviewEmail: is set but batch is false"),
        (
            {"batch": "true", "reviewEmail": "review@example.com"},
            r"reviewEmail: 'review@example.com' is at example.com, a domain reserved",
        ),
        ({"batch": "true", "reviewEmail": "reviewers"}, r"'reviewers' is not an email address"),
    ],
)
def test_invalid_batch_config_fails_before_any_resource(run_stack: RunStack, overrides, expected):
    run = run_stack({key(name): value for name, value in overrides.items()})
    assert isinstance(run.error, StackConfigError)
    assert re.search(expected, str(run.error)), str(run.error)
    assert run.resources == []


def test_the_threshold_range_is_the_one_the_proxy_accepts():
    low, high = REVIEW_THRESHOLD_RANGE
    for accepted in (low, high):
        assert (
            load_config(
                {"SAGEMAKER_ENDPOINT_NAME": "e", "REVIEW_THRESHOLD": str(accepted)}
            ).review_threshold
            == accepted
        )
    for refused in (low - 0.01, high + 0.01):
        with pytest.raises(ConfigError, match="REVIEW_THRESHOLD"):
            load_config({"SAGEMAKER_ENDPOINT_NAME": "e", "REVIEW_THRESHOLD": str(refused)})


# -- the batch's bound (batchConcurrency) --------------------------------------------------


def reserved(run: StackRun, task: str):
    return run.one(FUNCTION, f"batch-{task}").inputs.get("reservedConcurrentExecutions")


def test_the_classify_function_is_bounded_to_half_the_endpoint_by_default(batch_stack):
    """Pulumi.dev.yaml's serverlessMaxConcurrency 2: the batch takes one slot, the API keeps
    the other. Each classify invocation makes at most one endpoint call at a time, so the
    function's concurrency bounds the batch's share of the endpoint and of the account."""
    assert reserved(batch_stack, "classify") == 1
    # record_failure runs after classify, at most as many at a time: not bounded twice.
    assert reserved(batch_stack, "record-failure") is None
    assert reserved(batch_stack, "classify") < int(
        batch_stack.one(ENDPOINT_CONFIG).inputs["productionVariants"][0]["serverlessConfig"][
            "maxConcurrency"
        ]
    )


@pytest.mark.parametrize(
    ("endpoint", "setting", "bound"),
    [("5", "0", 2), ("20", "0", 10), ("5", "4", 4), ("3", "1", 1), ("200", "0", 100)],
)
def test_batch_concurrency_sets_the_bound(run_stack: RunStack, endpoint, setting, bound):
    run = run_stack(
        {
            key("batch"): "true",
            key("serverlessMaxConcurrency"): endpoint,
            key("batchConcurrency"): setting,
        }
    )
    assert run.error is None, run.error
    assert reserved(run, "classify") == bound


def test_a_throttled_classify_waits_for_a_slot_in_the_deployed_workflow(batch_stack):
    states = definition(batch_stack)["States"]
    for state in ("Classify", "RecordFailure"):
        [first, *_] = states[state]["Retry"]
        assert first == workflow.WAIT_FOR_A_SLOT.as_state()
        assert first["ErrorEquals"] == ["Lambda.TooManyRequestsException"]


def test_the_deployer_may_set_the_bound():
    """The AWS provider sets reserved concurrency with PutFunctionConcurrency and removes it
    with DeleteFunctionConcurrency (GetFunctionConcurrency reads it back)."""
    document = json.loads((ROOT / "docs" / "deployer-policy-batch.json").read_text())
    [functions] = [s for s in document["Statement"] if s["Sid"] == "ManageTheBatchFunctions"]
    assert {
        "lambda:PutFunctionConcurrency",
        "lambda:DeleteFunctionConcurrency",
        "lambda:GetFunctionConcurrency",
    } <= set(functions["Action"])
    assert "arn:aws:lambda:*:*:function:batch-classify-*" in functions["Resource"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"batch": "true", "batchConcurrency": "2"},
            r"batchConcurrency: 2 leaves the API none of the endpoint's "
            r"serverlessMaxConcurrency \(2\); at most 1",
        ),
        (
            {"batch": "true", "batchConcurrency": "-1"},
            r"batchConcurrency: -1 is not 0 \(half of serverlessMaxConcurrency\) or more",
        ),
        (
            {"batch": "true", "serverlessMaxConcurrency": "1"},
            r"serverlessMaxConcurrency: 1 leaves no slot for the API while a batch runs; "
            r"set 2 or more for batch",
        ),
        ({"batchConcurrency": "1"}, r"batchConcurrency: is set but batch is false"),
    ],
)
def test_a_bound_that_would_starve_the_api_is_refused(run_stack: RunStack, overrides, expected):
    run = run_stack({key(name): value for name, value in overrides.items()})
    assert isinstance(run.error, StackConfigError)
    assert re.search(expected, str(run.error)), str(run.error)
    assert run.resources == []


def test_the_component_refuses_no_bound():
    with pytest.raises(ValueError, match="concurrency 0: at least 1"):
        BatchPipelineArgs(
            name_prefix="p",
            project_dir=ROOT,
            endpoint_name="e",
            endpoint_arn=ENDPOINT_ARN,
            predictions_table_name="t",
            predictions_table_arn=TABLE_ARN,
            concurrency=0,
        )


# -- the policy pack's rule ------------------------------------------------------------------


def test_a_state_machine_without_execution_logs_is_refused(batch_stack: StackRun):
    machine = batch_stack.one(STATE_MACHINE)
    props = machine.inputs
    assert (
        violations(rules.state_machines_log_executions, [Resource(machine.type, "m", props)]) == []
    )
    for logging in (None, {"level": "OFF"}, {"level": "ALL"}):
        tampered = Resource(machine.type, "m", {**props, "loggingConfiguration": logging})
        assert violations(rules.state_machines_log_executions, [tampered]), logging
