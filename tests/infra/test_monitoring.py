"""`Monitoring` under the shared Pulumi mocks: alarms, topic, email, dashboard, outputs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.monitoring import TYPE, Monitoring, MonitoringArgs
from policy import rules
from tests.infra.conftest import ACCOUNT, RegisteredResource, StackRun, record
from tests.policy.harness import Resource, violations

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
BUDGET = "aws:budgets/budget:Budget"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"

ONCALL = "oncall@classifier-team.io"
API = {"ApiId": "a1b2c3d4e5", "Stage": "$default"}
FUNCTION = {"FunctionName": "image-classifier-dev-proxy"}
ENDPOINT = {"EndpointName": "image-classifier-dev", "VariantName": "AllTraffic"}


def args(**overrides: Any) -> MonitoringArgs:
    values: dict[str, Any] = {
        "api_id": API["ApiId"],
        "function_name": FUNCTION["FunctionName"],
        "endpoint_name": ENDPOINT["EndpointName"],
        "region": "eu-west-1",
    }
    return MonitoringArgs(**(values | overrides))


class Deployed:
    """One Monitoring registered under the mocks, with its resources and outputs."""

    def __init__(self, build: Callable[[], Monitoring]) -> None:
        def program() -> dict[str, Any]:
            component = build()
            return {
                "alarm_topic_arn": component.alarm_topic_arn,
                "dashboard_name": component.dashboard_name,
            }

        run = record(program)
        if run.error is not None:
            raise run.error
        self.resources: list[RegisteredResource] = run.resources
        self.alarm_topic_arn = run.outputs["alarm_topic_arn"]
        self.dashboard_name = run.outputs["dashboard_name"]

    def of_type(self, token: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == token]

    def alarm(self, key: str) -> dict[str, Any]:
        (found,) = [r for r in self.of_type(ALARM) if r.name.endswith(f"-{key}")]
        return found.inputs

    @property
    def dashboard(self) -> dict[str, Any]:
        (board,) = self.of_type(DASHBOARD)
        return json.loads(board.inputs["dashboardBody"])


@pytest.fixture(scope="module")
def monitoring() -> Deployed:
    return Deployed(lambda: Monitoring("monitoring", args(alarm_email=ONCALL)))


def test_component_type_and_children(monitoring: Deployed):
    (component,) = [r for r in monitoring.resources if r.type == TYPE]
    assert TYPE == "image-classifier:monitoring:Monitoring"
    children = [r for r in monitoring.resources if r is not component]
    assert children
    assert {r.parent for r in children} == {component.urn}


def test_seven_alarms_watch_the_request_path(monitoring: Deployed):
    expected = {
        "api-latency-p95": ("AWS/ApiGateway", "Latency", API),
        "lambda-errors": ("AWS/Lambda", "Errors", FUNCTION),
        "lambda-throttles": ("AWS/Lambda", "Throttles", FUNCTION),
        "endpoint-5xx": ("AWS/SageMaker", "Invocation5XXErrors", ENDPOINT),
        "model-latency-p95": ("AWS/SageMaker", "ModelLatency", ENDPOINT),
        "model-setup-time": ("AWS/SageMaker", "ModelSetupTime", ENDPOINT),
    }
    assert len(monitoring.of_type(ALARM)) == len(expected) + 1  # + the API 5XX rate
    for key, (namespace, metric, dimensions) in expected.items():
        alarm = monitoring.alarm(key)
        assert (alarm["namespace"], alarm["metricName"], alarm["dimensions"]) == (
            namespace,
            metric,
            dimensions,
        ), key
        assert alarm["period"] == 300


def test_every_alarm_notifies_the_topic_and_ignores_silence(monitoring: Deployed):
    for alarm in monitoring.of_type(ALARM):
        assert alarm.inputs["alarmActions"] == [monitoring.alarm_topic_arn]
        assert alarm.inputs["okActions"] == [monitoring.alarm_topic_arn]
        assert alarm.inputs["treatMissingData"] == "notBreaching"
        assert "docs/operations.md#" in alarm.inputs["alarmDescription"]


def test_api_5xx_alarm_is_a_rate_of_enough_requests(monitoring: Deployed):
    alarm = monitoring.alarm("api-5xx-rate")
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    assert queries["errors"]["metric"]["metricName"] == "5xx"
    assert queries["requests"]["metric"]["metricName"] == "Count"
    for query_id in ("errors", "requests"):
        metric = queries[query_id]["metric"]
        assert (metric["namespace"], metric["dimensions"], metric["stat"]) == (
            "AWS/ApiGateway",
            API,
            "Sum",
        )
        assert queries[query_id]["returnData"] is False
    assert queries["rate"]["expression"] == "IF(requests >= 10, 100 * errors / requests, 0)"
    assert queries["rate"]["returnData"] is True
    assert alarm["threshold"] == 1.0
    assert alarm["comparisonOperator"] == "GreaterThanThreshold"
    assert "period" not in alarm  # periods belong to the metric queries


def test_latency_thresholds_use_each_metrics_unit(monitoring: Deployed):
    api_latency = monitoring.alarm("api-latency-p95")
    assert (api_latency["extendedStatistic"], api_latency["threshold"]) == ("p95", 3000)
    assert (api_latency["evaluationPeriods"], api_latency["datapointsToAlarm"]) == (3, 2)
    # SageMaker reports microseconds.
    model_latency = monitoring.alarm("model-latency-p95")
    assert (model_latency["extendedStatistic"], model_latency["threshold"]) == ("p95", 1_000_000)
    setup = monitoring.alarm("model-setup-time")
    assert (setup["statistic"], setup["threshold"]) == ("Maximum", 25_000_000)
    for key in ("lambda-errors", "lambda-throttles", "endpoint-5xx"):
        alarm = monitoring.alarm(key)
        assert (alarm["statistic"], alarm["threshold"]) == ("Sum", 1)
        assert alarm["comparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_email_subscription(monitoring: Deployed):
    (subscription,) = monitoring.of_type(SUBSCRIPTION)
    assert subscription.inputs == {
        "topic": monitoring.alarm_topic_arn,
        "protocol": "email",
        "endpoint": ONCALL,
    }
    assert len(monitoring.of_type(TOPIC)) == 1


@pytest.mark.parametrize("email", [None, ""])
def test_no_email_no_subscription(email):
    deployed = Deployed(lambda: Monitoring(f"quiet-{email!r}", args(alarm_email=email)))
    assert deployed.of_type(SUBSCRIPTION) == []
    assert len(deployed.of_type(TOPIC)) == 1


def test_dashboard_follows_the_request_and_lists_the_alarms(monitoring: Deployed):
    assert monitoring.dashboard_name == "image-classifier-dev-monitoring"
    widgets = monitoring.dashboard["widgets"]
    (alarms,) = [w for w in widgets if w["type"] == "alarm"]
    alarm_arns = {a.state["arn"] for a in monitoring.of_type(ALARM)}
    assert set(alarms["properties"]["alarms"]) == alarm_arns
    graphs = [w for w in widgets if w["type"] == "metric"]
    assert {w["properties"]["region"] for w in graphs} == {"eu-west-1"}
    # A metric row starts with its namespace and name; a metric math row is one object.
    plotted = {
        (row[0], row[1])
        for w in graphs
        for row in w["properties"]["metrics"]
        if isinstance(row[0], str)
    }
    for watched in (
        ("AWS/ApiGateway", "5xx"),
        ("AWS/ApiGateway", "Latency"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/SageMaker", "Invocation5XXErrors"),
        ("AWS/SageMaker", "ModelLatency"),
        ("AWS/SageMaker", "ModelSetupTime"),
    ):
        assert watched in plotted
    # Widgets never overlap on CloudWatch's 24-column grid.
    cells = set()
    for w in widgets:
        assert w["x"] + w["width"] <= 24
        area = {
            (x, y)
            for x in range(w["x"], w["x"] + w["width"])
            for y in range(w["y"], w["y"] + w["height"])
        }
        assert not cells & area
        cells |= area


def test_thresholds_are_configurable():
    deployed = Deployed(
        lambda: Monitoring(
            "tuned",
            args(
                api_stage="prod",
                variant_name="Blue",
                period_seconds=60,
                api_5xx_rate_percent=5,
                api_5xx_min_requests=50,
                api_latency_p95_ms=800,
                model_latency_p95_ms=250,
                model_setup_time_ms=10_000,
                lambda_errors=3,
                tags={"team": "ml"},
            ),
        )
    )
    assert deployed.alarm("api-latency-p95")["threshold"] == 800
    assert deployed.alarm("api-latency-p95")["dimensions"]["Stage"] == "prod"
    assert deployed.alarm("model-latency-p95")["threshold"] == 250_000
    assert deployed.alarm("model-setup-time")["threshold"] == 10_000_000
    assert deployed.alarm("endpoint-5xx")["dimensions"]["VariantName"] == "Blue"
    assert deployed.alarm("lambda-errors")["threshold"] == 3
    assert deployed.alarm("lambda-errors")["period"] == 60
    rate = deployed.alarm("api-5xx-rate")
    assert rate["threshold"] == 5
    assert "requests >= 50" in rate["metricQueries"][2]["expression"]
    assert {a.inputs["tags"]["team"] for a in deployed.of_type(ALARM)} == {"ml"}


def test_no_budget_by_default_and_the_topic_keeps_its_default_policy(monitoring: Deployed):
    assert monitoring.of_type(BUDGET) == []
    assert monitoring.of_type(TOPIC_POLICY) == []


@pytest.fixture(scope="module")
def budgeted() -> Deployed:
    return Deployed(lambda: Monitoring("monitoring", args(monthly_budget_usd=75)))


def test_a_budget_notifies_the_alarm_topic_at_80_and_100_percent(budgeted: Deployed):
    (budget,) = budgeted.of_type(BUDGET)
    inputs = budget.inputs
    assert (inputs["budgetType"], inputs["timeUnit"]) == ("COST", "MONTHLY")
    assert (inputs["limitAmount"], inputs["limitUnit"]) == ("75", "USD")
    # The account's cost: a tag filter would read $0 until the tags are activated.
    assert "costFilters" not in inputs
    assert "filterExpression" not in inputs
    notifications = {
        (n["notificationType"], n["threshold"], n["thresholdType"], n["comparisonOperator"])
        for n in inputs["notifications"]
    }
    assert notifications == {
        ("ACTUAL", 80, "PERCENTAGE", "GREATER_THAN"),
        ("ACTUAL", 100, "PERCENTAGE", "GREATER_THAN"),
        ("FORECASTED", 100, "PERCENTAGE", "GREATER_THAN"),
    }
    for notification in inputs["notifications"]:
        assert notification["subscriberSnsTopicArns"] == [budgeted.alarm_topic_arn]
    assert budget.depends_on == ("monitoring-alarms-policy",)


def test_the_topic_admits_this_accounts_budgets_and_alarms_only(budgeted: Deployed):
    (policy,) = budgeted.of_type(TOPIC_POLICY)
    assert policy.inputs["arn"] == budgeted.alarm_topic_arn
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert set(statements) == {"AlarmsOfThisAccount", "BudgetsOfThisAccount"}
    for sid, service, source in (
        (
            "AlarmsOfThisAccount",
            "cloudwatch.amazonaws.com",
            f"arn:aws:cloudwatch:*:{ACCOUNT}:alarm:*",
        ),
        ("BudgetsOfThisAccount", "budgets.amazonaws.com", f"arn:aws:budgets::{ACCOUNT}:*"),
    ):
        assert statements[sid] == {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sns:Publish",
            "Resource": budgeted.alarm_topic_arn,
            "Condition": {
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                "ArnLike": {"aws:SourceArn": source},
            },
        }


def test_region_can_be_left_to_the_provider():
    """Without `region` the widgets use the provider's region (aws:index/getRegion)."""
    deployed = Deployed(lambda: Monitoring("regionless", args(region=None)))
    assert deployed.dashboard["widgets"][1]["properties"]["title"] == "API requests and errors"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"period_seconds": 90}, "period_seconds must be a positive multiple of 60"),
        ({"api_5xx_rate_percent": 0}, "api_5xx_rate_percent must be within (0, 100]"),
        ({"api_latency_p95_ms": -1}, "api_latency_p95_ms must be positive"),
        ({"lambda_errors": 0}, "lambda_errors must be at least 1"),
        ({"monthly_budget_usd": -5}, "monthly_budget_usd: must be 0"),
        (
            {"alarm_email": "ops@example.com"},
            "alarm_email: 'ops@example.com' is at example.com, a domain reserved",
        ),
        (
            {"alarm_email": "ops at example"},
            "alarm_email: 'ops at example' is not an email address",
        ),
    ],
)
def test_invalid_args_fail_with_a_clear_message(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("]", r"\]")):
        args(**overrides)


def test_monitoring_resources_satisfy_the_policy_pack(monitoring: Deployed):
    resources = [Resource(r.type, r.name, r.inputs) for r in monitoring.resources if r.custom]
    for policy in rules.POLICIES:
        assert violations(policy, resources) == [], policy.name


def test_defaults_and_stack_outputs_name_the_real_resources(dev_stack: StackRun):
    """Wired from the stack's outputs, as the stack wires it (every stage), with the default
    variant, every alarm watches a resource the program really creates (a wrong dimension
    never fires)."""
    outputs = dev_stack.outputs
    deployed = Deployed(
        lambda: Monitoring(
            "wired",
            MonitoringArgs(
                api_id=outputs["api_id"],
                api_stage=None,
                function_name=outputs["function_name"],
                endpoint_name=outputs["endpoint_name"],
            ),
        )
    )
    api = dev_stack.one("aws:apigatewayv2/api:Api")
    function = dev_stack.one("aws:lambda/function:Function")
    rollout = dev_stack.one("pulumi-python:dynamic/endpoint_rollout:EndpointRollout")
    (variant,) = dev_stack.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration").inputs[
        "productionVariants"
    ]

    # Every stage of the API: the site's name is a secret, not for an alarm's dimensions.
    assert deployed.alarm("api-latency-p95")["dimensions"] == {"ApiId": api.id}
    assert deployed.alarm("lambda-errors")["dimensions"] == {"FunctionName": function.state["name"]}
    assert deployed.alarm("endpoint-5xx")["dimensions"] == {
        "EndpointName": rollout.state["endpoint_name"],
        "VariantName": variant["variantName"],
    }


@pytest.fixture(scope="module")
def with_variants() -> Deployed:
    return Deployed(lambda: Monitoring("monitoring", args(variants=("main", "canary", "b"))))


def test_each_variant_but_main_has_an_alarm_comparing_it_with_main(with_variants: Deployed):
    from proxy.metrics import NAMESPACE, SERVICE_DIMENSION, VARIANT_DIMENSION

    assert len(with_variants.of_type(ALARM)) == 7 + 2
    for variant in ("canary", "b"):
        alarm = with_variants.alarm(f"variant-{variant}-worse")
        queries = {q["id"]: q for q in alarm["metricQueries"]}
        for query_id, (metric, of, stat) in {
            "variant_errors": ("Errors", variant, "Sum"),
            "variant_requests": ("Requests", variant, "Sum"),
            "variant_p95": ("Latency", variant, "p95"),
            "baseline_errors": ("Errors", "main", "Sum"),
            "baseline_requests": ("Requests", "main", "Sum"),
            "baseline_p95": ("Latency", "main", "p95"),
        }.items():
            assert queries[query_id]["returnData"] is False
            assert queries[query_id]["metric"] == {
                "namespace": NAMESPACE,
                "metricName": metric,
                "dimensions": {
                    SERVICE_DIMENSION: FUNCTION["FunctionName"],
                    VARIANT_DIMENSION: of,
                },
                "period": 300,
                "stat": stat,
            }
        assert queries["worse"]["returnData"] is True
        assert queries["worse"]["expression"] == (
            "IF(variant_requests >= 20 AND baseline_requests >= 20 AND (100 * "
            "(variant_errors / variant_requests - baseline_errors / baseline_requests) > 5 "
            "OR variant_p95 / baseline_p95 > 1.5), 1, 0)"
        )
        assert (alarm["threshold"], alarm["comparisonOperator"]) == (
            1,
            "GreaterThanOrEqualToThreshold",
        )
        assert (alarm["evaluationPeriods"], alarm["datapointsToAlarm"]) == (5, 3)
        assert alarm["alarmActions"] == [with_variants.alarm_topic_arn]
        assert "docs/operations.md#variant-worse-than-main" in alarm["alarmDescription"]


def test_the_dashboard_compares_the_variants_from_the_proxys_metrics(with_variants: Deployed):
    from proxy.metrics import NAMESPACE

    widgets = {w["properties"].get("title"): w for w in with_variants.dashboard["widgets"]}
    of = {
        variant: {"Service": FUNCTION["FunctionName"], "Variant": variant}
        for variant in ("main", "canary", "b")
    }

    def rows(title: str) -> list:
        return widgets[title]["properties"]["metrics"]

    split = widgets["Requests per variant (traffic split)"]
    assert split["properties"]["stat"] == "Sum"
    assert rows("Requests per variant (traffic split)") == [
        [NAMESPACE, "Requests", "Service", of[v]["Service"], "Variant", v, {"label": v}] for v in of
    ]
    errors = widgets["Error rate per variant (5XX share, Errors average)"]
    assert errors["properties"]["stat"] == "Average"
    assert {row[1] for row in errors["properties"]["metrics"]} == {"Errors"}
    latency = rows("Latency per variant (ms)")
    assert {(row[5], row[6]["stat"]) for row in latency} == {
        (v, stat) for v in of for stat in ("p50", "p95")
    }
    accuracy = rows("Accuracy users report per variant (%)")
    expressions = [row[0] for row in accuracy if isinstance(row[0], dict)]
    assert [e["expression"] for e in expressions] == [
        f"100 * correct{i} / (correct{i} + wrong{i})" for i in range(3)
    ]
    assert [e["label"] for e in expressions] == list(of)
    hidden = [row for row in accuracy if isinstance(row[0], str)]
    assert {(row[1], row[5], row[6]["id"]) for row in hidden} == {
        (metric, v, f"{prefix}{i}")
        for i, v in enumerate(of)
        for metric, prefix in (("FeedbackCorrect", "correct"), ("FeedbackWrong", "wrong"))
    }
    assert all(row[6]["visible"] is False for row in hidden)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"variants": ("canary",)}, "baseline_variant 'main' is not one of ['canary']"),
        ({"variants": ("main", "main")}, "variants must be unique"),
        ({"variant_latency_ratio": 1.0}, "variant_latency_ratio above 1"),
        ({"variant_datapoints_to_alarm": 6}, "variant_datapoints_to_alarm must be 1 to"),
        ({"variant_min_requests": 0}, "variant_min_requests must be at least 1"),
    ],
)
def test_invalid_variant_args_fail_with_a_clear_message(overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        args(**overrides)


def test_every_alarm_links_to_an_existing_runbook(monitoring: Deployed, with_variants: Deployed):
    operations = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    # GitHub's anchors: lower case, spaces to dashes, punctuation dropped.
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in operations.splitlines()
        if line.startswith("## ")
    }
    for alarm in [*monitoring.of_type(ALARM), *with_variants.of_type(ALARM)]:
        link = re.search(r"docs/operations\.md#([a-z0-9-]+)", alarm.inputs["alarmDescription"])
        assert link, alarm.name
        assert link.group(1) in anchors, (alarm.name, link.group(1))


def test_the_stack_has_a_budget_only_when_its_config_sets_one(run_stack, dev_stack):
    assert dev_stack.of_type(BUDGET) == []
    run = run_stack({"image-classifier:monthlyBudgetUsd": "75"})
    assert run.error is None, run.error
    (budget,) = run.of_type(BUDGET)
    assert budget.inputs["limitAmount"] == "75"
    assert budget.inputs["tags"] == {
        "project": "image-classifier",
        "stack": "dev",
        "managed-by": "pulumi",
    }
    (policy,) = run.of_type(TOPIC_POLICY)
    assert policy.inputs["arn"] == run.outputs["alarm_topic_arn"]


def test_the_stack_wires_monitoring_and_config_turns_it_off(run_stack):
    on = run_stack({})
    off = run_stack({"image-classifier:monitoring": "false"})
    mailed = run_stack({"image-classifier:alarmEmail": ONCALL})
    assert len(on.of_type(ALARM)) == 7
    assert {"alarm_topic_arn", "dashboard_name"} <= on.outputs.keys()
    assert on.of_type("aws:sns/topicSubscription:TopicSubscription") == []
    (subscription,) = mailed.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.inputs["endpoint"] == ONCALL
    assert off.of_type(TYPE) == []
    assert off.of_type(ALARM) == []
    assert "alarm_topic_arn" not in off.outputs
