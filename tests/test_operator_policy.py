"""`docs/operator-policy-transform.json`, the IAM policy of whoever runs `python -m batch
run ... --on sagemaker` and `attach`, checked against the code it must be enough for:
every SageMaker and S3 call of the transform's modules (found with `ast` as
tests/test_deployer_policy.py finds the program's, the S3 calls `pipeline.storage` makes
by name included) is allowed, nothing more is, the transform role alone may be passed,
and only to SageMaker, and every resource is the stack's."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from tests.test_deployer_policy import (
    IAM_ACTION_BY_OPERATION,
    MANAGED_POLICY_LIMIT,
    as_list,
    boto3_services,
    called_operations,
    iam_action,
    operations_by_method,
)

ROOT = Path(__file__).resolve().parent.parent
POLICY_PATH = ROOT / "docs" / "operator-policy-transform.json"
MODULES = [
    ROOT / "batch" / name
    for name in ("transform.py", "transform_job.py", "manifest.py", "sorting.py")
]
STORAGE = ROOT / "pipeline" / "storage.py"
"""Its S3 calls are named by string (`self._call("get_object", ...)`)."""
PERMISSION_ONLY = {"iam:PassRole"}


def policy() -> dict:
    return json.loads(POLICY_PATH.read_text())


def needed() -> set[str]:
    trees = [ast.parse(path.read_text()) for path in MODULES]
    services = set().union(*(boto3_services(tree) for tree in trees))
    assert services == {"s3", "sagemaker"}, "is the scan still reading the transform?"
    actions = {
        iam_action(service, operation)
        for service in services
        for tree in trees
        for operation in called_operations(tree, service)
    }
    s3_methods = operations_by_method("s3")
    named = {
        node.value
        for node in ast.walk(ast.parse(STORAGE.read_text()))
        if isinstance(node, ast.Constant) and node.value in s3_methods
    }
    return actions | {iam_action("s3", s3_methods[name]) for name in named}


def allowed() -> set[str]:
    return {action for s in policy()["Statement"] for action in as_list(s["Action"])}


def test_every_call_of_the_transform_is_allowed_and_nothing_else():
    calls = needed()
    assert {"sagemaker:CreateTransformJob", "sagemaker:StopTransformJob"} <= calls
    assert IAM_ACTION_BY_OPERATION["s3:HeadObject"] in calls
    assert allowed() - PERMISSION_ONLY == calls


def test_only_the_transform_role_is_passed_and_only_to_sagemaker():
    passes = [s for s in policy()["Statement"] if "iam:PassRole" in as_list(s["Action"])]
    (statement,) = passes
    assert as_list(statement["Action"]) == ["iam:PassRole"]
    assert as_list(statement["Resource"]) == ["arn:aws:iam::*:role/batch-transform-role-*"]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }


def test_every_resource_is_the_stacks():
    for statement in policy()["Statement"]:
        for action in as_list(statement["Action"]):
            service, verb = action.split(":")
            for resource in as_list(statement["Resource"]):
                if resource == "*":
                    assert verb.startswith("List"), (statement["Sid"], action)
                elif service == "sagemaker":
                    assert re.fullmatch(
                        r"arn:aws:sagemaker:\*:\*:(model|transform-job)/image-classifier-\*",
                        resource,
                    ), resource
                elif service == "s3":
                    assert resource.startswith(
                        ("arn:aws:s3:::batch-inbox-", "arn:aws:s3:::model-artifacts-")
                    ), resource


def test_it_is_a_well_formed_managed_policy():
    document = policy()
    assert set(document) == {"Version", "Statement"}
    assert document["Version"] == "2012-10-17"
    sids = [statement["Sid"] for statement in document["Statement"]]
    assert len(sids) == len(set(sids))
    assert len(re.sub(r"\s", "", POLICY_PATH.read_text())) <= MANAGED_POLICY_LIMIT
