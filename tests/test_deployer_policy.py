"""`docs/deployer-policy.json`, the IAM policy of the role that runs `pulumi preview`, `up`,
`refresh` and `destroy`, checked against the program it must be enough for.

- Every AWS call the dynamic providers make (found by reading `components/` with `ast`:
  the boto3 clients a module creates and the client methods it calls, mapped to IAM
  actions through botocore's service models) is allowed.
- Every pulumi-aws resource type the program creates has its life-cycle actions allowed
  (`RESOURCE_ACTIONS`); a resource type this test does not know fails it, so adding one to
  the program means adding its permissions to the policy.
- Every image the program builds with pulumi-docker-build can be pushed to the stack's
  ECR repositories, and read back on refresh (`IMAGE_PUSH_ACTIONS`).
- The document is a well-formed identity policy: no `*` action, no service wildcard, and
  `"Resource": "*"` only for reads and for the few writes AWS cannot scope.

Only public APIs: `ast`, `json`, and botocore's `Session.get_service_model`,
`get_waiter_model`, `ServiceModel.operation_names` and `botocore.xform_name`.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest

ROOT = Path(__file__).resolve().parent.parent
POLICY_PATH = ROOT / "docs" / "deployer-policy.json"
BATCH_POLICY_PATH = ROOT / "docs" / "deployer-policy-batch.json"
"""What config `batch` adds, attached beside the first as a customer managed policy: a
role's inline policies hold 10,240 characters in all, which the first one nearly fills."""
# Every module of the program (the top-level ones such as __main__.py, and components/);
# globbed, never listed, because modules move and are renamed.
PROGRAM_FILES = sorted([*ROOT.glob("*.py"), *(ROOT / "components").rglob("*.py")])

INLINE_POLICY_LIMIT = 10_240
"""Characters (whitespace excluded) AWS allows in a role's inline policies."""
MANAGED_POLICY_LIMIT = 6_144
"""Characters (whitespace excluded) AWS allows in one customer managed policy."""
POLICY_LIMITS = {POLICY_PATH: INLINE_POLICY_LIMIT, BATCH_POLICY_PATH: MANAGED_POLICY_LIMIT}

# Where an IAM action prefix is not the service model's signing name.
IAM_PREFIX_BY_SERVICE = {"cloudwatch": "cloudwatch"}
# Where an IAM action is not named after the API operation that needs it.
IAM_ACTION_BY_OPERATION = {
    "s3:HeadObject": "s3:GetObject",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
}
# IAM prefixes whose actions are the API's operation names, so a typo can be caught.
CHECKED_PREFIXES = {
    "acm": "acm",
    "cloudfront": "cloudfront",
    "dynamodb": "dynamodb",
    "ecr": "ecr",
    "events": "events",
    "cloudwatch": "cloudwatch",
    "iam": "iam",
    "lambda": "lambda",
    "logs": "logs",
    "route53": "route53",
    "sagemaker": "sagemaker",
    "sns": "sns",
    "states": "stepfunctions",
    "sts": "sts",
    "wafv2": "wafv2",
}
NOT_API_OPERATIONS = {
    "iam:PassRole",
    # Vended logs (the HTTP API's access logs): API Gateway calls these on our behalf.
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
}
"""Permission-only actions: checked by AWS, never called by name."""

WRITES_WITHOUT_RESOURCE_LEVEL = {
    # HTTP API access logs: CloudWatch Logs vends the delivery; these take no resource.
    "logs:CreateLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:PutResourcePolicy",
    # Checked while previewing a state machine's definition, which has no ARN yet.
    "states:ValidateStateMachineDefinition",
    # A certificate's ARN exists only once ACM has created it.
    "acm:RequestCertificate",
    # SNS knows one resource type, the topic; subscriptions are addressed by their ARN.
    "sns:SetSubscriptionAttributes",
    "sns:Unsubscribe",
}
"""Writes AWS cannot scope to a resource, so they may (must) use `"Resource": "*"`."""
READ_VERBS = ("Get", "Describe", "List")
BATCH_MODULE = "components/batch_pipeline.py"

# What each pulumi-aws resource type needs beyond reading the stack's own config:
# create, read (preview, refresh), update in place where the program does, delete.
APIGATEWAY_V2 = {"apigateway:GET", "apigateway:POST", "apigateway:PATCH", "apigateway:DELETE"}
RESOURCE_ACTIONS: dict[str, set[str]] = {
    "s3.Bucket": {
        "s3:CreateBucket",
        "s3:ListBucket",
        "s3:DeleteBucket",
        "s3:GetBucketTagging",
        "s3:PutBucketTagging",
        "s3:ListBucketVersions",  # force_destroy empties every version
    },
    "s3.BucketOwnershipControls": {
        "s3:GetBucketOwnershipControls",
        "s3:PutBucketOwnershipControls",
    },
    "s3.BucketPublicAccessBlock": {
        "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
    },
    "s3.BucketServerSideEncryptionConfiguration": {
        "s3:GetEncryptionConfiguration",
        "s3:PutEncryptionConfiguration",
    },
    "s3.BucketVersioning": {"s3:GetBucketVersioning", "s3:PutBucketVersioning"},
    "s3.BucketLifecycleConfiguration": {
        "s3:GetLifecycleConfiguration",
        "s3:PutLifecycleConfiguration",
    },
    "s3.BucketPolicy": {"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"},
    "s3.BucketObjectv2": {
        "s3:PutObject",
        "s3:GetObject",
        "s3:GetObjectTagging",
        "s3:PutObjectTagging",
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
    },
    "cloudwatch.LogGroup": {
        "logs:CreateLogGroup",
        "logs:DescribeLogGroups",
        "logs:PutRetentionPolicy",
        "logs:TagResource",
        "logs:ListTagsForResource",
        "logs:DeleteLogGroup",
    },
    "iam.Role": {
        "iam:CreateRole",
        "iam:GetRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:TagRole",
        "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies",
        "iam:ListInstanceProfilesForRole",
        "iam:DeleteRole",
    },
    "iam.RolePolicy": {"iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"},
    "sagemaker.Model": {
        "sagemaker:CreateModel",
        "sagemaker:DescribeModel",
        "sagemaker:AddTags",
        "sagemaker:ListTags",
        "sagemaker:DeleteModel",
        "iam:PassRole",
    },
    "ecr.Repository": {
        "ecr:CreateRepository",
        "ecr:DescribeRepositories",
        "ecr:ListTagsForResource",
        "ecr:TagResource",
        "ecr:PutImageScanningConfiguration",
        "ecr:PutImageTagMutability",
        "ecr:DeleteRepository",  # force_delete: with the images in it
    },
    "ecr.LifecyclePolicy": {
        "ecr:PutLifecyclePolicy",
        "ecr:GetLifecyclePolicy",
        "ecr:DeleteLifecyclePolicy",
    },
    "sagemaker.EndpointConfiguration": {
        "sagemaker:CreateEndpointConfig",
        "sagemaker:DescribeEndpointConfig",
        "sagemaker:AddTags",
        "sagemaker:ListTags",
        "sagemaker:DeleteEndpointConfig",
    },
    "lambda_.Function": {
        "lambda:CreateFunction",
        "lambda:GetFunction",
        "lambda:GetFunctionCodeSigningConfig",
        "lambda:ListVersionsByFunction",
        "lambda:UpdateFunctionCode",
        "lambda:UpdateFunctionConfiguration",
        "lambda:TagResource",
        "lambda:DeleteFunction",
        "iam:PassRole",
    },
    "lambda_.Permission": {"lambda:AddPermission", "lambda:GetPolicy", "lambda:RemovePermission"},
    "apigatewayv2.Api": APIGATEWAY_V2,
    "apigatewayv2.Integration": APIGATEWAY_V2,
    "apigatewayv2.Route": APIGATEWAY_V2,
    "apigatewayv2.Stage": APIGATEWAY_V2
    | {
        # Access logs to a log group are a CloudWatch Logs delivery.
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
    },
    "cloudfront.OriginAccessControl": {
        "cloudfront:CreateOriginAccessControl",
        "cloudfront:GetOriginAccessControl",
        "cloudfront:UpdateOriginAccessControl",
        "cloudfront:DeleteOriginAccessControl",
    },
    "cloudfront.ResponseHeadersPolicy": {
        "cloudfront:CreateResponseHeadersPolicy",
        "cloudfront:GetResponseHeadersPolicy",
        "cloudfront:UpdateResponseHeadersPolicy",
        "cloudfront:DeleteResponseHeadersPolicy",
    },
    "acm.Certificate": {
        "acm:RequestCertificate",
        "acm:DescribeCertificate",
        "acm:AddTagsToCertificate",
        "acm:ListTagsForCertificate",
        "acm:DeleteCertificate",
    },
    # It only waits: ACM's status of the certificate, polled until it is issued.
    "acm.CertificateValidation": {"acm:DescribeCertificate"},
    "route53.Record": {
        "route53:ChangeResourceRecordSets",
        "route53:ListResourceRecordSets",
        "route53:GetHostedZone",
        "route53:GetChange",
    },
    "wafv2.WebAcl": {
        "wafv2:CreateWebACL",
        "wafv2:GetWebACL",
        "wafv2:UpdateWebACL",
        "wafv2:TagResource",
        "wafv2:ListTagsForResource",
        "wafv2:DeleteWebACL",
    },
    # WAF gives its log delivery a resource policy on the log group itself.
    "wafv2.WebAclLoggingConfiguration": {
        "wafv2:PutLoggingConfiguration",
        "wafv2:GetLoggingConfiguration",
        "wafv2:DeleteLoggingConfiguration",
        "logs:CreateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    },
    "cloudfront.Distribution": {
        "cloudfront:CreateDistribution",
        "cloudfront:GetDistribution",
        "cloudfront:UpdateDistribution",
        "cloudfront:TagResource",
        "cloudfront:ListTagsForResource",
        "cloudfront:DeleteDistribution",
    },
    "sns.Topic": {
        "sns:CreateTopic",
        "sns:GetTopicAttributes",
        "sns:SetTopicAttributes",
        "sns:TagResource",
        "sns:ListTagsForResource",
        "sns:DeleteTopic",
    },
    "sns.TopicSubscription": {"sns:Subscribe", "sns:GetSubscriptionAttributes", "sns:Unsubscribe"},
    # Deleting it restores SNS's default policy.
    "sns.TopicPolicy": {"sns:GetTopicAttributes", "sns:SetTopicAttributes"},
    # The batch pipeline: the inbox bucket's events to EventBridge, a rule and its target
    # (with the role it passes), the state machine (its definition validated on preview,
    # its versions read back, its execution logs a CloudWatch Logs delivery).
    "s3.BucketNotification": {"s3:PutBucketNotification", "s3:GetBucketNotification"},
    "cloudwatch.EventRule": {
        "events:PutRule",
        "events:DescribeRule",
        "events:TagResource",
        "events:ListTagsForResource",
        "events:DeleteRule",
    },
    "cloudwatch.EventTarget": {
        "events:PutTargets",
        "events:ListTargetsByRule",
        "events:RemoveTargets",
        "iam:PassRole",
    },
    "sfn.StateMachine": {
        "states:ValidateStateMachineDefinition",
        "states:CreateStateMachine",
        "states:DescribeStateMachine",
        "states:ListStateMachineVersions",
        "states:UpdateStateMachine",
        "states:TagResource",
        "states:ListTagsForResource",
        "states:DeleteStateMachine",
        "iam:PassRole",
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
    },
    # Budgets' IAM actions are not its API's: ModifyBudget creates, updates and deletes.
    "budgets.Budget": {
        "budgets:ModifyBudget",
        "budgets:ViewBudget",
        "budgets:TagResource",
        "budgets:UntagResource",
        "budgets:ListTagsForResource",
    },
    "cloudwatch.MetricAlarm": {
        "cloudwatch:PutMetricAlarm",
        "cloudwatch:DescribeAlarms",
        "cloudwatch:TagResource",
        "cloudwatch:ListTagsForResource",
        "cloudwatch:DeleteAlarms",
    },
    "cloudwatch.Dashboard": {
        "cloudwatch:PutDashboard",
        "cloudwatch:GetDashboard",
        "cloudwatch:DeleteDashboards",
    },
    # The predictions table: TTL, point-in-time recovery and deletion protection are each
    # a call of their own after CreateTable, and read back on refresh.
    "dynamodb.Table": {
        "dynamodb:CreateTable",
        "dynamodb:DescribeTable",
        "dynamodb:UpdateTable",
        "dynamodb:UpdateTimeToLive",
        "dynamodb:DescribeTimeToLive",
        "dynamodb:UpdateContinuousBackups",
        "dynamodb:DescribeContinuousBackups",
        "dynamodb:TagResource",
        "dynamodb:UntagResource",
        "dynamodb:ListTagsOfResource",
        "dynamodb:DeleteTable",
    },
}
INVOKE_ACTIONS: dict[str, set[str]] = {
    # Data sources the program reads; the partition and region need no call.
    "get_caller_identity": {"sts:GetCallerIdentity"},
    "get_caller_identity_output": {"sts:GetCallerIdentity"},
    "get_partition": set(),
    "get_partition_output": set(),
    "get_region": set(),
    "get_region_output": set(),
    # A model version served from the registry (config `model` set to one): its folder listed, its
    # sidecar metadata.json read, in the stack's artifact bucket.
    "get_objects": {"s3:ListBucket"},
    "get_objects_output": {"s3:ListBucket"},
    "get_object": {"s3:GetObject"},
    "get_object_output": {"s3:GetObject"},
    # The registry login pulumi-docker-build pushes with.
    "get_authorization_token": {"ecr:GetAuthorizationToken"},
    "get_authorization_token_output": {"ecr:GetAuthorizationToken"},
}
IMAGE_PUSH_ACTIONS = {
    # BuildKit's push: which layers exist, upload the others, put the manifest.
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    # The provider reads the pushed manifest back on refresh.
    "ecr:BatchGetImage",
}
"""What the deploy role needs for each `pulumi_docker_build.Image` the program pushes."""


# -- the policy -----------------------------------------------------------------------------


@cache
def policy() -> dict[str, Any]:
    """Both documents' statements: what the deploy role of a stack with `batch` on may do."""
    documents = [json.loads(path.read_text()) for path in POLICY_LIMITS]
    return {"Version": "2012-10-17", "Statement": [s for d in documents for s in d["Statement"]]}


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allowed_actions() -> set[str]:
    return {
        action
        for statement in policy()["Statement"]
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
    }


# -- what the program's modules call --------------------------------------------------------


@cache
def session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def service_model(service: str) -> Any:
    return session().get_service_model(service)


@cache
def operations_by_method(service: str) -> dict[str, str]:
    """`create_endpoint` -> `CreateEndpoint`, as boto3 names a client's methods."""
    return {botocore.xform_name(name): name for name in service_model(service).operation_names}


def iam_action(service: str, operation: str) -> str:
    prefix = IAM_PREFIX_BY_SERVICE.get(service, service_model(service).signing_name)
    action = f"{prefix}:{operation}"
    return IAM_ACTION_BY_OPERATION.get(action, action)


def string_arg(call: ast.Call) -> str | None:
    if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def calls(tree: ast.AST) -> Iterator[ast.Call]:
    return (node for node in ast.walk(tree) if isinstance(node, ast.Call))


def boto3_services(tree: ast.AST) -> set[str]:
    """Services of the clients a module creates: `boto3.client("x")`, `session.client("x")`."""
    return {
        name
        for call in calls(tree)
        if isinstance(call.func, ast.Attribute | ast.Name)
        and (call.func.attr if isinstance(call.func, ast.Attribute) else call.func.id) == "client"
        and (name := string_arg(call)) is not None
    }


def called_operations(tree: ast.AST, service: str) -> set[str]:
    """Operations of `service` the module calls: client methods, paginators, waiters."""
    methods = operations_by_method(service)
    found = set()
    for call in calls(tree):
        if not isinstance(call.func, ast.Attribute):
            continue
        method, argument = call.func.attr, string_arg(call)
        if method in methods:
            found.add(methods[method])
        elif method == "get_paginator" and argument in methods:
            found.add(methods[argument])
        elif method == "get_waiter" and argument is not None:
            found.add(waiter_operation(service, argument))
    return found


def waiter_operation(service: str, method_name: str) -> str:
    """The operation a waiter polls: `endpoint_in_service` -> `DescribeEndpoint`."""
    waiters = session().get_waiter_model(service)
    by_method = {botocore.xform_name(name): name for name in waiters.waiter_names}
    return waiters.get_waiter(by_method[method_name]).operation


def provider_actions() -> dict[str, set[str]]:
    """IAM actions the program's own AWS calls need, by module."""
    found: dict[str, set[str]] = {}
    for path in PROGRAM_FILES:
        tree = ast.parse(path.read_text(), filename=str(path))
        actions = {
            iam_action(service, operation)
            for service in boto3_services(tree)
            for operation in called_operations(tree, service)
        }
        if actions:
            found[path.relative_to(ROOT).as_posix()] = actions
    return found


def _is_input_type(name: str) -> bool:
    """`lambda_.FunctionLoggingConfigArgs`: a nested input of a resource, which calls AWS
    for nothing itself (the provider names every such class `...Args` or `...ArgsDict`)."""
    return name.endswith(("Args", "ArgsDict"))


def pulumi_aws_usage() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Resource types (`s3.Bucket`) and data sources (`get_region_output`) the program
    uses, each with the files that use it."""
    resources: dict[str, set[str]] = {}
    invokes: dict[str, set[str]] = {}
    for path in PROGRAM_FILES:
        tree = ast.parse(path.read_text(), filename=str(path))
        aliases = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name == "pulumi_aws"
        }
        name = path.relative_to(ROOT).as_posix()
        for call in calls(tree):
            chain = []
            func: ast.expr = call.func
            while isinstance(func, ast.Attribute):
                chain.insert(0, func.attr)
                func = func.value
            if not (isinstance(func, ast.Name) and func.id in aliases and chain):
                continue
            if chain[-1].startswith("get_"):
                invokes.setdefault(chain[-1], set()).add(name)
            elif len(chain) == 2 and chain[1][:1].isupper() and not _is_input_type(chain[1]):
                resources.setdefault(".".join(chain), set()).add(name)
    return resources, invokes


def docker_build_images() -> set[str]:
    """The program's files that build an image with pulumi-docker-build (`<alias>.Image`)."""
    found = set()
    for path in PROGRAM_FILES:
        tree = ast.parse(path.read_text(), filename=str(path))
        aliases = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name == "pulumi_docker_build"
        }
        for call in calls(tree):
            func = call.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "Image"
                and isinstance(func.value, ast.Name)
                and func.value.id in aliases
            ):
                found.add(path.relative_to(ROOT).as_posix())
    return found


# -- the tests ------------------------------------------------------------------------------


def test_the_scan_sees_the_dynamic_providers():
    # Not vacuous: the endpoint rollout and the CloudFront invalidation are found, wherever
    # they live in components/.
    everything = set().union(*provider_actions().values())
    assert {"sagemaker:UpdateEndpoint", "cloudfront:CreateInvalidation"} <= everything


@pytest.mark.parametrize("module", sorted(provider_actions()))
def test_every_call_of_the_dynamic_providers_is_allowed(module: str):
    missing = provider_actions()[module] - allowed_actions()
    assert not missing, f"{module} calls AWS with {sorted(missing)}; add them to {POLICY_PATH}"


def test_every_pulumi_aws_resource_type_has_its_permissions():
    resources, invokes = pulumi_aws_usage()
    assert resources, "no pulumi_aws resource found: is the scan still reading the program?"
    unknown = {kind: files for kind, files in resources.items() if kind not in RESOURCE_ACTIONS}
    assert not unknown, (
        f"new resource types {unknown}: add what creating, reading, updating and deleting "
        f"them needs to {POLICY_PATH.name} and to RESOURCE_ACTIONS here"
    )
    unknown_invokes = set(invokes) - set(INVOKE_ACTIONS)
    assert not unknown_invokes, f"new data sources {unknown_invokes}: add them to INVOKE_ACTIONS"
    needed = set().union(*(RESOURCE_ACTIONS[kind] for kind in resources))
    needed |= set().union(*(INVOKE_ACTIONS[name] for name in invokes))
    missing = needed - allowed_actions()
    assert not missing, f"{POLICY_PATH.name} lacks {sorted(missing)}"


def test_the_images_the_program_builds_can_be_pushed_to_the_stacks_repositories_only():
    assert docker_build_images(), "no image found: is the scan still reading the program?"
    missing = IMAGE_PUSH_ACTIONS - allowed_actions()
    assert not missing, f"{POLICY_PATH.name} lacks {sorted(missing)}"
    for statement in policy()["Statement"]:
        if set(as_list(statement["Action"])) & IMAGE_PUSH_ACTIONS:
            for resource in as_list(statement["Resource"]):
                assert resource.startswith("arn:aws:ecr:*:*:repository/"), statement["Sid"]


def test_the_roles_the_program_passes_may_only_go_to_their_service():
    passes = [s for s in policy()["Statement"] if "iam:PassRole" in as_list(s["Action"])]
    services = set()
    for statement in passes:
        assert as_list(statement["Action"]) == ["iam:PassRole"], statement["Sid"]
        assert "*" not in as_list(statement["Resource"]), statement["Sid"]
        services.add(statement["Condition"]["StringEquals"]["iam:PassedToService"])
    assert services == {
        "sagemaker.amazonaws.com",
        "lambda.amazonaws.com",
        "states.amazonaws.com",
        "events.amazonaws.com",
    }


def test_the_policy_is_a_well_formed_identity_policy():
    for path, limit in POLICY_LIMITS.items():
        document = json.loads(path.read_text())
        assert set(document) == {"Version", "Statement"}, path.name
        assert document["Version"] == "2012-10-17", path.name
        compact = re.sub(r"\s", "", path.read_text())
        assert len(compact) <= limit, f"{path.name} is too long for the role to hold"
    document = policy()
    sids = [statement["Sid"] for statement in document["Statement"]]
    assert len(sids) == len(set(sids)), "Sids are unique"
    for statement in document["Statement"]:
        assert re.fullmatch(r"[A-Za-z0-9]+", statement["Sid"]), statement["Sid"]
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert statement["Effect"] == "Allow", statement["Sid"]
        actions = as_list(statement["Action"])
        assert actions, statement["Sid"]
        assert len(actions) == len(set(actions)), statement["Sid"]
        for action in actions:
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), (statement["Sid"], action)
        resources = as_list(statement["Resource"])
        assert resources, statement["Sid"]
        for resource in resources:
            assert resource == "*" or resource.startswith("arn:aws:"), (statement["Sid"], resource)


def test_a_stack_without_batch_needs_only_the_first_document():
    resources, _ = pulumi_aws_usage()
    batch_only = {kind for kind, files in resources.items() if files == {BATCH_MODULE}}
    assert batch_only, "the batch pipeline's own resource types are found"
    needed = set().union(*(RESOURCE_ACTIONS[kind] for kind in set(resources) - batch_only))
    first = json.loads(POLICY_PATH.read_text())["Statement"]
    missing = needed - {action for statement in first for action in as_list(statement["Action"])}
    assert not missing, f"{POLICY_PATH.name} lacks {sorted(missing)}"
    for statement in json.loads(BATCH_POLICY_PATH.read_text())["Statement"]:
        for resource in as_list(statement["Resource"]):
            batch = "batch-" in resource or "/vendedlogs/states/" in resource
            assert batch or resource == "*", (statement["Sid"], resource)


def test_no_wildcard_actions_and_no_wildcard_resource_for_a_write_that_can_be_scoped():
    for statement in policy()["Statement"]:
        for action in as_list(statement["Action"]):
            assert "*" not in action, (statement["Sid"], action)
        if "*" not in as_list(statement["Resource"]):
            continue
        assert as_list(statement["Resource"]) == ["*"], statement["Sid"]
        for action in as_list(statement["Action"]):
            verb = action.split(":", 1)[1]
            assert verb.startswith(READ_VERBS) or action in WRITES_WITHOUT_RESOURCE_LEVEL, (
                f'{statement["Sid"]}: {action} can be scoped to a resource, not "*"'
            )


def test_every_action_exists():
    """Typos would only show as AccessDenied in a real deployment."""
    for action in sorted(allowed_actions() - NOT_API_OPERATIONS):
        prefix, name = action.split(":", 1)
        if prefix not in CHECKED_PREFIXES:
            continue
        operations = set(service_model(CHECKED_PREFIXES[prefix]).operation_names)
        assert name in operations, f"{action} is not an operation of {prefix}"


def test_the_rollout_describes_the_stacks_endpoints_only():
    """It lists endpoints by name (ListEndpoints has no resource-level permissions) and
    describes only those named like the stack's, never every endpoint of the region."""
    for statement in policy()["Statement"]:
        if "sagemaker:DescribeEndpoint" in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                assert resource.startswith("arn:aws:sagemaker:*:*:endpoint"), statement["Sid"]
                assert resource.split("/", 1)[1].startswith("image-classifier-"), statement["Sid"]


def test_the_rollout_may_tag_and_untag_the_stacks_endpoints():
    """It creates the endpoint with the stack's tags and changes them in place."""
    endpoint = "arn:aws:sagemaker:*:*:endpoint/image-classifier-*"
    for action in ("sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:CreateEndpoint"):
        assert any(
            action in as_list(statement["Action"]) and endpoint in as_list(statement["Resource"])
            for statement in policy()["Statement"]
        ), action
