"""The role of SageMaker Batch Transform jobs (config `batch`, `components.transform_role`)
under Pulumi's mocks: what it may do, exactly, the output the batch CLI reads, and that
the deploy role may manage it (its work's expiry: tests/infra/test_batch_pipeline.py)."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

import pytest

from components.transform_role import TransformArns, transform_statements
from tests.infra.conftest import ACCOUNT, PROJECT, REGION, ROOT, StackRun

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
BUCKET = "aws:s3/bucket:Bucket"


@pytest.fixture(scope="module")
def batch_stack(run_stack) -> StackRun:
    run = run_stack({f"{PROJECT}:batch": "true"})
    assert run.error is None, run.error
    return run


def test_a_stack_without_batch_has_no_transform_role(dev_stack: StackRun):
    assert "transform_role_arn" not in dev_stack.outputs
    assert not [r for r in dev_stack.of_type(ROLE) if "transform" in r.name]


def test_the_output_is_the_role_only_sagemaker_of_this_account_assumes(batch_stack: StackRun):
    role = batch_stack.one(ROLE, "batch-transform-role")
    assert batch_stack.outputs["transform_role_arn"] == role.state["arn"]
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_it_reads_the_bucket_and_the_registry_writes_transform_and_its_logs(batch_stack):
    policy = json.loads(batch_stack.one(ROLE_POLICY, "batch-transform-policy").inputs["policy"])
    inbox = batch_stack.one(BUCKET, "batch-inbox").state["arn"]
    artifacts = batch_stack.one(BUCKET, "model-artifacts").state["arn"]
    repository = batch_stack.outputs["serving_image"]  # an ECR repository's, by digest
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["ReadTheImagesAndTheManifest"]["Resource"] == f"{inbox}/*"
    assert statements["WriteTheOutputs"]["Resource"] == f"{inbox}/transform/*"
    assert statements["ReadTheRegistry"]["Resource"] == f"{artifacts}/models/*"
    pulled = statements["PullTheServingImage"]["Resource"]
    assert pulled.startswith(f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/")
    assert repository.split("/", 1)[1].startswith(pulled.split("/", 1)[1])
    log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/sagemaker/TransformJobs"
    assert policy["Statement"] == transform_statements(
        TransformArns(inbox, artifacts, pulled, log_group, f"{PROJECT}-dev")
    )
    assert statements["WriteTheJobsLogs"]["Resource"] == (f"{log_group}:log-stream:{PROJECT}-dev-*")
    for statement in policy["Statement"]:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert action.split(":")[1][:1].isupper(), "no wildcard action"
            assert not action.startswith(("s3:Delete", "iam:", "sagemaker:")), action


def allowed(path: str, action: str, arn: str) -> bool:
    policy = json.loads((ROOT / "docs" / path).read_text())
    for statement in policy["Statement"]:
        actions = statement["Action"]
        actions = [actions] if isinstance(actions, str) else actions
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        if action in actions and any(fnmatchcase(arn, pattern) for pattern in resources):
            return True
    return False


def test_the_deploy_role_manages_it_and_the_operator_may_pass_it_to_sagemaker(batch_stack):
    arn = batch_stack.outputs["transform_role_arn"]
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:DeleteRole"):
        assert allowed("deployer-policy-batch.json", action, arn), action
    assert allowed("operator-policy-transform.json", "iam:PassRole", arn)
    bucket = batch_stack.outputs["batch_bucket"]
    assert allowed("operator-policy-transform.json", "s3:PutObject", f"arn:aws:s3:::{bucket}/x")
    registry = batch_stack.outputs["artifact_bucket"]
    key = f"arn:aws:s3:::{registry}/models/3f9a1c2b4d5e/metadata.json"
    assert allowed("operator-policy-transform.json", "s3:GetObject", key)
