"""The web ACL's body rules, under the shared mocks: off for image uploads on
`/api/predict`, on everywhere else (issue 19, item 7; decision 14).

The managed rules' names and labels below are copied from AWS's documentation of the
baseline rule groups (docs.aws.amazon.com/waf/latest/developerguide/
aws-managed-rule-groups-baseline.html), not from the component: WAF silently ignores an
override that names no rule of a managed group, and a label rule with a misspelt label
never matches, so a typo there would pass any test that reads the component's constants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.web_firewall import WebFirewallArgs
from tests.infra.conftest import PROJECT, StackRun
from tests.infra.waf_statements import matches

WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
UPLOAD_PATH = "/api/predict"
"""Where the page posts the image's bytes (site/api.js: `${apiUrl}/predict`)."""
CORE = "AWSManagedRulesCommonRuleSet"
KNOWN_BAD_INPUTS = "AWSManagedRulesKnownBadInputsRuleSet"
IP_REPUTATION = "AWSManagedRulesAmazonIpReputationList"
BODY_RULES = {
    CORE: {
        "SizeRestrictions_BODY": "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body",
        "EC2MetaDataSSRF_BODY": "awswaf:managed:aws:core-rule-set:EC2MetaDataSSRF_Body",
        "GenericLFI_BODY": "awswaf:managed:aws:core-rule-set:GenericLFI_Body",
        "GenericRFI_BODY": "awswaf:managed:aws:core-rule-set:GenericRFI_Body",
        "CrossSiteScripting_BODY": "awswaf:managed:aws:core-rule-set:CrossSiteScripting_Body",
    },
    KNOWN_BAD_INPUTS: {
        "JavaDeserializationRCE_BODY": (
            "awswaf:managed:aws:known-bad-inputs:JavaDeserializationRCE_Body"
        ),
        "Log4JRCE_BODY": "awswaf:managed:aws:known-bad-inputs:Log4JRCE_Body",
        "ReactJSRCE_BODY": "awswaf:managed:aws:known-bad-inputs:ReactJSRCE_Body",
    },
}
"""Every rule of the enabled groups that inspects the body, with the label it adds."""
CONTENT_RULES = [
    (group, rule) for group, rules in BODY_RULES.items() for rule in rules if "Size" not in rule
]
"""The body rules that match on what the bytes say (not their size)."""
OTHER_RULES = {
    CORE: ("NoUserAgent_HEADER", "CrossSiteScripting_QUERYARGUMENTS", "GenericLFI_URIPATH"),
    KNOWN_BAD_INPUTS: ("Log4JRCE_HEADER", "JavaDeserializationRCE_QUERYSTRING"),
}
"""A sample of the rules that inspect no body: they keep blocking everywhere."""

RunStack = Callable[[dict[str, str]], StackRun]


@pytest.fixture(scope="module")
def guarded(run_stack: RunStack) -> StackRun:
    run = run_stack({f"{PROJECT}:waf": "true"})
    assert run.error is None, run.error
    return run


def rules(run: StackRun) -> list[dict[str, Any]]:
    return sorted(run.one(WEB_ACL).inputs["rules"], key=lambda rule: rule["priority"])


def _label(group: str, rule: str) -> str:
    if rule in BODY_RULES.get(group, {}):
        return BODY_RULES[group][rule]
    return f"awswaf:managed:aws:{group}:{rule}"


def verdict(run: StackRun, path: str, matching: set[tuple[str, str]]) -> str:
    """What the web ACL does with a request to `path` that the managed rules `matching`
    (`(group, rule)`) match: each adds its label, and blocks unless overridden to count;
    the stack's own rules then see the labels. Rate limits are left out (one request)."""
    labels: set[str] = set()
    for rule in rules(run):
        statement = rule["statement"]
        group = statement.get("managedRuleGroupStatement")
        if group is not None:
            assert rule["overrideAction"] == {"none": {}}
            overrides = {
                o["name"]: next(iter(o["actionToUse"]))
                for o in group.get("ruleActionOverrides", [])
            }
            for group_name, rule_name in sorted(matching):
                if group_name == group["name"]:
                    labels.add(_label(group_name, rule_name))
                    if overrides.get(rule_name, "block") == "block":
                        return "block"
        elif "rateBasedStatement" not in statement and matches(statement, path, labels):
            action = next(iter(rule["action"]))
            if action != "count":
                return action
    return "allow"


def test_every_body_rule_of_the_enabled_groups_only_counts(guarded: StackRun):
    groups = {
        rule["statement"]["managedRuleGroupStatement"]["name"]: rule["statement"][
            "managedRuleGroupStatement"
        ]
        for rule in rules(guarded)
        if "managedRuleGroupStatement" in rule["statement"]
    }
    assert set(groups) == {IP_REPUTATION, CORE, KNOWN_BAD_INPUTS}
    for name, group in groups.items():
        overrides = {o["name"]: o["actionToUse"] for o in group.get("ruleActionOverrides", [])}
        assert overrides == {rule: {"count": {}} for rule in BODY_RULES.get(name, {})}, name


@pytest.mark.parametrize(("group", "rule"), CONTENT_RULES)
def test_a_photo_that_looks_like_an_attack_passes_on_the_upload_path_only(
    guarded: StackRun, group: str, rule: str
):
    """JPEG bytes can match a body signature by chance; only the upload path lets them by."""
    matched = {(group, rule)}
    assert verdict(guarded, UPLOAD_PATH, matched) == "allow"
    for path in ("/api/feedback", "/api/labels", "/index.html", "/", "/api/predict/x"):
        assert verdict(guarded, path, matched) == "block", path
    assert verdict(guarded, "/api/predictx", matched) == "block"
    assert verdict(guarded, "/API/PREDICT", matched) == "block"


def test_the_body_size_limit_is_still_off_the_whole_api_only(guarded: StackRun):
    size = {(CORE, "SizeRestrictions_BODY")}
    assert verdict(guarded, UPLOAD_PATH, size) == "allow"
    assert verdict(guarded, "/api/feedback", size) == "allow"
    assert verdict(guarded, "/index.html", size) == "block"


@pytest.mark.parametrize(
    ("group", "rule"), [(group, rule) for group, names in OTHER_RULES.items() for rule in names]
)
def test_rules_that_read_no_body_still_block_uploads(guarded: StackRun, group: str, rule: str):
    assert verdict(guarded, UPLOAD_PATH, {(group, rule)}) == "block"


def test_a_clean_request_passes_everywhere(guarded: StackRun):
    for path in (UPLOAD_PATH, "/api/feedback", "/index.html"):
        assert verdict(guarded, path, set()) == "allow"


def test_the_label_rules_come_after_the_groups_that_add_the_labels(guarded: StackRun):
    """WAF makes a label visible only to rules evaluated after the one that adds it."""
    ordered = rules(guarded)
    last_group = max(
        i for i, r in enumerate(ordered) if "managedRuleGroupStatement" in r["statement"]
    )
    label_rules = [i for i, r in enumerate(ordered) if "labelMatchStatement" in str(r["statement"])]
    assert label_rules
    assert min(label_rules) > last_group
    assert len({r["priority"] for r in ordered}) == len(ordered)
    assert len({r["visibilityConfig"]["metricName"] for r in ordered}) == len(ordered)


def test_the_log_keeps_blocked_requests_and_uploads_a_body_rule_matched(guarded: StackRun):
    """The counted matches on uploads are what an operator watches before turning a rule
    back on: they are logged too, besides every blocked request."""
    logging = guarded.one(WAF_LOGGING).inputs
    (kept,) = logging["loggingFilter"]["filters"]
    assert logging["loggingFilter"]["defaultBehavior"] == "DROP"
    assert (kept["behavior"], kept["requirement"]) == ("KEEP", "MEETS_ANY")
    conditions = kept["conditions"]
    assert {"actionCondition": {"action": "BLOCK"}} in conditions
    labels = {c["labelNameCondition"]["labelName"] for c in conditions if "labelNameCondition" in c}
    assert labels == {BODY_RULES[group][rule] for group, rule in CONTENT_RULES}


@pytest.mark.parametrize("rate_limit", [9, 2_000_000_001])
def test_a_rate_limit_waf_refuses_is_refused_by_the_component(rate_limit):
    with pytest.raises(ValueError, match=r"rate_limit must be 10-2000000000 requests per client"):
        WebFirewallArgs(name_prefix="p", rate_limit=rate_limit)


@pytest.mark.parametrize(("site_rate", "per_ip"), [(1, 30), (10, 300), (50, 1500)])
def test_the_stack_derives_the_per_ip_limit_from_the_site_rate(run_stack, site_rate, per_ip):
    run = run_stack({f"{PROJECT}:waf": "true", f"{PROJECT}:throttleRateLimit": str(site_rate)})
    assert run.error is None, run.error
    (rule,) = [r for r in run.one(WEB_ACL).inputs["rules"] if r["name"] == "api-rate-limit-per-ip"]
    assert rule["statement"]["rateBasedStatement"]["limit"] == per_ip
