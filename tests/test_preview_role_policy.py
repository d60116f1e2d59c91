"""`docs/preview-role-deny-policy.json`: what the pull-request preview role must not read.

The preview role has AWS's `ReadOnlyAccess` (docs/operations.md, "CI/CD and access"), and
a pull request runs its own code with it. The origin secret, which lets a request past the
proxy's origin check, is in two places AWS will show to a reader: the proxy Lambda's
environment (`ORIGIN_SECRET`) and the distribution's origin custom header
(`x-origin-verify`). The deny policy must cover every read that returns either, and
nothing a `pulumi preview` of this program needs.

Which operations return them is read from botocore's service models (public API:
`Session.get_service_model`, `ServiceModel.operation_names`, `operation_model`, shapes):
an operation whose output can hold Lambda's `EnvironmentResponse` or CloudFront's
`CustomHeaders`. A botocore that knows a new such read fails this test until the policy
denies it too.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
POLICY_PATH = ROOT / "docs" / "preview-role-deny-policy.json"
PREVIEW_WORKFLOW = ROOT / ".github" / "workflows" / "preview.yml"
PULUMI_ACTION = "pulumi/actions@"
SECRET_SHAPES = {"lambda": "EnvironmentResponse", "cloudfront": "CustomHeaders"}
"""Where each service's API returns the secret: a function's environment variables, an
origin's custom headers."""
EVENT_HISTORY = {
    "cloudtrail:LookupEvents": (
        "CloudTrail's event history records each CreateDistribution and UpdateDistribution "
        "with its request's parameters, the origins' custom headers among them, and AWS "
        "documents no redaction of their values; a preview reads no event history"
    ),
}
"""Reads whose answer is free text botocore's models cannot see into, denied by hand."""
STAGE_READS = {
    "apigateway:GET": (
        "the HTTP API's stages are read with `apigateway:GET` on `/apis/<id>/stages` and "
        "`/apis/<id>/stages/<name>`; the site stage's name is CloudFront's secret origin "
        "path (decision 13), so knowing it reaches the site's throttle budget directly"
    ),
}
"""API Gateway's IAM names a read by its HTTP method and path, not by its operation."""
STAGE_ARNS = (
    "arn:aws:apigateway:eu-west-1::/apis/a1b2c3d4e5/stages",
    "arn:aws:apigateway:eu-west-1::/apis/a1b2c3d4e5/stages/Xy12secretStageName",
)
READ_PREFIXES = ("Get", "List", "Describe")
"""The operations `ReadOnlyAccess` allows (`Get*`, `List*`, `Describe*`); the writes that
also echo the secret back are not the preview role's."""
ACCOUNT = "123456789012"
FUNCTION_ARNS = (
    # Pulumi names the proxy `api-function-<7 random characters>`; any other function, or
    # a published version, is denied alike.
    f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:api-function-1a2b3c4",
    f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:api-function-1a2b3c4:7",
    f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:other-team-function",
)
DISTRIBUTION_ARNS = (f"arn:aws:cloudfront::{ACCOUNT}:distribution/E2QWRUHAPOMQZL",)
PREVIEW_READS = (
    # What a preview without refresh calls: the provider's and the program's invokes
    # (account, partition, region, the ECR login, a registry version's listing and sidecar).
    ("sts:GetCallerIdentity", "*"),
    ("ecr:GetAuthorizationToken", "*"),
    ("s3:ListBucket", "arn:aws:s3:::image-classifier-dev-artifacts"),
    ("s3:GetObject", "arn:aws:s3:::image-classifier-dev-artifacts/models/v1/metadata.json"),
    ("cloudfront:GetCachePolicy", "arn:aws:cloudfront::123456789012:cache-policy/x"),
    ("lambda:GetPolicy", FUNCTION_ARNS[0]),
)


@cache
def policy() -> dict[str, Any]:
    return json.loads(POLICY_PATH.read_text())


def _holds(shape: Any, name: str, seen: frozenset[str] = frozenset()) -> bool:
    if shape is None or shape.name in seen:
        return False
    if shape.name == name:
        return True
    seen = seen | {shape.name}
    if shape.type_name == "structure":
        return any(_holds(member, name, seen) for member in shape.members.values())
    if shape.type_name == "list":
        return _holds(shape.member, name, seen)
    if shape.type_name == "map":
        return _holds(shape.value, name, seen)
    return False


@cache
def secret_reads() -> frozenset[str]:
    """`service:Operation` of every read whose answer can carry the origin secret."""
    session = botocore.session.get_session()
    found = set()
    for service, shape in SECRET_SHAPES.items():
        model = session.get_service_model(service)
        for operation in model.operation_names:
            output = model.operation_model(operation).output_shape
            if operation.startswith(READ_PREFIXES) and _holds(output, shape):
                found.add(f"{service}:{operation}")
    return frozenset(found)


def _matches(pattern: str, value: str) -> bool:
    """IAM's wildcards: `*` any run of characters, `?` one; actions ignore case."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def denied(action: str, resource: str) -> bool:
    """Whether a statement of the deny policy matches `action` on `resource` (its
    statements have no conditions: a deny with a condition AWS does not support for an
    action would silently match nothing)."""
    for statement in policy()["Statement"]:
        actions = _listed(statement["Action"])
        if any(_matches(a.lower(), action.lower()) for a in actions) and any(
            _matches(r, resource) for r in _listed(statement["Resource"])
        ):
            return True
    return False


def test_the_policy_is_a_plain_deny_document():
    document = policy()
    assert document["Version"] == "2012-10-17"
    sids = [statement["Sid"] for statement in document["Statement"]]
    assert len(set(sids)) == len(sids)
    for statement in document["Statement"]:
        assert set(statement) == {"Sid", "Effect", "Action", "Resource"}, statement["Sid"]
        assert statement["Effect"] == "Deny"
        for action in _listed(statement["Action"]):
            assert "*" not in action, "every read named, so a test can tell what is denied"


def test_botocore_knows_the_reads_the_issue_named():
    assert {
        "lambda:GetFunctionConfiguration",
        "lambda:GetFunction",
        "cloudfront:GetDistributionConfig",
        "cloudfront:GetDistribution",
    } <= secret_reads()


def test_it_denies_exactly_the_reads_that_return_the_secret():
    """No fewer (each would leak it) and no more (a preview may need any other read)."""
    named = {action for s in policy()["Statement"] for action in _listed(s["Action"])}
    assert named == secret_reads() | set(EVENT_HISTORY) | set(STAGE_READS)


@pytest.mark.parametrize("action", sorted(EVENT_HISTORY))
def test_the_event_history_is_denied_too(action):
    assert denied(action, "*")


@pytest.mark.parametrize("action", sorted(secret_reads()))
def test_each_such_read_is_denied_on_every_function_and_distribution(action):
    service = action.split(":")[0]
    arns = FUNCTION_ARNS if service == "lambda" else DISTRIBUTION_ARNS
    for arn in arns:
        assert denied(action, arn), (action, arn)


@pytest.mark.parametrize("resource", STAGE_ARNS)
def test_the_apis_stages_are_denied(resource):
    assert denied("apigateway:GET", resource)


def test_the_apis_other_reads_stay_allowed():
    assert not denied("apigateway:GET", "arn:aws:apigateway:eu-west-1::/apis/a1b2c3d4e5/routes")


@pytest.mark.parametrize(("action", "resource"), PREVIEW_READS)
def test_what_a_preview_reads_stays_allowed(action, resource):
    assert not denied(action, resource)


def _dynamic_provider_calls() -> set[str]:
    """`service:Operation` of every boto3 call the program's dynamic providers make (a
    client made as `<session>.client("<service>")`, its methods as `client.<method>(`)."""
    calls = set()
    session = botocore.session.get_session()
    for path in sorted((ROOT / "components").glob("*.py")):
        text = path.read_text()
        services = set(re.findall(r"\.client\(\s*\"([a-z0-9-]+)\"", text))
        methods = {
            node.func.attr
            for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        }
        for service in services:
            model = session.get_service_model(service)
            by_method = {botocore.xform_name(op): op for op in model.operation_names}
            calls |= {f"{service}:{by_method[m]}" for m in methods if m in by_method}
    return calls


def test_no_dynamic_provider_needs_a_denied_read():
    calls = _dynamic_provider_calls()
    assert "cloudfront:CreateInvalidation" in calls, "the scan finds the providers' calls"
    assert not calls & secret_reads()


def test_the_preview_workflow_does_not_refresh():
    """A refresh reads every resource from AWS (the function with GetFunction, the
    distribution with GetDistribution), which this policy denies; a plain preview diffs
    the program against the state and reads neither. pulumi/actions' `refresh` defaults to
    false, and the project sets no `options.refresh`."""
    workflow = yaml.safe_load(PREVIEW_WORKFLOW.read_text())
    steps = workflow["jobs"]["preview"]["steps"]
    (pulumi,) = [s for s in steps if s.get("uses", "").startswith(PULUMI_ACTION)]
    assert pulumi["with"]["command"] == "preview"
    assert str(pulumi["with"].get("refresh", "false")).lower() == "false"
    assert not [s for s in steps if "refresh" in s.get("run", "")]
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert "refresh" not in (project.get("options") or {})


def test_operations_tells_operators_to_attach_it():
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "[preview-role-deny-policy.json](preview-role-deny-policy.json)" in operations
