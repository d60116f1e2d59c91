"""Alarms, an alarm topic and one dashboard for the request path.

What pages someone, and why each default:

| alarm | metric | default |
| --- | --- | --- |
| API 5XX rate | `AWS/ApiGateway` `5xx` / `Count` | > 1 % of >= 10 requests in 5 min |
| API p95 latency | `AWS/ApiGateway` `Latency` p95 | > 3 s in 2 of 3 periods |
| Lambda errors | `AWS/Lambda` `Errors` | >= 1 in 5 min (known failures are JSON replies) |
| Lambda throttles | `AWS/Lambda` `Throttles` | >= 1 in 5 min |
| endpoint errors | `AWS/SageMaker` `Invocation5XXErrors` | >= 1 in 5 min |
| model p95 latency | `AWS/SageMaker` `ModelLatency` p95 | > 1 s in 2 of 3 periods |
| cold start | `AWS/SageMaker` `ModelSetupTime` max | > 25 s: the HTTP API gives up after 30 s |
| a variant worse than main | `ImageClassifier` `Errors`, `Requests`, `Latency` p95 | see below |

Each model variant but main has its own alarm: it fires when the variant's error rate is
more than 5 percentage points above main's, or its p95 latency above 1.5 times main's, in
3 of 5 periods in which both had at least 20 requests (fewer tell nothing).

The model variants' metrics are the proxy's (`proxy/metrics.py`, Embedded Metric Format):
namespace `ImageClassifier`, dimensions `Service` (the proxy function's name) and
`Variant`. The dashboard shows, per variant, the traffic split (`Requests`), the error
rate (`Errors` average), p50 and p95 latency and the accuracy users report
(`FeedbackCorrect / (FeedbackCorrect + FeedbackWrong)`, metric math).

With `monthly_budget_usd` set, an AWS Budgets cost budget of that amount a month
notifies the same topic when actual spend passes 80 % and 100 % of it, and when the
month's forecast passes 100 %. It watches the account's whole cost: a budget filtered
by the stack's tags would read $0, silently, until someone activates them as
cost-allocation tags in the Billing console. The topic then gets a policy (replacing
SNS's default one) that lets only this account's CloudWatch alarms and budgets publish.

Every alarm treats missing data as not breaching: a quiet service is a healthy one.
SageMaker reports latencies in microseconds; thresholds here are milliseconds and are
converted once, in `_MICROSECONDS_PER_MS`.

The alarm topic is not KMS-encrypted on purpose: CloudWatch cannot publish to a topic
encrypted with the AWS-managed SNS key, a customer key costs more than all the alarms,
and alarm messages carry metric names and numbers, never user data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam_policy import policy_document
from shared.metrics import NAMESPACE, SERVICE_DIMENSION, VARIANT_DIMENSION

TYPE = "image-classifier:monitoring:Monitoring"

_MICROSECONDS_PER_MS = 1000
_API = "AWS/ApiGateway"
_LAMBDA = "AWS/Lambda"
_SAGEMAKER = "AWS/SageMaker"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
"""Second-level domains reserved for documentation (RFC 2606), with all their subdomains."""
RESERVED_TOP_LEVEL = ("example", "test", "invalid", "localhost")
"""Top-level names that never reach anyone (RFC 2606, RFC 6761)."""


BUDGET_THRESHOLDS = (("ACTUAL", 80), ("ACTUAL", 100), ("FORECASTED", 100))
"""When the budget notifies: (kind of spend, percent of the amount)."""


def budget_problem(monthly_usd: int) -> str | None:
    """Why `monthly_usd` is no budget amount; None when it is one (0: no budget)."""
    if monthly_usd >= 0:
        return None
    return f"must be 0 (no budget) or more US dollars a month, got {monthly_usd}"


def alarm_email_problem(address: str) -> str | None:
    """Why alarms sent to `address` would reach nobody; None when they can."""
    if not _EMAIL.fullmatch(address):
        return f"{address!r} is not an email address"
    domain = address.rpartition("@")[2].lower().rstrip(".")
    reserved = domain.rpartition(".")[2] in RESERVED_TOP_LEVEL or any(
        domain == name or domain.endswith(f".{name}") for name in RESERVED_DOMAINS
    )
    if not reserved:
        return None
    return (
        f"{address!r} is at {domain}, a domain reserved for examples and tests (RFC 2606, "
        "RFC 6761): no alarm would ever reach it; set an address someone reads"
    )


@dataclass(kw_only=True)
class MonitoringArgs:
    """What to watch and when to page. Thresholds are per `period_seconds` window."""

    api_id: pulumi.Input[str]
    """ID of the HTTP API (dimension `ApiId`)."""
    api_stage: pulumi.Input[str] | None = "$default"
    """Stage of the HTTP API (dimension `Stage`); None: the API's every stage (dimension
    `ApiId` alone), for a stack whose site stage's name is a secret."""
    function_name: pulumi.Input[str]
    """Name of the proxy Lambda function."""
    endpoint_name: pulumi.Input[str]
    """Name of the SageMaker endpoint."""
    variant_name: pulumi.Input[str] = "AllTraffic"
    """Production variant of the endpoint."""
    alarm_email: pulumi.Input[str] | None = None
    """Address subscribed to the alarm topic; None or "" for no subscription. AWS sends a
    confirmation email first: nothing arrives until it is confirmed."""
    region: pulumi.Input[str] | None = None
    """Region the dashboard's widgets read; None means the provider's region."""
    period_seconds: int = 300
    """Length of one evaluation window (a multiple of 60)."""
    api_5xx_rate_percent: float = 1.0
    """Share of requests answered with a 5XX above which the API alarm fires."""
    api_5xx_min_requests: int = 10
    """Fewer requests than this in a window never count as a 5XX rate (one failure in two
    requests is not an outage)."""
    api_latency_p95_ms: float = 3000.0
    """p95 of the API's end-to-end latency."""
    lambda_errors: int = 1
    """Unhandled Lambda errors per window (the proxy turns known failures into JSON)."""
    lambda_throttles: int = 1
    """Throttled Lambda invocations per window."""
    endpoint_5xx_errors: int = 1
    """SageMaker `Invocation5XXErrors` per window (4XX are bad images, not outages)."""
    model_latency_p95_ms: float = 1000.0
    """p95 of the model's own latency inside the container."""
    model_setup_time_ms: float = 25000.0
    """Longest cold start (`ModelSetupTime`) tolerated; above ~30 s the first request
    after idling times out at the HTTP API."""
    monthly_budget_usd: int = 0
    """Monthly cost budget of the account, in US dollars, notifying the topic; 0: none."""
    variants: Sequence[str] = ("main",)
    """The model variants the proxy shares requests among (its metrics' `Variant`)."""
    baseline_variant: str = "main"
    """The variant every other one is compared with."""
    variant_error_points: float = 5.0
    """How many percentage points a variant's error rate may exceed the baseline's."""
    variant_latency_ratio: float = 1.5
    """How many times the baseline's p95 latency a variant's may reach."""
    variant_min_requests: int = 20
    """Fewer requests than this to either variant in a window never compare them."""
    variant_evaluation_periods: int = 5
    variant_datapoints_to_alarm: int = 3
    """A variant is worse in this many of `variant_evaluation_periods` windows."""
    tags: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        self._check_thresholds()
        self._check_variants()
        email = self.alarm_email
        if isinstance(email, str) and email and (problem := alarm_email_problem(email)):
            raise ValueError(f"alarm_email: {problem}")
        if problem := budget_problem(self.monthly_budget_usd):
            raise ValueError(f"monthly_budget_usd: {problem}")

    def _check_thresholds(self) -> None:
        if self.period_seconds < 60 or self.period_seconds % 60:
            raise ValueError(
                f"period_seconds must be a positive multiple of 60, got {self.period_seconds}"
            )
        if not 0 < self.api_5xx_rate_percent <= 100:
            raise ValueError(
                f"api_5xx_rate_percent must be within (0, 100], got {self.api_5xx_rate_percent}"
            )
        for field in ("api_latency_p95_ms", "model_latency_p95_ms", "model_setup_time_ms"):
            if getattr(self, field) <= 0:
                raise ValueError(f"{field} must be positive, got {getattr(self, field)}")
        for field in (
            "api_5xx_min_requests",
            "variant_min_requests",
            "lambda_errors",
            "lambda_throttles",
            "endpoint_5xx_errors",
        ):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be at least 1, got {getattr(self, field)}")

    def _check_variants(self) -> None:
        if self.baseline_variant not in self.variants:
            raise ValueError(
                f"baseline_variant {self.baseline_variant!r} is not one of {list(self.variants)}"
            )
        if len(set(self.variants)) != len(self.variants):
            raise ValueError(f"variants must be unique, got {list(self.variants)}")
        if self.variant_error_points <= 0 or self.variant_latency_ratio <= 1:
            raise ValueError(
                "variant_error_points must be positive and variant_latency_ratio above 1"
            )
        if not 1 <= self.variant_datapoints_to_alarm <= self.variant_evaluation_periods:
            raise ValueError(
                "variant_datapoints_to_alarm must be 1 to variant_evaluation_periods, got "
                f"{self.variant_datapoints_to_alarm} of {self.variant_evaluation_periods}"
            )


class Monitoring(pulumi.ComponentResource):
    """An SNS alarm topic, seven CloudWatch alarms on it plus one per model variant but the
    baseline, one dashboard and, when asked for, a monthly cost budget notifying the topic."""

    alarm_topic_arn: pulumi.Output[str]
    dashboard_name: pulumi.Output[str]
    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(TYPE, name, None, opts)
        self._name = name
        self._args = args
        child = pulumi.ResourceOptions(parent=self)

        topic = aws.sns.Topic(f"{name}-alarms", tags=args.tags, opts=child)
        if args.alarm_email:
            aws.sns.TopicSubscription(
                f"{name}-alarm-email",
                topic=topic.arn,
                protocol="email",
                endpoint=args.alarm_email,
                opts=child,
            )
        self._topic_arn = topic.arn

        api = {"ApiId": args.api_id}
        if args.api_stage is not None:
            api["Stage"] = args.api_stage
        function = {"FunctionName": args.function_name}
        endpoint = {"EndpointName": args.endpoint_name, "VariantName": args.variant_name}
        us = _MICROSECONDS_PER_MS
        self.alarms = {
            "api-5xx-rate": self._alarm(
                "api-5xx-rate",
                f"More than {args.api_5xx_rate_percent:g}% of API requests failed with a 5XX "
                f"(windows with at least {args.api_5xx_min_requests} requests). "
                "Runbook: docs/operations.md#api-5xx",
                threshold=args.api_5xx_rate_percent,
                comparison_operator="GreaterThanThreshold",
                metric_queries=self._error_rate_queries(api),
            ),
            "api-latency-p95": self._alarm(
                "api-latency-p95",
                f"API p95 latency above {args.api_latency_p95_ms:g} ms. "
                "Runbook: docs/operations.md#latency",
                namespace=_API,
                metric_name="Latency",
                dimensions=api,
                extended_statistic="p95",
                threshold=args.api_latency_p95_ms,
                comparison_operator="GreaterThanThreshold",
                evaluation_periods=3,
                datapoints_to_alarm=2,
            ),
            "lambda-errors": self._alarm(
                "lambda-errors",
                "The proxy Lambda raised unhandled errors or timed out. "
                "Runbook: docs/operations.md#lambda-errors",
                namespace=_LAMBDA,
                metric_name="Errors",
                dimensions=function,
                statistic="Sum",
                threshold=args.lambda_errors,
            ),
            "lambda-throttles": self._alarm(
                "lambda-throttles",
                "The proxy Lambda was throttled. Runbook: docs/operations.md#throttling",
                namespace=_LAMBDA,
                metric_name="Throttles",
                dimensions=function,
                statistic="Sum",
                threshold=args.lambda_throttles,
            ),
            "endpoint-5xx": self._alarm(
                "endpoint-5xx",
                "The SageMaker endpoint answered with 5XX errors. "
                "Runbook: docs/operations.md#endpoint-errors",
                namespace=_SAGEMAKER,
                metric_name="Invocation5XXErrors",
                dimensions=endpoint,
                statistic="Sum",
                threshold=args.endpoint_5xx_errors,
            ),
            "model-latency-p95": self._alarm(
                "model-latency-p95",
                f"Model p95 latency above {args.model_latency_p95_ms:g} ms. "
                "Runbook: docs/operations.md#latency",
                namespace=_SAGEMAKER,
                metric_name="ModelLatency",
                dimensions=endpoint,
                extended_statistic="p95",
                threshold=args.model_latency_p95_ms * us,
                comparison_operator="GreaterThanThreshold",
                evaluation_periods=3,
                datapoints_to_alarm=2,
            ),
            "model-setup-time": self._alarm(
                "model-setup-time",
                f"A cold start (ModelSetupTime) took longer than {args.model_setup_time_ms:g} ms. "
                "Runbook: docs/operations.md#cold-starts",
                namespace=_SAGEMAKER,
                metric_name="ModelSetupTime",
                dimensions=endpoint,
                statistic="Maximum",
                threshold=args.model_setup_time_ms * us,
                comparison_operator="GreaterThanThreshold",
            ),
        }
        for variant in args.variants:
            if variant != args.baseline_variant:
                self.alarms[f"variant-{variant}-worse"] = self._variant_alarm(variant)

        region = (
            args.region
            if args.region is not None
            else aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        )
        body = pulumi.Output.json_dumps(
            {
                "widgets": dashboard_widgets(
                    region=region,
                    period=args.period_seconds,
                    api=api,
                    function=function,
                    endpoint=endpoint,
                    alarm_arns=[alarm.arn for alarm in self.alarms.values()],
                )
                + variant_widgets(
                    region=region,
                    period=args.period_seconds,
                    service=args.function_name,
                    variants=args.variants,
                    y=21,
                )
            }
        )
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=_dashboard_name(name),
            dashboard_body=body,
            opts=child,
        )

        if args.monthly_budget_usd:
            self._budget(topic)

        self.alarm_topic_arn = topic.arn
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs(
            {"alarm_topic_arn": self.alarm_topic_arn, "dashboard_name": self.dashboard_name}
        )

    def _budget(self, topic: aws.sns.Topic) -> None:
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition
        policy = aws.sns.TopicPolicy(
            f"{self._name}-alarms-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, account, partition).apply(
                lambda values: _alarm_topic_policy(*values)
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.budgets.Budget(
            f"{self._name}-budget",
            budget_type="COST",
            time_unit="MONTHLY",
            limit_amount=str(self._args.monthly_budget_usd),
            limit_unit="USD",
            notifications=[
                {
                    "notification_type": kind,
                    "comparison_operator": "GREATER_THAN",
                    "threshold": percent,
                    "threshold_type": "PERCENTAGE",
                    "subscriber_sns_topic_arns": [topic.arn],
                }
                for kind, percent in BUDGET_THRESHOLDS
            ],
            tags=self._args.tags,
            # Budgets checks that it may publish to the topic when the budget is made.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

    def _alarm(self, key: str, description: str, **metric: Any) -> aws.cloudwatch.MetricAlarm:
        settings: dict[str, Any] = {
            "comparison_operator": "GreaterThanOrEqualToThreshold",
            "evaluation_periods": 1,
            "treat_missing_data": "notBreaching",
        }
        if "metric_queries" not in metric:
            settings["period"] = self._args.period_seconds
        settings.update(metric)
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{key}",
            alarm_description=description,
            alarm_actions=[self._topic_arn],
            ok_actions=[self._topic_arn],
            tags=self._args.tags,
            opts=pulumi.ResourceOptions(parent=self),
            **settings,
        )

    def _variant_alarm(self, variant: str) -> aws.cloudwatch.MetricAlarm:
        """`variant` answers clearly worse than the baseline: a higher error rate or a
        slower p95, in windows where both had enough requests to tell."""
        args = self._args
        baseline = args.baseline_variant

        def metric(query_id: str, name: str, of: str, stat: str) -> dict[str, Any]:
            return {
                "id": query_id,
                "return_data": False,
                "metric": {
                    "namespace": NAMESPACE,
                    "metric_name": name,
                    "dimensions": {SERVICE_DIMENSION: args.function_name, VARIANT_DIMENSION: of},
                    "period": args.period_seconds,
                    "stat": stat,
                },
            }

        enough = f"requests >= {args.variant_min_requests}"
        expression = (
            f"IF(variant_{enough} AND baseline_{enough} AND ("
            "100 * (variant_errors / variant_requests - baseline_errors / baseline_requests) "
            f"> {args.variant_error_points:g} OR "
            f"variant_p95 / baseline_p95 > {args.variant_latency_ratio:g}), 1, 0)"
        )
        return self._alarm(
            f"variant-{variant}-worse",
            f"Variant {variant} answers worse than {baseline}: its error rate more than "
            f"{args.variant_error_points:g} points above {baseline}'s or its p95 latency above "
            f"{args.variant_latency_ratio:g} x {baseline}'s, in "
            f"{args.variant_datapoints_to_alarm} of {args.variant_evaluation_periods} windows "
            f"with at least {args.variant_min_requests} requests each. "
            "Runbook: docs/operations.md#variant-worse-than-main",
            metric_queries=[
                metric("variant_errors", "Errors", variant, "Sum"),
                metric("variant_requests", "Requests", variant, "Sum"),
                metric("variant_p95", "Latency", variant, "p95"),
                metric("baseline_errors", "Errors", baseline, "Sum"),
                metric("baseline_requests", "Requests", baseline, "Sum"),
                metric("baseline_p95", "Latency", baseline, "p95"),
                {
                    "id": "worse",
                    "label": f"{variant} worse than {baseline} (1)",
                    "return_data": True,
                    "expression": expression,
                },
            ],
            threshold=1,
            evaluation_periods=args.variant_evaluation_periods,
            datapoints_to_alarm=args.variant_datapoints_to_alarm,
        )

    def _error_rate_queries(self, api: Mapping[str, Any]) -> list[dict[str, Any]]:
        def total(query_id: str, metric_name: str) -> dict[str, Any]:
            return {
                "id": query_id,
                "return_data": False,
                "metric": {
                    "namespace": _API,
                    "metric_name": metric_name,
                    "dimensions": api,
                    "period": self._args.period_seconds,
                    "stat": "Sum",
                },
            }

        return [
            total("errors", "5xx"),
            total("requests", "Count"),
            {
                "id": "rate",
                "label": "5XX rate (%)",
                "return_data": True,
                "expression": (
                    f"IF(requests >= {self._args.api_5xx_min_requests}, 100 * errors / requests, 0)"
                ),
            },
        ]


def _alarm_topic_policy(topic_arn: str, account: str, partition: str) -> str:
    """CloudWatch alarms and budgets of this account may publish to the alarm topic."""
    where = (topic_arn, account, partition)
    return policy_document(
        _publisher("AlarmsOfThisAccount", "cloudwatch", *where, "alarm:*"),
        _publisher("BudgetsOfThisAccount", "budgets", *where, "*"),
    )


def _publisher(
    sid: str, service: str, topic_arn: str, account: str, partition: str, resource: str
) -> dict[str, Any]:
    """`service` may publish to the topic, for `resource`s of this account only."""
    region = "" if service == "budgets" else "*"  # budgets are global: no region in the ARN
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": f"{service}.amazonaws.com"},
        "Action": "sns:Publish",
        "Resource": topic_arn,
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account},
            "ArnLike": {
                "aws:SourceArn": f"arn:{partition}:{service}:{region}:{account}:{resource}"
            },
        },
    }


def _dashboard_name(name: str) -> str:
    """Unique per stack; CloudWatch allows letters, digits, '-' and '_' only."""
    raw = f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", raw)[:255]


def _metric(namespace: str, name: str, dimensions: Mapping[str, Any], **options: Any) -> list:
    row: list[Any] = [namespace, name]
    for key, value in dimensions.items():
        row += [key, value]
    return [*row, options] if options else row


def dashboard_widgets(
    *,
    region: pulumi.Input[str],
    period: int,
    api: Mapping[str, Any],
    function: Mapping[str, Any],
    endpoint: Mapping[str, Any],
    alarm_arns: list[pulumi.Input[str]],
) -> list[dict[str, Any]]:
    """The dashboard, top to bottom the way a request travels: API, Lambda, endpoint."""

    def graph(title: str, metrics: list, x: int, y: int, **extra: Any) -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "period": period,
                "view": "timeSeries",
                "metrics": metrics,
                **extra,
            },
        }

    return [
        {
            "type": "alarm",
            "x": 0,
            "y": 0,
            "width": 24,
            "height": 3,
            "properties": {"title": "Alarms", "alarms": alarm_arns},
        },
        graph(
            "API requests and errors",
            [
                _metric(_API, "Count", api, stat="Sum", label="requests"),
                _metric(_API, "4xx", api, stat="Sum", label="4XX"),
                _metric(_API, "5xx", api, stat="Sum", label="5XX"),
            ],
            0,
            3,
        ),
        graph(
            "API latency (ms)",
            [
                _metric(_API, "Latency", api, stat="p50", label="p50"),
                _metric(_API, "Latency", api, stat="p95", label="p95"),
                _metric(_API, "IntegrationLatency", api, stat="p95", label="integration p95"),
            ],
            12,
            3,
        ),
        graph(
            "Proxy Lambda",
            [
                _metric(_LAMBDA, "Invocations", function, stat="Sum"),
                _metric(_LAMBDA, "Errors", function, stat="Sum"),
                _metric(_LAMBDA, "Throttles", function, stat="Sum"),
            ],
            0,
            9,
        ),
        graph(
            "Proxy Lambda duration (ms)",
            [
                _metric(_LAMBDA, "Duration", function, stat="p95", label="p95"),
                _metric(_LAMBDA, "Duration", function, stat="Maximum", label="max"),
            ],
            12,
            9,
        ),
        graph(
            "Endpoint invocations",
            [
                _metric(_SAGEMAKER, "Invocations", endpoint, stat="Sum"),
                _metric(_SAGEMAKER, "Invocation4XXErrors", endpoint, stat="Sum", label="4XX"),
                _metric(_SAGEMAKER, "Invocation5XXErrors", endpoint, stat="Sum", label="5XX"),
            ],
            0,
            15,
        ),
        graph(
            "Model latency and cold starts (microseconds)",
            [
                _metric(_SAGEMAKER, "ModelLatency", endpoint, stat="p95", label="model p95"),
                _metric(_SAGEMAKER, "OverheadLatency", endpoint, stat="p95", label="overhead p95"),
                _metric(_SAGEMAKER, "ModelSetupTime", endpoint, stat="Maximum", label="cold start"),
            ],
            12,
            15,
        ),
    ]


def variant_widgets(
    *,
    region: pulumi.Input[str],
    period: int,
    service: pulumi.Input[str],
    variants: Sequence[str],
    y: int,
) -> list[dict[str, Any]]:
    """The model variants side by side, from the proxy's metrics: the traffic split, the
    error rate, latency and the accuracy users report."""

    def graph(title: str, metrics: list, x: int, row: int, **extra: Any) -> dict[str, Any]:
        return {
            "type": "metric",
            "x": x,
            "y": y + row,
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "period": period,
                "view": "timeSeries",
                "metrics": metrics,
                **extra,
            },
        }

    def of(variant: str) -> dict[str, Any]:
        return {SERVICE_DIMENSION: service, VARIANT_DIMENSION: variant}

    accuracy: list = []
    for index, variant in enumerate(variants):
        correct, wrong = f"correct{index}", f"wrong{index}"
        accuracy += [
            _metric(NAMESPACE, "FeedbackCorrect", of(variant), id=correct, visible=False),
            _metric(NAMESPACE, "FeedbackWrong", of(variant), id=wrong, visible=False),
            [
                {
                    "expression": f"100 * {correct} / ({correct} + {wrong})",
                    "label": variant,
                    "id": f"accuracy{index}",
                }
            ],
        ]
    return [
        graph(
            "Requests per variant (traffic split)",
            [_metric(NAMESPACE, "Requests", of(v), label=v) for v in variants],
            0,
            0,
            stat="Sum",
        ),
        graph(
            "Error rate per variant (5XX share, Errors average)",
            [_metric(NAMESPACE, "Errors", of(v), label=v) for v in variants],
            12,
            0,
            stat="Average",
        ),
        graph(
            "Latency per variant (ms)",
            [
                _metric(NAMESPACE, "Latency", of(v), stat=stat, label=f"{v} {stat}")
                for v in variants
                for stat in ("p50", "p95")
            ],
            0,
            6,
        ),
        graph(
            "Accuracy users report per variant (%)",
            accuracy,
            12,
            6,
            stat="Sum",
            yAxis={"left": {"min": 0, "max": 100}},
        ),
    ]
