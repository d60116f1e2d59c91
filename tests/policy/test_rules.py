"""Every CrossGuard rule both ways: silent on a sound stack, loud on one bad property."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from policy import rules
from tests.policy.harness import Resource, violations
from tests.policy.stack_fixture import (
    BUCKET,
    CLOUDFRONT_READ,
    COMMON_BODY_RULES,
    SIGNATURE_LABELS,
    TLS_DENY,
    document,
    good_resources,
    label_rule,
)
from tests.policy_sdk_adapter import UNKNOWN_STRING_VALUE, UnknownValueError

Mutation = Callable[[dict[str, Resource]], None]


def set_props(resource: str, /, **changes: Any) -> Mutation:
    def mutate(resources: dict[str, Resource]) -> None:
        resources[resource] = replace(
            resources[resource], props={**resources[resource].props, **changes}
        )

    return mutate


def drop(name: str) -> Mutation:
    def mutate(resources: dict[str, Resource]) -> None:
        del resources[name]

    return mutate


def add(resource: Resource) -> Mutation:
    def mutate(resources: dict[str, Resource]) -> None:
        resources[resource.name] = resource

    return mutate


def serverless(**config: float) -> Mutation:
    return set_props(
        "endpoint-config",
        productionVariants=[
            {"variantName": "AllTraffic", "modelName": "m", "serverlessConfig": config}
        ],
    )


@dataclass(frozen=True)
class Bad:
    id: str
    policy: Any
    mutate: Mutation
    expected: str
    config: dict[str, Any] | None = None


ORIGIN = {"originId": "site", "domainName": f"{BUCKET}.s3.us-east-1.amazonaws.com"}
CDN = good_resources()["site-cdn"].props
API_BEHAVIOR = CDN["orderedCacheBehaviors"][1]
WEB_ACL_RULES = good_resources()["web-acl"].props["rules"]
COMMON, BAD_INPUTS, OVERSIZED, SIGNATURES = WEB_ACL_RULES


def api_behavior(**changes: Any) -> Mutation:
    behavior = {key: value for key, value in API_BEHAVIOR.items() if key != "cachePolicyId"}
    return set_props(
        "site-cdn", orderedCacheBehaviors=[CDN["orderedCacheBehaviors"][0], behavior | changes]
    )


def web_acl_rules(*acl_rules: dict[str, Any]) -> Mutation:
    return set_props("web-acl", rules=list(acl_rules))


def group_overrides(group: dict[str, Any], counted: list[str] | None, **changes: Any) -> dict:
    """`group` with only the `counted` rules overridden to count (None: no overrides)."""
    statement = group["statement"]["managedRuleGroupStatement"]
    overrides = (
        None
        if counted is None
        else [{"name": rule, "actionToUse": {"count": {}}} for rule in counted]
    )
    return (
        group
        | changes
        | {
            "statement": {
                "managedRuleGroupStatement": statement | {"ruleActionOverrides": overrides}
            }
        }
    )


def label_statement(labels: list[str], where: str, path: str) -> dict[str, Any]:
    return label_rule("x", 0.0, labels, where, path)["statement"]


ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"

BAD_CASES = [
    Bad(
        "public-access-block-off",
        rules.s3_no_public_access,
        set_props("site-public-access", restrictPublicBuckets=False),
        "restrictPublicBuckets",
    ),
    Bad(
        "public-canned-acl",
        rules.s3_no_public_access,
        set_props("site", acl="public-read"),
        "public canned ACL 'public-read'",
    ),
    Bad(
        "public-grant",
        rules.s3_no_public_access,
        set_props("site", grants=[{"type": "Group", "uri": ALL_USERS, "permissions": ["READ"]}]),
        "AllUsers",
    ),
    Bad(
        "public-acl-resource",
        rules.s3_no_public_access,
        add(
            Resource(
                "aws:s3/bucketAclV2:BucketAclV2",
                "site-acl",
                {"accessControlPolicy": {"grants": [{"grantee": {"uri": ALL_USERS}}]}},
            )
        ),
        "AllUsers",
    ),
    Bad(
        "bucket-policy-allows-anyone",
        rules.s3_no_public_access,
        set_props(
            "site-policy",
            policy=document(
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject"},
                TLS_DENY,
            ),
        ),
        "allows anyone",
    ),
    Bad(
        "no-sse-algorithm",
        rules.s3_encryption_at_rest,
        set_props("site-encryption", rules=[{"applyServerSideEncryptionByDefault": {}}]),
        "must encrypt by default",
    ),
    Bad(
        "no-sse-rule",
        rules.s3_encryption_at_rest,
        set_props("site-encryption", rules=[]),
        "no default encryption rule",
    ),
    Bad(
        "inline-bucket-sse-bad",
        rules.s3_encryption_at_rest,
        set_props(
            "site",
            serverSideEncryptionConfiguration={
                "rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "none"}}
            },
        ),
        "'none'",
    ),
    Bad(
        "policy-without-tls-deny",
        rules.s3_tls_only,
        set_props("site-policy", policy=document(CLOUDFRONT_READ)),
        "without TLS",
    ),
    Bad(
        "tls-condition-inverted",
        rules.s3_tls_only,
        set_props(
            "site-policy",
            policy=document(
                CLOUDFRONT_READ,
                {**TLS_DENY, "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
            ),
        ),
        "without TLS",
    ),
    Bad(
        "bucket-without-public-access-block",
        rules.s3_bucket_guards,
        drop("site-public-access"),
        "has no public access block",
    ),
    Bad(
        "bucket-without-encryption",
        rules.s3_bucket_guards,
        drop("site-encryption"),
        "has no encryption",
    ),
    Bad(
        "bucket-without-policy",
        rules.s3_bucket_guards,
        drop("site-policy"),
        "has no TLS-only bucket policy",
    ),
    Bad(
        "origin-without-oac",
        rules.cloudfront_private_origins,
        set_props("site-cdn", origins=[ORIGIN]),
        "has no Origin Access Control",
    ),
    Bad(
        "website-endpoint-origin",
        rules.cloudfront_private_origins,
        set_props(
            "site-cdn",
            origins=[
                {
                    "originId": "site",
                    "domainName": f"{BUCKET}.s3-website-us-east-1.amazonaws.com",
                    "customOriginConfig": {"originProtocolPolicy": "http-only"},
                }
            ],
        ),
        "public S3 website endpoint",
    ),
    Bad(
        "legacy-oai",
        rules.cloudfront_private_origins,
        set_props(
            "site-cdn",
            origins=[{**ORIGIN, "s3OriginConfig": {"originAccessIdentity": "origin-access-id/E1"}}],
        ),
        "legacy origin access identity",
    ),
    Bad(
        "oac-never-signs",
        rules.cloudfront_private_origins,
        set_props("site-oac", signingBehavior="never"),
        "must sign every request",
    ),
    Bad(
        "viewer-http-allowed",
        rules.cloudfront_https_only,
        set_props(
            "site-cdn",
            defaultCacheBehavior={"targetOriginId": "site", "viewerProtocolPolicy": "allow-all"},
        ),
        "allows plain HTTP",
    ),
    Bad(
        "api-cached-by-a-cache-policy",
        rules.cloudfront_api_not_cached,
        api_behavior(cachePolicyId="658327ea-f89d-4fab-a63d-7e88639e58f6"),
        "may cache its answers (cache policy 658327ea",
    ),
    Bad(
        "api-cached-by-legacy-ttls",
        rules.cloudfront_api_not_cached,
        api_behavior(minTtl=0.0, defaultTtl=60.0, maxTtl=0.0),
        "may cache its answers (defaultTtl 60)",
    ),
    Bad(
        "api-cached-by-default-ttls",
        rules.cloudfront_api_not_cached,
        api_behavior(),
        "defaultTtl 86400, maxTtl 3.1536e+07",
    ),
    Bad(
        "custom-domain-old-tls",
        rules.cloudfront_custom_domain_tls,
        set_props(
            "site-cdn",
            viewerCertificate={**CDN["viewerCertificate"], "minimumProtocolVersion": "TLSv1"},
        ),
        "minimumProtocolVersion 'TLSv1'",
    ),
    Bad(
        "custom-domain-default-certificate",
        rules.cloudfront_custom_domain_tls,
        set_props("site-cdn", viewerCertificate={"cloudfrontDefaultCertificate": True}),
        "serves classify.classifier-team.io",
    ),
    Bad(
        "waf-common-rules-block-uploads",
        rules.waf_common_rules_admit_uploads,
        web_acl_rules(group_overrides(COMMON, None), BAD_INPUTS, OVERSIZED, SIGNATURES),
        "without overriding SizeRestrictions_BODY, EC2MetaDataSSRF_BODY, GenericLFI_BODY, "
        "GenericRFI_BODY, CrossSiteScripting_BODY to count",
    ),
    Bad(
        "waf-body-size-overridden-to-block",
        rules.waf_common_rules_admit_uploads,
        web_acl_rules(
            group_overrides(COMMON, COMMON_BODY_RULES[1:]), BAD_INPUTS, OVERSIZED, SIGNATURES
        ),
        "every image upload",
    ),
    Bad(
        "waf-a-signature-rule-blocks-uploads",
        rules.waf_common_rules_admit_uploads,
        web_acl_rules(
            COMMON,
            group_overrides(BAD_INPUTS, ["JavaDeserializationRCE_BODY", "ReactJSRCE_BODY"]),
            OVERSIZED,
            SIGNATURES,
        ),
        "uses AWSManagedRulesKnownBadInputsRuleSet without overriding Log4JRCE_BODY to count",
    ),
    Bad(
        "waf-signatures-counted-without-the-label-rule",
        rules.waf_common_rules_admit_uploads,
        web_acl_rules(COMMON, BAD_INPUTS, OVERSIZED),
        "known-bad-inputs:JavaDeserializationRCE_Body, "
        "awswaf:managed:aws:known-bad-inputs:Log4JRCE_Body",
    ),
    Bad(
        "waf-size-counted-without-its-label-rule",
        rules.waf_common_rules_admit_uploads,
        web_acl_rules(COMMON, BAD_INPUTS, SIGNATURES),
        "off everywhere: awswaf:managed:aws:core-rule-set:SizeRestrictions_Body.",
    ),
    Bad(
        "waf-whole-group-counted-without-the-label-rules",
        rules.waf_common_rules_admit_uploads,
        web_acl_rules(group_overrides(COMMON, None, overrideAction={"count": {}}), BAD_INPUTS),
        "counts body rules of AWSManagedRulesCommonRuleSet that no later rule blocks",
    ),
    Bad(
        "waf-label-rule-before-the-groups",
        rules.waf_common_rules_admit_uploads,
        web_acl_rules(COMMON, BAD_INPUTS, OVERSIZED, SIGNATURES | {"priority": 1.0}),
        "core-rule-set:EC2MetaDataSSRF_Body",
    ),
    Bad(
        "waf-label-rule-only-counts",
        rules.waf_common_rules_admit_uploads,
        web_acl_rules(COMMON, BAD_INPUTS, OVERSIZED, SIGNATURES | {"action": {"count": {}}}),
        "no later rule blocks outside /api/predict",
    ),
    Bad(
        "waf-label-rule-misses-a-label",
        rules.waf_common_rules_admit_uploads,
        web_acl_rules(
            COMMON,
            BAD_INPUTS,
            OVERSIZED,
            SIGNATURES
            | {"statement": label_statement(SIGNATURE_LABELS[:-1], "EXACTLY", "/api/predict")},
        ),
        "off everywhere: awswaf:managed:aws:known-bad-inputs:ReactJSRCE_Body.",
    ),
    Bad(
        "waf-label-rule-spares-the-whole-api",
        rules.waf_common_rules_admit_uploads,
        web_acl_rules(
            COMMON,
            BAD_INPUTS,
            OVERSIZED,
            SIGNATURES | {"statement": label_statement(SIGNATURE_LABELS, "STARTS_WITH", "/api/")},
        ),
        "awswaf:managed:aws:core-rule-set:CrossSiteScripting_Body",
    ),
    Bad(
        "service-wildcard-action",
        rules.iam_no_wildcard_actions,
        set_props(
            "proxy-role",
            inlinePolicies=[
                {
                    "name": "invoke-endpoint",
                    "policy": document(
                        {"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}
                    ),
                }
            ],
        ),
        "sagemaker:*",
    ),
    Bad(
        "star-action",
        rules.iam_no_wildcard_actions,
        set_props(
            "proxy-logs",
            policy=document({"Effect": "Allow", "Action": ["logs:PutLogEvents", "*"]}),
        ),
        "allows *",
    ),
    Bad(
        "not-action-allow",
        rules.iam_no_wildcard_actions,
        set_props(
            "proxy-logs",
            policy=document({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
        ),
        "NotAction",
    ),
    Bad(
        "managed-full-access",
        rules.iam_no_wildcard_actions,
        set_props("proxy-basic", policyArn="arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"),
        "AmazonSageMakerFullAccess",
    ),
    Bad(
        "api-cors-star",
        rules.cors_no_wildcard,
        set_props("api", corsConfiguration={"allowOrigins": ["*"]}),
        "'*'",
    ),
    Bad(
        "bucket-cors-star",
        rules.cors_no_wildcard,
        add(
            Resource(
                "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration",
                "site-cors",
                {"corsRules": [{"allowedMethods": ["GET"], "allowedOrigins": ["*"]}]},
            )
        ),
        "'*'",
    ),
    Bad(
        "function-url-cors-subdomain-star",
        rules.cors_no_wildcard,
        add(
            Resource(
                "aws:lambda/functionUrl:FunctionUrl",
                "proxy-url",
                {"cors": {"allowOrigins": ["https://*.cloudfront.net"]}},
            )
        ),
        "https://*.cloudfront.net",
    ),
    Bad(
        "log-group-without-retention",
        rules.log_retention_set,
        set_props("proxy-logs-group", retentionInDays=None),
        "keeps logs forever",
    ),
    Bad(
        "log-group-never-expire",
        rules.log_retention_set,
        set_props("proxy-logs-group", retentionInDays=0.0),
        "keeps logs forever",
    ),
    Bad(
        "lambda-log-group-unmanaged",
        rules.lambda_log_groups_managed,
        set_props("proxy", loggingConfig=None, name="proxy-other"),
        "/aws/lambda/proxy-other",
    ),
    Bad(
        "state-machine-logging-off",
        rules.state_machines_log_executions,
        set_props("batch-workflow", loggingConfiguration={"level": "OFF"}),
        "got level 'OFF'",
    ),
    Bad(
        "state-machine-logging-left-out",
        rules.state_machines_log_executions,
        set_props("batch-workflow", loggingConfiguration=None),
        "got level None",
    ),
    Bad(
        "state-machine-logging-nowhere",
        rules.state_machines_log_executions,
        set_props("batch-workflow", loggingConfiguration={"level": "ALL"}),
        "and a logDestination",
    ),
    Bad(
        "serverless-memory-1500",
        rules.serverless_capacity_in_range,
        serverless(memorySizeInMb=1500.0, maxConcurrency=5.0),
        "memorySizeInMb 1500",
    ),
    Bad(
        "serverless-memory-over-max",
        rules.serverless_capacity_in_range,
        serverless(memorySizeInMb=4096.0, maxConcurrency=5.0),
        "1024..3072",
        {"maxServerlessMemoryMb": 3072},
    ),
    Bad(
        "serverless-concurrency-0",
        rules.serverless_capacity_in_range,
        serverless(memorySizeInMb=2048.0, maxConcurrency=0.0),
        "maxConcurrency 0",
    ),
    Bad(
        "serverless-concurrency-201",
        rules.serverless_capacity_in_range,
        serverless(memorySizeInMb=2048.0, maxConcurrency=201.0),
        "within 1..200",
    ),
    Bad(
        "serverless-concurrency-over-configured-cap",
        rules.serverless_capacity_in_range,
        serverless(memorySizeInMb=2048.0, maxConcurrency=5.0),
        "within 1..4",
        {"maxServerlessConcurrency": 4},
    ),
    Bad(
        "provisioned-over-max",
        rules.serverless_capacity_in_range,
        serverless(memorySizeInMb=2048.0, maxConcurrency=5.0, provisionedConcurrency=10.0),
        "provisionedConcurrency 10",
    ),
    Bad(
        "instance-variant",
        rules.serverless_capacity_in_range,
        set_props(
            "endpoint-config",
            productionVariants=[{"variantName": "AllTraffic", "instanceType": "ml.m5.large"}],
        ),
        "is not serverless",
    ),
    Bad(
        "lambda-memory-too-small",
        rules.serverless_capacity_in_range,
        set_props("proxy", memorySize=64.0),
        "memorySize 64 MB must be within 128..10240",
    ),
    Bad(
        "lambda-memory-over-configured-cap",
        rules.serverless_capacity_in_range,
        set_props("proxy", memorySize=4096.0),
        "within 128..3008",
        {"maxLambdaMemoryMb": 3008},
    ),
    Bad(
        "lambda-reserved-zero",
        rules.serverless_capacity_in_range,
        set_props("proxy", reservedConcurrentExecutions=0.0),
        "reservedConcurrentExecutions 0",
    ),
    Bad(
        "stage-without-throttling",
        rules.api_stage_throttling,
        set_props("api-stage", defaultRouteSettings=None),
        "throttlingRateLimit",
    ),
    Bad(
        "stage-burst-zero",
        rules.api_stage_throttling,
        set_props(
            "api-stage",
            defaultRouteSettings={"throttlingRateLimit": 10.0, "throttlingBurstLimit": 0.0},
        ),
        "throttlingBurstLimit",
    ),
    Bad(
        "route-rate-zero",
        rules.api_stage_throttling,
        set_props(
            "api-stage",
            routeSettings=[{"routeKey": "POST /predict", "throttlingRateLimit": 0.0}],
        ),
        "POST /predict",
    ),
    Bad(
        "ecr-no-scan-on-push",
        rules.ecr_scanned_on_push,
        set_props("serving-repository", imageScanningConfiguration={"scanOnPush": False}),
        "must scan every image on push",
    ),
    Bad(
        "ecr-no-scanning-configuration",
        rules.ecr_scanned_on_push,
        set_props("serving-repository", imageScanningConfiguration=None),
        "must scan every image on push",
    ),
    Bad(
        "dynamodb-without-pitr",
        rules.dynamodb_recoverable_and_encrypted,
        set_props("predictions", pointInTimeRecovery={"enabled": False}),
        "must have point-in-time recovery",
    ),
    Bad(
        "dynamodb-pitr-left-out",
        rules.dynamodb_recoverable_and_encrypted,
        set_props("predictions", pointInTimeRecovery=None),
        "must have point-in-time recovery",
    ),
    Bad(
        "dynamodb-aws-owned-key-only",
        rules.dynamodb_recoverable_and_encrypted,
        set_props("predictions", serverSideEncryption=None),
        "must be encrypted with AWS KMS",
    ),
]


@pytest.mark.parametrize("policy", rules.POLICIES, ids=lambda p: p.name)
def test_rule_accepts_a_sound_stack(policy):
    assert violations(policy, good_resources().values()) == []


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.id)
def test_rule_rejects_a_bad_resource(case: Bad):
    resources = good_resources()
    case.mutate(resources)

    found = violations(case.policy, resources.values(), case.config)

    assert found, f"{case.policy.name} accepted {case.id}"
    assert any(case.expected in message for message in found), found


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.id)
def test_only_the_targeted_rule_objects(case: Bad):
    """A bad case trips its own rule; the others stay quiet, so messages point at the cause."""
    resources = good_resources()
    case.mutate(resources)
    noisy = {
        p.name
        for p in rules.POLICIES
        if p is not case.policy and violations(p, resources.values(), case.config)
    }
    # Removing a bucket's policy also removes its TLS statement, which is the point of both.
    assert noisy <= {"s3-bucket-guards-present", "s3-tls-only"} - {case.policy.name}


@pytest.mark.parametrize("mutability", ["MUTABLE", "IMMUTABLE"])
def test_the_ecr_rule_lets_a_tag_move_or_not(mutability):
    """Decision 12: the serving image's tag may move (SageMaker runs it by digest), so a
    rebuild the provider decides on can always push; the rule keeps scan on push only."""
    resources = good_resources()
    set_props("serving-repository", imageTagMutability=mutability)(resources)
    assert violations(rules.ecr_scanned_on_push, resources.values()) == []


def test_every_rule_has_a_failing_case():
    assert {c.policy.name for c in BAD_CASES} == {p.name for p in rules.POLICIES}


def test_the_pack_names_what_the_program_deploys():
    """The pack runs alone, in a virtualenv of its own where no project package (not even
    `shared/`) can be imported, so its copies of the program's facts are checked."""
    from components import web_firewall
    from components.inference_endpoint import SERVERLESS_MAX_CONCURRENCY
    from components.proxy_api import LAMBDA_MEMORY_MB
    from components.static_site import CACHING_DISABLED_POLICY_ID, MINIMUM_PROTOCOL_VERSION
    from hosting.origin import API_PATH, PREDICT_PATH
    from shared.serverless import SERVERLESS_MEMORY_MB

    assert rules.CACHING_DISABLED_POLICY_ID == CACHING_DISABLED_POLICY_ID
    assert rules.API_PATH_PREFIX == API_PATH
    assert rules.PREDICT_PATH == PREDICT_PATH
    assert rules.SERVERLESS_MAX_CONCURRENCY == SERVERLESS_MAX_CONCURRENCY
    assert frozenset(SERVERLESS_MEMORY_MB) == rules.SERVERLESS_MEMORY_SIZES_MB
    assert (rules.LAMBDA_MIN_MEMORY_MB, rules.LAMBDA_MAX_MEMORY_MB) == LAMBDA_MEMORY_MB
    assert MINIMUM_PROTOCOL_VERSION in rules.CUSTOM_DOMAIN_TLS_POLICIES
    assert (rules.COMMON_RULE_SET, rules.BODY_SIZE_RULE) == (
        web_firewall.COMMON_RULE_SET,
        web_firewall.BODY_SIZE_RULE,
    )
    assert rules.KNOWN_BAD_INPUTS_RULE_SET == web_firewall.KNOWN_BAD_INPUTS_RULE_SET
    assert rules.BODY_RULES == web_firewall.BODY_RULES
    assert rules.LABEL_NAMESPACES == web_firewall.LABEL_NAMESPACES
    labels = {rules.body_label(g, r) for g, names in rules.BODY_RULES.items() for r in names}
    assert labels == {web_firewall.BODY_SIZE_LABEL, *web_firewall.SIGNATURE_LABELS}


def test_the_fixtures_web_acl_is_the_components():
    """The hand-written web ACL the rule cases start from has the component's rules, names
    and labels (the rule tests then break it one way at a time)."""
    from components import web_firewall

    fixture = good_resources()["web-acl"].props["rules"]
    counted = {
        rule["statement"]["managedRuleGroupStatement"]["name"]: tuple(
            o["name"] for o in rule["statement"]["managedRuleGroupStatement"]["ruleActionOverrides"]
        )
        for rule in fixture
        if "managedRuleGroupStatement" in rule["statement"]
    }
    assert counted == web_firewall.BODY_RULES
    assert tuple(SIGNATURE_LABELS) == web_firewall.SIGNATURE_LABELS
    component = {rule["name"] for rule in web_firewall.web_acl_rules("dev", 300)}
    assert {rule["name"] for rule in fixture} <= component


def test_rule_names_are_unique_and_the_pack_is_mandatory():
    names = [p.name for p in rules.POLICIES]
    assert len(names) == len(set(names))
    assert rules.ENFORCEMENT_LEVEL.value == "mandatory"


def test_unknown_values_surface_as_preview_errors_not_passes():
    """During preview an unknown policy document must not count as compliant.

    The analyzer turns UnknownValueError into an advisory "can't run during preview";
    the rule re-runs on `up`, when the value is known.
    """
    resources = good_resources()
    resources["site-policy"] = replace(
        resources["site-policy"], props={"bucket": BUCKET, "policy": UNKNOWN_STRING_VALUE}
    )
    with pytest.raises(UnknownValueError):
        violations(rules.s3_tls_only, [resources["site-policy"]])
