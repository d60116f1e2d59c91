"""Active X-Ray tracing of the proxy Lambda: off unless the stack asks (config `tracing`),
and then with exactly the permission it needs."""

from __future__ import annotations

import json

from pulumi_policy import StackValidationPolicy

from policy import rules
from tests.infra.conftest import StackRun
from tests.policy.harness import Resource, violations

FUNCTION = "aws:lambda/function:Function"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def statements(run: StackRun) -> dict[str, dict]:
    policy = run.one(ROLE_POLICY, "api-function-policy").inputs["policy"]
    return {statement["Sid"]: statement for statement in json.loads(policy)["Statement"]}


def test_tracing_is_off_by_default(dev_stack: StackRun):
    assert dev_stack.one(FUNCTION).inputs["tracingConfig"] == {"mode": "PassThrough"}
    assert "WriteTraces" not in statements(dev_stack)


def test_tracing_is_active_with_exactly_the_permission_it_needs(run_stack):
    run = run_stack({"image-classifier:tracing": "true"})
    assert run.error is None, run.error
    assert run.one(FUNCTION).inputs["tracingConfig"] == {"mode": "Active"}
    found = statements(run)
    assert list(found) == [
        "InvokeTheEndpoint",
        "RecordPredictionsAndFeedback",
        "WriteTraces",
        "WriteItsOwnLogs",
    ]
    assert found["WriteTraces"] == {
        "Sid": "WriteTraces",
        "Effect": "Allow",
        "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
        # X-Ray takes no resource-level permissions for these two.
        "Resource": "*",
    }
    for policy in rules.POLICIES:
        # Resource rules judge inputs, stack rules the state (as in test_policy_on_stack).
        stack_rule = isinstance(policy, StackValidationPolicy)
        resources = [
            Resource(r.type, r.name, r.state if stack_rule else r.inputs)
            for r in run.resources
            if r.custom
        ]
        assert violations(policy, resources) == [], policy.name
