"""The passing case of every policy rule: the resources our program really registers.

Resource rules judge inputs (what `pulumi preview` hands the analyzer); stack rules
judge state (the engine hands them outputs). Each rule's failing cases are in
tests/policy/test_rules.py.
"""

from __future__ import annotations

import pytest
from pulumi_policy import StackValidationPolicy

from policy import rules
from tests.infra.conftest import StackRun
from tests.policy.harness import Resource, violations

# The resource types each rule is about; the stack must contain them, or a pass is hollow.
JUDGED = {
    "s3-no-public-access": {rules.PUBLIC_ACCESS_BLOCK, rules.BUCKET_POLICY, *rules.BUCKET_TYPES},
    "s3-encryption-at-rest": set(rules.BUCKET_SSE_TYPES),
    "s3-tls-only": {rules.BUCKET_POLICY},
    "s3-bucket-guards-present": set(rules.BUCKET_TYPES),
    "cloudfront-oac-origins": {rules.DISTRIBUTION, rules.ORIGIN_ACCESS_CONTROL},
    "cloudfront-https-only": {rules.DISTRIBUTION},
    "cloudfront-api-not-cached": {rules.DISTRIBUTION},
    "cloudfront-custom-domain-tls": {rules.DISTRIBUTION},
    "waf-common-rules-admit-uploads": {rules.WEB_ACL},
    "iam-no-wildcard-actions": {rules.IAM_ROLE, *rules.IAM_INLINE_POLICY_TYPES},
    "cors-no-wildcard-origin": {rules.HTTP_API},
    "log-retention-set": {rules.LOG_GROUP},
    "lambda-log-groups-managed": {rules.LAMBDA_FUNCTION},
    "stepfunctions-logging-enabled": {rules.STATE_MACHINE},
    "serverless-capacity-in-range": {rules.ENDPOINT_CONFIGURATION, rules.LAMBDA_FUNCTION},
    "api-stage-throttling": {rules.HTTP_API_STAGE},
    "ecr-scan-on-push": {rules.ECR_REPOSITORY},
    "dynamodb-pitr-and-encryption": {rules.DYNAMODB_TABLE},
}
# Rules about what only a config key creates, judged on the dev stack with that key on.
WITH_CONFIG = {
    "cloudfront-custom-domain-tls": {
        "image-classifier:domainName": "classify.classifier-team.io",
        "image-classifier:hostedZoneId": "Z0123456789ABCDEFGHIJ",
    },
    "waf-common-rules-admit-uploads": {"image-classifier:waf": "true"},
    "stepfunctions-logging-enabled": {"image-classifier:batch": "true"},
}


def analyzed(run: StackRun, policy) -> list[Resource]:
    stack_rule = isinstance(policy, StackValidationPolicy)
    return [
        Resource(r.type, r.name, r.state if stack_rule else r.inputs)
        for r in run.resources
        if r.custom
    ]


def test_every_rule_is_checked_against_the_stack():
    assert set(JUDGED) == {p.name for p in rules.POLICIES}


@pytest.mark.parametrize("policy", rules.POLICIES, ids=lambda p: p.name)
def test_rule_passes_on_the_dev_stack(dev_stack: StackRun, run_stack, policy):
    stack = run_stack(WITH_CONFIG[policy.name]) if policy.name in WITH_CONFIG else dev_stack
    assert stack.error is None, stack.error
    registered = {r.type for r in stack.resources}
    assert JUDGED[policy.name] & registered, f"no resource for {policy.name} to judge"

    assert violations(policy, analyzed(stack, policy)) == []


@pytest.fixture(scope="module")
def largest_stack(run_stack) -> StackRun:
    """The stack at the top of every capacity range the config accepts."""
    run = run_stack(
        {
            "image-classifier:serverlessMemoryMb": "6144",
            "image-classifier:serverlessMaxConcurrency": "200",
            "image-classifier:serverlessProvisionedConcurrency": "200",
        }
    )
    assert run.error is None
    return run


@pytest.mark.parametrize("policy", rules.POLICIES, ids=lambda p: p.name)
def test_rule_passes_on_the_largest_settings(largest_stack: StackRun, policy):
    assert violations(policy, analyzed(largest_stack, policy)) == []


def test_a_tampered_stack_resource_is_caught(dev_stack: StackRun):
    """Bad on purpose, starting from what the program registered: CORS opened to all."""
    resources = analyzed(dev_stack, rules.cors_no_wildcard)
    tampered = [
        Resource(r.type, r.name, {**r.props, "corsConfiguration": {"allowOrigins": ["*"]}})
        if r.type == rules.HTTP_API
        else r
        for r in resources
    ]
    assert violations(rules.cors_no_wildcard, tampered)


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (
            lambda acl_rules: [
                r for r in acl_rules if r["name"] != "body-signatures-outside-uploads"
            ],
            "no later rule blocks outside /api/predict",
        ),
        (
            lambda acl_rules: [
                {
                    **r,
                    "statement": {
                        "managedRuleGroupStatement": {
                            **r["statement"]["managedRuleGroupStatement"],
                            "ruleActionOverrides": None,
                        }
                    },
                }
                if r["name"] == rules.KNOWN_BAD_INPUTS_RULE_SET
                else r
                for r in acl_rules
            ],
            "without overriding JavaDeserializationRCE_BODY, Log4JRCE_BODY, ReactJSRCE_BODY",
        ),
    ],
    ids=["counted-without-the-label-rule", "body-rules-block-uploads"],
)
def test_the_stacks_web_acl_fails_the_waf_rule_when_tampered(run_stack, tamper, expected):
    """Decision 14's shape, as the program registers it, judged both ways: it passes
    (above), and loses its label rule or its overrides only to fail."""
    stack = run_stack(WITH_CONFIG["waf-common-rules-admit-uploads"])
    policy = rules.waf_common_rules_admit_uploads
    resources = [
        Resource(r.type, r.name, {**r.props, "rules": tamper(r.props["rules"])})
        if r.type == rules.WEB_ACL
        else r
        for r in analyzed(stack, policy)
    ]
    assert any(expected in message for message in violations(policy, resources))
