"""`WebFirewall`: an AWS WAF web ACL in front of the site's CloudFront distribution.

A CLOUDFRONT-scope web ACL lives in us-east-1 (named per resource, as the certificate is:
see `components/site_certificate.py`). Rules, cheapest and most certain first:

1. `AWSManagedRulesAmazonIpReputationList`: addresses AWS threat intelligence knows as bad.
2. A rate limit per client IP on the API path only (`/api/`): the model is what costs money,
   pages and scripts are cheap and cached.
3. `AWSManagedRulesCommonRuleSet`, the OWASP-style core rules, and
4. `AWSManagedRulesKnownBadInputsRuleSet`: Log4j, Java deserialization and similar probes.
   Their rules that inspect the body (`BODY_RULES`) only count: they still add their
   labels, and rules 5 and 6 block on those labels where a body is not an image
   ([decision 14](../docs/decisions/0014-waf-body-rules-off-image-uploads.md)). An upload's
   bytes are JPEG or PNG, which the signatures can match by chance, and
   `SizeRestrictions_BODY` blocks every body over 8 KB, which is every photo.
5. Oversized bodies outside the API: `SizeRestrictions_BODY`'s label, off `/api/`. The
   API keeps its own size limit (the proxy refuses images over `MAX_IMAGE_BYTES`, 413).
6. Body signatures everywhere but the upload path: any other body rule's label, unless
   the path is exactly `PREDICT_PATH`. `/api/feedback` and the site keep them.

Requests are logged to `aws-waf-logs-<name_prefix>` (WAF requires that prefix) when
blocked, or when a body signature matched an upload (its label, counted: what to watch
before trusting a rule on uploads again), with the `x-api-key` header redacted: a key
never lands in a log. Requests the web ACL lets through otherwise are in CloudFront's and
the API's own metrics and logs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.site_certificate import CLOUDFRONT_REGION
from hosting.origin import API_PATH, PREDICT_PATH
from shared.api import API_KEY_HEADER

TYPE = "image-classifier:web_firewall:WebFirewall"
COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
KNOWN_BAD_INPUTS_RULE_SET = "AWSManagedRulesKnownBadInputsRuleSet"
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    COMMON_RULE_SET,
    KNOWN_BAD_INPUTS_RULE_SET,
)
LABEL_NAMESPACES = {
    COMMON_RULE_SET: "awswaf:managed:aws:core-rule-set:",
    KNOWN_BAD_INPUTS_RULE_SET: "awswaf:managed:aws:known-bad-inputs:",
}
BODY_SIZE_RULE = "SizeRestrictions_BODY"
"""The common rule set's rule that blocks bodies over 8 KB: counted, then re-applied off
the API path."""
BODY_RULES = {
    COMMON_RULE_SET: (
        BODY_SIZE_RULE,
        "EC2MetaDataSSRF_BODY",
        "GenericLFI_BODY",
        "GenericRFI_BODY",
        "CrossSiteScripting_BODY",
    ),
    KNOWN_BAD_INPUTS_RULE_SET: ("JavaDeserializationRCE_BODY", "Log4JRCE_BODY", "ReactJSRCE_BODY"),
}
"""Every rule of the enabled groups that inspects the request body, as AWS's baseline rule
groups page lists them (names are case-sensitive, and WAF silently ignores an override
that names no rule of a managed group). The IP reputation list reads no body."""


def body_label(group: str, rule: str) -> str:
    """The label a body rule adds when it matches, counted or not: its namespace, then its
    name with `_BODY` written `_Body` (`...:core-rule-set:CrossSiteScripting_Body`)."""
    return f"{LABEL_NAMESPACES[group]}{rule.removesuffix('_BODY')}_Body"


BODY_SIZE_LABEL = body_label(COMMON_RULE_SET, BODY_SIZE_RULE)
SIGNATURE_LABELS = tuple(
    body_label(group, rule)
    for group, rules in BODY_RULES.items()
    for rule in rules
    if rule != BODY_SIZE_RULE
)
"""The labels of the body rules that match on what the bytes say: blocked everywhere but
on `PREDICT_PATH`, and logged when they match there."""
RATE_LIMIT = (10, 2_000_000_000)
"""What WAF accepts as a rate-based rule's limit, requests per evaluation window."""
RATE_WINDOW_SECONDS = 300
"""The rate limit's window: five minutes, WAF's default."""


def rate_limit_problem(rate_limit: int) -> str | None:
    """Why WAF would refuse `rate_limit` (requests per IP in five minutes); None when valid."""
    low, high = RATE_LIMIT
    if low <= rate_limit <= high:
        return None
    return f"must be {low}-{high} requests per client IP in 5 minutes, got {rate_limit}"


def _visibility(metric_name: str) -> aws.wafv2.WebAclVisibilityConfigArgsDict:
    return {
        "cloudwatch_metrics_enabled": True,
        "metric_name": metric_name,
        "sampled_requests_enabled": True,
    }


def _path_is(constraint: str, value: str) -> dict[str, Any]:
    return {
        "byte_match_statement": {
            "field_to_match": {"uri_path": {}},
            "positional_constraint": constraint,
            "search_string": value,
            "text_transformations": [{"priority": 0, "type": "NONE"}],
        }
    }


def _path_starts_with(prefix: str) -> dict[str, Any]:
    return _path_is("STARTS_WITH", prefix)


def _label(key: str) -> dict[str, Any]:
    return {"label_match_statement": {"scope": "LABEL", "key": key}}


def _managed(name: str, priority: int, metric_prefix: str) -> dict[str, Any]:
    group: dict[str, Any] = {"name": name, "vendor_name": "AWS"}
    if name in BODY_RULES:
        group["rule_action_overrides"] = [
            {"name": rule, "action_to_use": {"count": {}}} for rule in BODY_RULES[name]
        ]
    return {
        "name": name,
        "priority": priority,
        "override_action": {"none": {}},
        "statement": {"managed_rule_group_statement": group},
        "visibility_config": _visibility(f"{metric_prefix}-{name}"),
    }


def web_acl_rules(metric_prefix: str, rate_limit: int) -> list[dict[str, Any]]:
    """The web ACL's rules, in the order of this module's docstring."""
    api_prefix = f"{API_PATH}/"
    reputation, common, bad_inputs = MANAGED_RULE_GROUPS
    return [
        _managed(reputation, 0, metric_prefix),
        {
            "name": "api-rate-limit-per-ip",
            "priority": 1,
            "action": {"block": {}},
            "statement": {
                "rate_based_statement": {
                    "limit": rate_limit,
                    "aggregate_key_type": "IP",
                    "evaluation_window_sec": RATE_WINDOW_SECONDS,
                    "scope_down_statement": _path_starts_with(api_prefix),
                }
            },
            "visibility_config": _visibility(f"{metric_prefix}-api-rate-limit-per-ip"),
        },
        _managed(common, 2, metric_prefix),
        _managed(bad_inputs, 3, metric_prefix),
        {
            "name": "oversized-body-outside-api",
            "priority": 4,
            "action": {"block": {}},
            "statement": {
                "and_statement": {
                    "statements": [
                        _label(BODY_SIZE_LABEL),
                        {"not_statement": {"statement": _path_starts_with(api_prefix)}},
                    ]
                }
            },
            "visibility_config": _visibility(f"{metric_prefix}-oversized-body-outside-api"),
        },
        {
            "name": "body-signatures-outside-uploads",
            "priority": 5,
            "action": {"block": {}},
            "statement": {
                "and_statement": {
                    "statements": [
                        {"or_statement": {"statements": [_label(k) for k in SIGNATURE_LABELS]}},
                        {"not_statement": {"statement": _path_is("EXACTLY", PREDICT_PATH)}},
                    ]
                }
            },
            "visibility_config": _visibility(f"{metric_prefix}-body-signatures-outside-uploads"),
        },
    ]


def _logging_filter() -> aws.wafv2.WebAclLoggingConfigurationLoggingFilterArgsDict:
    """Log only what WAF blocked or marked with a body signature."""
    conditions: list[aws.wafv2.WebAclLoggingConfigurationLoggingFilterFilterConditionArgsDict] = [
        {"action_condition": {"action": "BLOCK"}}
    ]
    conditions += [{"label_name_condition": {"label_name": label}} for label in SIGNATURE_LABELS]
    return {
        "default_behavior": "DROP",
        "filters": [{"behavior": "KEEP", "requirement": "MEETS_ANY", "conditions": conditions}],
    }


@dataclass
class WebFirewallArgs:
    name_prefix: str
    """Stack-unique prefix of the web ACL's, its metrics' and its log group's names."""
    rate_limit: int = 300
    """Requests per client IP in five minutes on the API path before WAF blocks that IP
    (checked by `rate_limit_problem`; a plain value, it shapes the rules)."""
    log_retention_days: pulumi.Input[int] = 30
    tags: pulumi.Input[Mapping[str, str]] | None = None

    def __post_init__(self) -> None:
        if problem := rate_limit_problem(self.rate_limit):
            raise ValueError(f"rate_limit {problem}")


class WebFirewall(pulumi.ComponentResource):
    web_acl_arn: pulumi.Output[str]
    """What the distribution's `web_acl_id` takes (WAFv2 wants the ARN, not the ID)."""
    log_group_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: WebFirewallArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        allow: aws.wafv2.WebAclDefaultActionArgsDict = {"allow": {}}
        # The provider's statement types differ at each nesting level; the rules are plain
        # provider-shaped dicts, checked by tests/infra (rule order, scope, labels).
        rules: Sequence[Any] = web_acl_rules(args.name_prefix, args.rate_limit)
        web_acl = aws.wafv2.WebAcl(
            f"{name}-web-acl",
            name=args.name_prefix,
            description=f"{args.name_prefix}: the site and its API behind CloudFront",
            scope="CLOUDFRONT",
            default_action=allow,
            rules=rules,
            visibility_config=_visibility(args.name_prefix),
            region=CLOUDFRONT_REGION,
            tags=args.tags,
            opts=child,
        )
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"aws-waf-logs-{args.name_prefix}",
            retention_in_days=args.log_retention_days,
            region=CLOUDFRONT_REGION,
            tags=args.tags,
            opts=child,
        )
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-logging",
            resource_arn=web_acl.arn,
            log_destination_configs=[logs.arn],
            redacted_fields=[{"single_header": {"name": API_KEY_HEADER}}],
            logging_filter=_logging_filter(),
            region=CLOUDFRONT_REGION,
            opts=child,
        )
        self.web_acl_arn = web_acl.arn
        self.log_group_name = logs.name
        self.register_outputs(
            {"web_acl_arn": self.web_acl_arn, "log_group_name": self.log_group_name}
        )
