"""Access at the edge under Pulumi mocks: one origin (the API under `/api/*`), the origin
secret, the custom domain with and without its Route 53 zone, the WAF web ACL, API keys."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from pulumi_policy import StackValidationPolicy

from components.site_certificate import domain_problems
from components.stack_config import StackConfigError
from components.static_site import (
    ALL_VIEWER_EXCEPT_HOST_POLICY_ID,
    API_ORIGIN_READ_TIMEOUT_SECONDS,
    CACHING_DISABLED_POLICY_ID,
)
from components.web_firewall import BODY_SIZE_LABEL
from policy import rules
from shared.api import ORIGIN_HEADER
from tests.infra.conftest import (
    ACCOUNT,
    CLOUDFRONT_ZONE_ID,
    ORIGIN_SECRET,
    OTHER_ORIGIN_SECRET,
    PROJECT,
    REGION,
    SITE_STAGE,
    VALIDATION_RECORD,
    StackRun,
)
from tests.infra.waf_statements import matches
from tests.policy.harness import Resource, violations

DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
STAGE = "aws:apigatewayv2/stage:Stage"
FUNCTION = "aws:lambda/function:Function"
PASSWORD = "random:index/randomPassword:RandomPassword"
CERTIFICATE = "aws:acm/certificate:Certificate"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
RECORD = "aws:route53/record:Record"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
DOMAIN = "classify.classifier-team.io"
ZONE = "Z0123456789ABCDEFGHIJ"
KEYS_PATH = f"/{PROJECT}-dev/api-keys"


def ok(run: StackRun) -> StackRun:
    assert run.error is None, run.error
    return run


def config(**values: str) -> dict[str, str]:
    return {f"{PROJECT}:{key}": value for key, value in values.items()}


@pytest.fixture(scope="module")
def zoned(run_stack: Callable[[dict[str, str]], StackRun]) -> StackRun:
    return ok(run_stack(config(domainName=DOMAIN, hostedZoneId=ZONE)))


@pytest.fixture(scope="module")
def unzoned(run_stack: Callable[[dict[str, str]], StackRun]) -> StackRun:
    return ok(run_stack(config(domainName=DOMAIN)))


@pytest.fixture(scope="module")
def validated(run_stack: Callable[[dict[str, str]], StackRun]) -> StackRun:
    return ok(run_stack(config(domainName=DOMAIN, domainValidated="true")))


@pytest.fixture(scope="module")
def guarded(run_stack: Callable[[dict[str, str]], StackRun]) -> StackRun:
    return ok(run_stack(config(waf="true", throttleRateLimit="20")))


@pytest.fixture(scope="module")
def keyed(run_stack: Callable[[dict[str, str]], StackRun]) -> StackRun:
    return ok(run_stack(config(apiKeys="true")))


@pytest.fixture(scope="module")
def everything(run_stack: Callable[[dict[str, str]], StackRun]) -> StackRun:
    return ok(run_stack(config(domainName=DOMAIN, hostedZoneId=ZONE, waf="true", apiKeys="true")))


def api_behavior(run: StackRun) -> dict[str, Any]:
    (behavior,) = run.one(DISTRIBUTION).inputs["orderedCacheBehaviors"]
    return behavior


def api_origin(run: StackRun) -> dict[str, Any]:
    origins = {o["originId"]: o for o in run.one(DISTRIBUTION).inputs["origins"]}
    return origins[api_behavior(run)["targetOriginId"]]


def function_policy(run: StackRun) -> dict[str, dict]:
    policy = run.one("aws:iam/rolePolicy:RolePolicy", "api-function-policy").inputs["policy"]
    return {statement["Sid"]: statement for statement in json.loads(policy)["Statement"]}


def variables(run: StackRun) -> dict[str, str]:
    return run.one(FUNCTION).inputs["environment"]["variables"]


# -- one origin ----------------------------------------------------------------------------


def test_the_distribution_serves_the_api_under_api_uncached(dev_stack: StackRun):
    behavior = api_behavior(dev_stack)
    default = dev_stack.one(DISTRIBUTION).inputs["defaultCacheBehavior"]
    assert behavior["pathPattern"] == "/api/*"
    assert behavior["cachePolicyId"] == CACHING_DISABLED_POLICY_ID
    assert behavior["originRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_POLICY_ID
    assert set(behavior["allowedMethods"]) == {
        "GET",
        "HEAD",
        "OPTIONS",
        "PUT",
        "POST",
        "PATCH",
        "DELETE",
    }
    # A redirect would turn a POST into a GET without its image: refused, not redirected.
    assert behavior["viewerProtocolPolicy"] == "https-only"
    # The API's answers get the same HSTS, nosniff and frame denial as the pages.
    assert behavior["responseHeadersPolicyId"] == default["responseHeadersPolicyId"]


def test_the_api_origin_is_the_http_api_over_tls_1_2_only(dev_stack: StackRun):
    origin = api_origin(dev_stack)
    api = dev_stack.one("aws:apigatewayv2/api:Api")
    assert f"https://{origin['domainName']}" == api.state["apiEndpoint"]
    assert origin["customOriginConfig"]["originProtocolPolicy"] == "https-only"
    assert origin["customOriginConfig"]["originSslProtocols"] == ["TLSv1.2"]
    assert "originAccessControlId" not in origin


def test_cloudfront_waits_longer_than_the_http_api_so_its_answer_always_arrives(dev_stack):
    # API Gateway answers by 30 s (its integration limit); CloudFront's default read
    # timeout, 30 s too, could cut that answer off with an HTML 504.
    read_timeout = api_origin(dev_stack)["customOriginConfig"]["originReadTimeout"]
    assert read_timeout == API_ORIGIN_READ_TIMEOUT_SECONDS == 60
    integration = dev_stack.one("aws:apigatewayv2/integration:Integration").inputs
    assert read_timeout > integration["timeoutMilliseconds"] / 1000 == 30


def test_cloudfront_sends_the_origin_secret_the_proxy_requires(dev_stack: StackRun):
    (header,) = api_origin(dev_stack)["customHeaders"]
    assert header == {"name": ORIGIN_HEADER, "value": ORIGIN_SECRET}
    assert variables(dev_stack)["ORIGIN_SECRET"] == ORIGIN_SECRET
    # Both reach the engine as secrets, so the state holds them encrypted.
    assert "origins" in dev_stack.one(DISTRIBUTION).secrets
    assert "environment" in dev_stack.one(FUNCTION).secrets


def test_the_origin_secret_is_random_long_plain_and_stable(dev_stack: StackRun):
    password = dev_stack.one(PASSWORD, "api-origin-secret")
    assert password.inputs["length"] == 48
    assert password.inputs["special"] is False
    # No keepers until the first rotation that regenerates it: it stays as it always was.
    assert "keepers" not in password.inputs


@pytest.mark.parametrize(
    ("rotation", "current", "previous", "keepers"),
    [
        # Before any rotation: the secret a stack always had, alone.
        ("0", ORIGIN_SECRET, None, (None, {"rotation": "-1"})),
        # Each rotation regenerates the slot it makes current and keeps the other.
        ("1", OTHER_ORIGIN_SECRET, ORIGIN_SECRET, (None, {"rotation": "1"})),
        ("2", ORIGIN_SECRET, OTHER_ORIGIN_SECRET, ({"rotation": "2"}, {"rotation": "1"})),
        ("3", OTHER_ORIGIN_SECRET, ORIGIN_SECRET, ({"rotation": "2"}, {"rotation": "3"})),
    ],
)
def test_a_rotation_sends_a_new_secret_and_still_admits_the_previous(
    run_stack, rotation, current, previous, keepers
):
    run = ok(run_stack(config(originSecretRotation=rotation)))
    (header,) = api_origin(run)["customHeaders"]
    assert header == {"name": ORIGIN_HEADER, "value": current}
    assert variables(run)["ORIGIN_SECRET"] == current
    assert variables(run).get("ORIGIN_SECRET_PREVIOUS") == previous
    slots = (run.one(PASSWORD, "api-origin-secret"), run.one(PASSWORD, "api-origin-secret-1"))
    assert tuple(slot.inputs.get("keepers") for slot in slots) == keepers
    # The proxy admits the new secret before CloudFront starts sending it.
    assert "api-function" in run.one(DISTRIBUTION).depends_on
    for output, value in run.outputs.items():
        assert OTHER_ORIGIN_SECRET not in json.dumps(value), output


def test_a_negative_rotation_is_refused_naming_its_key(run_stack):
    run = run_stack(config(originSecretRotation="-1"))
    assert isinstance(run.error, StackConfigError)
    assert "originSecretRotation: -1 must be 0 or more" in str(run.error)


def test_the_origin_secret_is_in_no_output_and_not_in_config_js(everything: StackRun):
    for name, value in everything.outputs.items():
        assert ORIGIN_SECRET not in json.dumps(value), name
    assert ORIGIN_SECRET not in everything.outputs["config_js"]
    assert "ORIGIN_SECRET" not in everything.outputs["config_js"]


def test_by_default_there_is_no_domain_firewall_or_key(dev_stack: StackRun):
    distribution = dev_stack.one(DISTRIBUTION).inputs
    assert distribution["viewerCertificate"] == {"cloudfrontDefaultCertificate": True}
    assert "aliases" not in distribution
    assert "webAclId" not in distribution
    for token in (CERTIFICATE, VALIDATION, RECORD, WEB_ACL, WAF_LOGGING):
        assert not dev_stack.of_type(token), token
    assert "API_KEYS_PATH" not in variables(dev_stack)
    assert "ReadTheApiKeys" not in function_policy(dev_stack)
    absent = {
        "api_keys_path",
        "certificate_validation_records",
        "distribution_domain",
        "waf_log_group",
    }
    assert not absent & set(dev_stack.outputs)


# -- traffic around CloudFront (decision 13) -----------------------------------------------


def stages(run: StackRun) -> dict[str, Any]:
    return {stage.name: stage for stage in run.of_type(STAGE)}


def test_cloudfront_reaches_the_api_only_through_a_secret_stage_of_its_own(dev_stack):
    site_stage = stages(dev_stack)["api-site-stage"]
    assert site_stage.inputs["name"] == SITE_STAGE
    assert api_origin(dev_stack)["originPath"] == f"/{SITE_STAGE}"
    name = dev_stack.one(PASSWORD, "api-site-stage-name").inputs
    assert name["length"] == 32
    assert name["special"] is False
    # Secrets both where they are set, so the state holds them encrypted; in no output.
    assert "name" in site_stage.secrets
    assert "origins" in dev_stack.one(DISTRIBUTION).secrets
    for output, value in dev_stack.outputs.items():
        assert SITE_STAGE not in json.dumps(value), output
    for stage in stages(dev_stack).values():
        assert SITE_STAGE not in stage.inputs["accessLogSettings"]["format"]


def test_the_stacks_alarms_watch_every_stage_without_naming_the_secret_one(dev_stack):
    api = dev_stack.one("aws:apigatewayv2/api:Api")
    alarms = {a.name: a.inputs for a in dev_stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert alarms["monitoring-api-latency-p95"]["dimensions"] == {"ApiId": api.id}
    for token in ("aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/dashboard:Dashboard"):
        for resource in dev_stack.of_type(token):
            assert SITE_STAGE not in json.dumps(resource.inputs, default=str), resource.name


def test_the_api_url_programs_get_is_the_direct_stage_on_a_budget_of_its_own(run_stack):
    run = ok(run_stack(config(directThrottleRateLimit="3")))
    direct = stages(run)["api-default-stage"].inputs
    site = stages(run)["api-site-stage"].inputs
    assert direct["name"] == "$default"
    api = run.one("aws:apigatewayv2/api:Api")
    assert run.outputs["execute_api_url"] == f"{api.state['apiEndpoint']}/api"
    # Each burst is twice its rate.
    assert direct["defaultRouteSettings"] == {"throttlingRateLimit": 3, "throttlingBurstLimit": 6}
    # The site's budget is the dev stack's throttleRateLimit, whatever programs do.
    assert site["defaultRouteSettings"] == {"throttlingRateLimit": 5, "throttlingBurstLimit": 10}
    assert {s["throttlingRateLimit"] for s in direct["routeSettings"]} == {3}
    assert {s["throttlingRateLimit"] for s in site["routeSettings"]} == {5}


def test_a_direct_budget_below_one_is_refused_naming_its_key(run_stack):
    run = run_stack(config(directThrottleRateLimit="-1"))
    assert isinstance(run.error, StackConfigError)
    assert "  - directThrottleRateLimit: -1 must be at least 1" in str(run.error)
    assert "Burst" not in str(run.error), "the burst follows the rate: no key of its own"


# -- custom domain -------------------------------------------------------------------------


def test_a_domain_with_its_zone_is_validated_and_aliased_in_one_up(zoned: StackRun):
    certificate = zoned.one(CERTIFICATE)
    assert certificate.inputs["region"] == "us-east-1"
    assert certificate.inputs["domainName"] == DOMAIN
    assert certificate.inputs["validationMethod"] == "DNS"

    records = {r.name: r.inputs for r in zoned.of_type(RECORD)}
    assert records["domain-validation-record"] == {
        "zoneId": ZONE,
        "name": VALIDATION_RECORD["resourceRecordName"],
        "type": VALIDATION_RECORD["resourceRecordType"],
        "records": [VALIDATION_RECORD["resourceRecordValue"]],
        "ttl": 300,
        "allowOverwrite": True,
    }
    validation = zoned.one(VALIDATION).inputs
    assert validation["region"] == "us-east-1"
    assert validation["certificateArn"] == certificate.state["arn"]
    assert validation["validationRecordFqdns"] == [
        zoned.one(RECORD, "domain-validation-record").state["fqdn"]
    ]

    distribution = zoned.one(DISTRIBUTION)
    assert distribution.inputs["aliases"] == [DOMAIN]
    assert distribution.inputs["viewerCertificate"] == {
        "acmCertificateArn": zoned.one(VALIDATION).state["certificateArn"],
        "sslSupportMethod": "sni-only",
        "minimumProtocolVersion": "TLSv1.2_2021",
    }
    for record_type in ("A", "AAAA"):
        alias = records[f"site-alias-{record_type.lower()}"]
        assert (alias["zoneId"], alias["name"], alias["type"]) == (ZONE, DOMAIN, record_type)
        assert alias["aliases"] == [
            {
                "name": distribution.state["domainName"],
                "zoneId": CLOUDFRONT_ZONE_ID,
                "evaluateTargetHealth": False,
            }
        ]
    assert zoned.outputs["site_url"] == f"https://{DOMAIN}"
    assert zoned.outputs["api_url"] == f"https://{DOMAIN}/api"
    assert "certificate_validation_records" not in zoned.outputs
    assert not zoned.warnings


def test_a_domain_without_a_zone_first_exports_what_to_create(unzoned: StackRun):
    certificate = unzoned.one(CERTIFICATE)
    assert certificate.inputs["region"] == "us-east-1"
    # Nothing waits for DNS someone else creates, and CloudFront gets no unissued cert.
    assert not unzoned.of_type(VALIDATION)
    assert not unzoned.of_type(RECORD)
    distribution = unzoned.one(DISTRIBUTION)
    assert "aliases" not in distribution.inputs
    assert distribution.inputs["viewerCertificate"] == {"cloudfrontDefaultCertificate": True}

    assert unzoned.outputs["certificate_validation_records"] == [
        {
            "name": VALIDATION_RECORD["resourceRecordName"],
            "type": VALIDATION_RECORD["resourceRecordType"],
            "value": VALIDATION_RECORD["resourceRecordValue"],
        }
    ]
    assert unzoned.outputs["distribution_domain"] == distribution.state["domainName"]
    assert unzoned.outputs["site_url"] == f"https://{distribution.state['domainName']}"
    (warning,) = unzoned.warnings
    assert "pulumi stack output certificate_validation_records" in warning
    assert "pulumi config set domainValidated true" in warning


def test_a_domain_without_a_zone_once_validated_waits_for_its_certificate(validated: StackRun):
    validation = validated.one(VALIDATION).inputs
    assert validation["certificateArn"] == validated.one(CERTIFICATE).state["arn"]
    assert validation["region"] == "us-east-1"
    assert "validationRecordFqdns" not in validation
    assert not validated.of_type(RECORD), "the operator's DNS, not Route 53"
    distribution = validated.one(DISTRIBUTION).inputs
    assert distribution["aliases"] == [DOMAIN]
    assert distribution["viewerCertificate"]["minimumProtocolVersion"] == "TLSv1.2_2021"
    assert validated.outputs["site_url"] == f"https://{DOMAIN}"
    # Still there: the record must stay for ACM's renewals, and the domain's CNAME target.
    assert validated.outputs["certificate_validation_records"]
    assert validated.outputs["distribution_domain"] == "d111111abcdef8.cloudfront.net"
    assert not validated.warnings


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"domainName": "not a domain"}, r"domainName: 'not a domain' is not a DNS name"),
        ({"domainName": "*.classifier-team.io"}, r"domainName: .* no wildcard"),
        ({"domainName": "localhost"}, r"domainName: 'localhost' is not a DNS name"),
        ({"domainName": "a" * 62 + ".io"}, r"domainName: .* at most 64 characters"),
        ({"domainName": "classify.example.com"}, r"domainName: .* reserved for examples"),
        ({"domainName": "shop.test"}, r"domainName: .* reserved for examples"),
        ({"hostedZoneId": ZONE}, r"hostedZoneId: is set but domainName is empty"),
        (
            {"domainName": DOMAIN, "hostedZoneId": "zone-1"},
            r"hostedZoneId: 'zone-1' is not a Route 53 hosted zone ID",
        ),
        ({"domainValidated": "true"}, r"domainValidated: is true but domainName is empty"),
        (
            {"domainName": DOMAIN, "hostedZoneId": ZONE, "domainValidated": "true"},
            r"domainValidated: is only for a domain without hostedZoneId",
        ),
    ],
)
def test_bad_edge_settings_stop_the_program_before_any_resource(run_stack, overrides, expected):
    run = run_stack(config(**overrides))
    assert isinstance(run.error, StackConfigError), run.error
    assert re.search(expected, str(run.error)), run.error
    assert not [r for r in run.resources if r.custom]


def test_a_domain_is_lower_cased_without_its_final_dot(run_stack):
    run = ok(run_stack(config(domainName="Classify.Classifier-Team.IO.", hostedZoneId=ZONE)))
    assert run.one(CERTIFICATE).inputs["domainName"] == DOMAIN
    assert domain_problems(DOMAIN, None, False) == {}


# -- WAF -----------------------------------------------------------------------------------


def rules_by_name(run: StackRun) -> dict[str, dict[str, Any]]:
    return {rule["name"]: rule for rule in run.one(WEB_ACL).inputs["rules"]}


def test_the_web_acl_is_cloudfront_scoped_in_us_east_1_and_attached(guarded: StackRun):
    acl = guarded.one(WEB_ACL)
    assert acl.inputs["scope"] == "CLOUDFRONT"
    assert acl.inputs["region"] == "us-east-1"
    assert acl.inputs["defaultAction"] == {"allow": {}}
    assert acl.inputs["visibilityConfig"]["cloudwatchMetricsEnabled"] is True
    assert guarded.one(DISTRIBUTION).inputs["webAclId"] == acl.state["arn"]
    assert acl.state["arn"].startswith(f"arn:aws:wafv2:us-east-1:{ACCOUNT}:global/webacl/")


def test_the_web_acl_has_the_managed_rules_and_a_rate_limit_on_the_api(guarded: StackRun):
    found = rules_by_name(guarded)
    assert [name for name, _ in sorted(found.items(), key=lambda i: i[1]["priority"])] == [
        "AWSManagedRulesAmazonIpReputationList",
        "api-rate-limit-per-ip",
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "oversized-body-outside-api",
        "body-signatures-outside-uploads",
    ]
    for rule in found.values():
        assert rule["visibilityConfig"]["cloudwatchMetricsEnabled"] is True
        assert rule["visibilityConfig"]["sampledRequestsEnabled"] is True
        group = rule["statement"].get("managedRuleGroupStatement")
        if group:
            assert group["vendorName"] == "AWS"
            assert rule["overrideAction"] == {"none": {}}
    rate = found["api-rate-limit-per-ip"]
    assert rate["action"] == {"block": {}}
    statement = rate["statement"]["rateBasedStatement"]
    # A tenth of the site's 20 requests per second, over WAF's 300-second window.
    assert (statement["limit"], statement["aggregateKeyType"]) == (600, "IP")
    assert statement["evaluationWindowSec"] == 300
    match = statement["scopeDownStatement"]["byteMatchStatement"]
    assert (match["searchString"], match["positionalConstraint"]) == ("/api/", "STARTS_WITH")
    assert match["fieldToMatch"] == {"uriPath": {}}


def verdict(run: StackRun, path: str, body_bytes: int) -> str:
    """What the web ACL does with a request whose only trait is its body size: the common
    rule set's `SizeRestrictions_BODY` (over 8 KB) adds its label and takes its action,
    unless overridden; every other rule stays quiet for such a clean request."""
    labels: set[str] = set()
    for rule in sorted(rules_by_name(run).values(), key=lambda r: r["priority"]):
        statement = rule["statement"]
        group = statement.get("managedRuleGroupStatement")
        if group and group["name"] == "AWSManagedRulesCommonRuleSet" and body_bytes > 8192:
            labels.add(BODY_SIZE_LABEL)
            overrides = {o["name"]: o["actionToUse"] for o in group.get("ruleActionOverrides", [])}
            if overrides.get("SizeRestrictions_BODY", {"block": {}}) != {"count": {}}:
                return "block"
        elif (
            not group and "rateBasedStatement" not in statement and matches(statement, path, labels)
        ):
            return next(iter(rule["action"]))
    return "allow"


def test_an_image_upload_passes_but_a_big_body_elsewhere_is_blocked(guarded: StackRun):
    photo = 150_000  # a phone photo as the page sends it
    assert verdict(guarded, "/api/predict", photo) == "allow"
    assert verdict(guarded, "/api/predict", 3 * 1024 * 1024) == "allow"
    assert verdict(guarded, "/index.html", photo) == "block"
    assert verdict(guarded, "/apiary", photo) == "block", "only the API path itself"
    assert verdict(guarded, "/index.html", 2_000) == "allow"


def test_waf_logs_blocked_requests_in_us_east_1_without_api_keys(guarded: StackRun):
    group = guarded.one(LOG_GROUP, "waf-logs")
    assert group.inputs["name"] == f"aws-waf-logs-{PROJECT}-dev"
    assert group.inputs["region"] == "us-east-1"
    assert group.inputs["retentionInDays"] == 14
    assert guarded.outputs["waf_log_group"] == group.inputs["name"]
    logging = guarded.one(WAF_LOGGING).inputs
    assert logging["region"] == "us-east-1"
    assert logging["resourceArn"] == guarded.one(WEB_ACL).state["arn"]
    assert logging["logDestinationConfigs"] == [group.state["arn"]]
    assert logging["redactedFields"] == [{"singleHeader": {"name": "x-api-key"}}]
    assert logging["loggingFilter"]["defaultBehavior"] == "DROP"


def test_the_prod_example_stack_has_the_web_acl(run_stack):
    from tests.infra.conftest import stack_config

    prod = ok(
        run_stack(
            {k: v for k, v in stack_config("prod").items() if not k.endswith(":model")}
            | config(alarmEmail="oncall@classifier-team.io")
        )
    )
    assert prod.one(DISTRIBUTION).inputs["webAclId"] == prod.one(WEB_ACL).state["arn"]


# -- API keys ------------------------------------------------------------------------------


def test_api_keys_are_read_from_exactly_their_ssm_path(keyed: StackRun):
    assert variables(keyed)["API_KEYS_PATH"] == KEYS_PATH
    assert function_policy(keyed)["ReadTheApiKeys"] == {
        "Sid": "ReadTheApiKeys",
        "Effect": "Allow",
        "Action": "ssm:GetParametersByPath",
        "Resource": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{KEYS_PATH}",
    }
    # SecureStrings under the AWS managed key: its key policy already covers the decrypt.
    actions = json.dumps(function_policy(keyed))
    assert "kms:" not in actions
    assert keyed.outputs["api_keys_path"] == KEYS_PATH
    assert not keyed.of_type("aws:ssm/parameter:Parameter"), "keys come from the CLI"


# -- everything on ---------------------------------------------------------------------------


def test_every_part_belongs_to_a_component_with_a_project_token(everything: StackRun):
    components = {r.urn: r.type for r in everything.resources if not r.custom}
    assert {
        "image-classifier:site_certificate:SiteCertificate",
        "image-classifier:web_firewall:WebFirewall",
    } <= set(components.values())
    for resource in everything.resources:
        if resource.custom:
            assert resource.parent in components, f"{resource.type} {resource.name}"


@pytest.mark.parametrize("policy", rules.POLICIES, ids=lambda p: p.name)
def test_every_policy_rule_passes_with_everything_on(everything: StackRun, policy):
    stack_rule = isinstance(policy, StackValidationPolicy)
    resources = [
        Resource(r.type, r.name, r.state if stack_rule else r.inputs)
        for r in everything.resources
        if r.custom
    ]
    assert violations(policy, resources) == []
