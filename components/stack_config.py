"""The stack's settings: its config read, typed and checked before any resource exists.

`Pulumi.yaml` is the one place a key's type, default and description live. The engine
applies those defaults (and refuses a value of the wrong type) before the program
starts, so `load_settings` receives every declared key and holds no defaults of its
own: a second copy here would never be used under the engine, only drift from it. Tests
build the same mapping the way the engine does (the dev and prod stack files over
`Pulumi.yaml`'s defaults).

Each rule lives beside what it validates (`serverless_problems`, `proxy_problems`,
`log_retention_problem`, ...); this module maps their findings to config keys, adds the
rules that exist only for the config (a region is set, the rollout timeout in minutes, no
alarm email without monitoring) and reports every problem at once as one
`StackConfigError` (a `pulumi.RunError`: the CLI prints the message, not a traceback).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from components.aws_session import AssumedRole, AwsSessionSettings, read_assume_roles
from components.batch_pipeline import batch_concurrency, batch_concurrency_problems
from components.inference_endpoint import ServerlessConfig, serverless_problems
from components.model_variants import (
    DEFAULT_WEIGHT,
    MAIN,
    VariantSettings,
    read_variants,
    version_problem,
)
from components.monitoring import alarm_email_problem, budget_problem
from components.proxy_api import proxy_problems
from components.service_role import log_retention_problem
from components.serving_image import serving_image_problems
from components.site_certificate import domain_problems
from components.static_site import price_class_problem
from components.web_firewall import rate_limit_problem

REGION = "aws:region"
PROFILE = "aws:profile"
ASSUME_ROLES = "aws:assumeRoles"
LEGACY_ASSUME_ROLE = "aws:assumeRole"
"""pulumi-aws 6's single role; pulumi-aws 7 ignores it, so a stack that sets it is refused."""
AWS_KEYS = (PROFILE, ASSUME_ROLES, LEGACY_ASSUME_ROLE)
"""The AWS provider's settings the dynamic providers follow too (`components.aws_session`)."""
PROJECT_KEYS = {
    "modelArchive": "string",
    "modelVersion": "string",
    "variants": "objects",
    "imageUri": "string",
    "servingBaseImage": "string",
    "serverlessMemoryMb": "integer",
    "serverlessMaxConcurrency": "integer",
    "serverlessProvisionedConcurrency": "integer",
    "rolloutTimeoutMinutes": "integer",
    "lambdaMemoryMb": "integer",
    "lambdaTimeoutSeconds": "integer",
    "throttleRateLimit": "integer",
    "throttleBurstLimit": "integer",
    "directThrottleRateLimit": "integer",
    "directThrottleBurstLimit": "integer",
    "originSecretRotation": "integer",
    "logRetentionDays": "integer",
    "logLevel": "string",
    "priceClass": "string",
    "waitForInvalidation": "boolean",
    "monitoring": "boolean",
    "alarmEmail": "string",
    "requireAlarmEmail": "boolean",
    "monthlyBudgetUsd": "integer",
    "tracing": "boolean",
    "domainName": "string",
    "hostedZoneId": "string",
    "domainValidated": "boolean",
    "waf": "boolean",
    "wafRateLimit": "integer",
    "apiKeys": "boolean",
    "predictionsDeletionProtection": "boolean",
    "reviewThreshold": "string",
    "batch": "boolean",
    "reviewEmail": "string",
    "batchConcurrency": "integer",
}
"""Every project key the program reads, with the type `Pulumi.yaml` declares for it;
`objects` is a list of objects, which a project cannot declare (its config types are
string, integer, boolean and arrays of those), so `Pulumi.yaml` declares the key untyped
and the loader checks it."""

SERVING_IMAGE_KEYS = {"image_uri": "imageUri", "base_image": "servingBaseImage"}
SERVERLESS_KEYS = {
    "memory_mb": "serverlessMemoryMb",
    "max_concurrency": "serverlessMaxConcurrency",
    "provisioned_concurrency": "serverlessProvisionedConcurrency",
}
PROXY_KEYS = {
    "memory_mb": "lambdaMemoryMb",
    "timeout_seconds": "lambdaTimeoutSeconds",
    "throttle_rate_limit": "throttleRateLimit",
    "throttle_burst_limit": "throttleBurstLimit",
    "direct_throttle_rate_limit": "directThrottleRateLimit",
    "direct_throttle_burst_limit": "directThrottleBurstLimit",
    "origin_secret_rotation": "originSecretRotation",
    "log_level": "logLevel",
}
BATCH_CONCURRENCY_KEYS = {
    "concurrency": "batchConcurrency",
    "max_concurrency": "serverlessMaxConcurrency",
}
DOMAIN_KEYS = {
    "domain_name": "domainName",
    "hosted_zone_id": "hostedZoneId",
    "validated": "domainValidated",
}
ROLLOUT_TIMEOUT_MINUTES = (1, 1440)
REVIEW_THRESHOLD_RANGE = (0.0, 1.0)
"""What the proxy accepts as REVIEW_THRESHOLD (a top-1 probability)."""


class StackConfigError(pulumi.RunError):
    """The stack's config is invalid; the message names every key to fix."""


@dataclass(frozen=True)
class StackSettings:
    project: str
    stack: str
    region: str
    variants: tuple[VariantSettings, ...]
    """What the stack serves, in the order that splits the requests; `main` among them."""
    image_uri: str | None
    serving_base_image: str | None
    serverless: ServerlessConfig
    rollout_timeout_seconds: int
    lambda_memory_mb: int
    lambda_timeout_seconds: int
    throttle_rate_limit: int
    throttle_burst_limit: int
    direct_throttle_rate_limit: int
    direct_throttle_burst_limit: int
    origin_secret_rotation: int
    log_retention_days: int
    log_level: str
    price_class: str
    wait_for_invalidation: bool
    monitoring: bool
    alarm_email: str | None
    monthly_budget_usd: int
    """0: no budget."""
    tracing: bool
    domain_name: str | None
    """The site's own domain; None: its CloudFront address."""
    hosted_zone_id: str | None
    domain_validated: bool
    waf: bool
    waf_rate_limit: int
    api_keys: bool
    predictions_deletion_protection: bool
    review_threshold: float | None
    """Below it an answer needs review, for the API and the batch alike; None: the proxy's
    own default."""
    batch: bool
    review_email: str | None
    batch_concurrency: int
    """The batch's bound: the classify Lambda's reserved concurrency."""
    aws_session: AwsSessionSettings
    """The AWS provider's profile and assumed roles, for the dynamic providers."""

    @property
    def name_prefix(self) -> str:
        return name_prefix(self.project, self.stack)

    @property
    def tags(self) -> dict[str, str]:
        return {"project": self.project, "stack": self.stack, "managed-by": "pulumi"}


def name_prefix(project: str, stack: str) -> str:
    """`<project>-<stack>`, fit for AWS names (the endpoint's, log groups')."""
    prefix = re.sub(r"[^a-z0-9-]+", "-", f"{project}-{stack}".lower())
    return prefix.strip("-")[:40].rstrip("-")


def config_keys(project: str) -> list[str]:
    """The fully qualified keys `load_settings` reads."""
    return [REGION, *AWS_KEYS, *(f"{project}:{key}" for key in PROJECT_KEYS)]


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


def _objects(text: str) -> Any:
    # How the engine passes an object-valued key: its JSON. Unset is the declared "".
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError(f"{text!r} is not a list of objects") from None


def _boolean(text: str) -> bool:
    # How the engine writes a boolean, and all `pulumi.Config.get_bool` accepts.
    if text.lower() not in ("true", "false"):
        raise ValueError(f"{text!r} is not a boolean (true or false)")
    return text.lower() == "true"


_PARSERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "integer": _integer,
    "boolean": _boolean,
    "objects": _objects,
}


class _Problems:
    """Every problem found, each under the config key to change."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def add(self, key: str, problem: str | None) -> None:
        if problem:
            self.found.append(f"{key}: {problem}")

    def add_by_field(self, problems: Mapping[str, str], keys: Mapping[str, str]) -> None:
        for field_name, problem in problems.items():
            self.add(keys[field_name], problem)

    def raise_any(self, stack: str) -> None:
        if self.found:
            raise config_error(stack, self.found)


def config_error(stack: str, found: Sequence[str]) -> StackConfigError:
    """Every problem of `found` (`key: problem`) as the one error the CLI prints."""
    listed = "\n".join(f"  - {problem}" for problem in found)
    return StackConfigError(f"invalid config for stack {stack!r}; nothing was created:\n{listed}")


def _parsed(config: Mapping[str, str], project: str, problems: _Problems) -> dict[str, Any]:
    """Each project key's value as the type `PROJECT_KEYS` gives it."""
    values = {}
    for key, kind in PROJECT_KEYS.items():
        text = config.get(f"{project}:{key}")
        if text is None:
            problems.add(key, "not set, though Pulumi.yaml declares a default for it")
            continue
        try:
            values[key] = _PARSERS[kind](text)
        except ValueError as error:
            problems.add(key, str(error))
    return values


def _aws_session(config: Mapping[str, str], problems: _Problems) -> AwsSessionSettings:
    """The AWS provider's profile and roles as its config sets them (objects as JSON)."""
    if config.get(LEGACY_ASSUME_ROLE):
        problems.add(
            LEGACY_ASSUME_ROLE,
            "pulumi-aws 7 reads aws:assumeRoles (a list) and ignores this key; move the role "
            "there: `pulumi config set --path 'aws:assumeRoles[0].roleArn' ARN`",
        )
    roles: tuple[AssumedRole, ...] = ()
    if text := config.get(ASSUME_ROLES):
        try:
            entries = json.loads(text)
        except ValueError:
            entries = None
        roles, found = read_assume_roles(entries)
        for suffix, problem in found.items():
            problems.add(f"{ASSUME_ROLES}{suffix}", problem)
    return AwsSessionSettings(profile=config.get(PROFILE) or None, assume_roles=roles)


def load_settings(
    config: Mapping[str, str], project: str, stack: str, project_dir: Path
) -> StackSettings:
    """The settings in `config` (fully qualified keys, every value a string as the engine
    passes it), or a `StackConfigError` that names every key to fix."""
    problems = _Problems()
    region = config.get(REGION, "")
    problems.add(
        REGION, None if region else "set it, e.g. `pulumi config set aws:region eu-west-1`"
    )
    value = _parsed(config, project, problems)
    aws_session = _aws_session(config, problems)
    # The rules below need typed values. Under the engine no value is mistyped: it checks
    # each against the type Pulumi.yaml declares before the program starts.
    problems.raise_any(stack)

    image = {name: value[key].strip() or None for name, key in SERVING_IMAGE_KEYS.items()}
    problems.add_by_field(serving_image_problems(**image), SERVING_IMAGE_KEYS)
    capacity = {field_name: value[key] for field_name, key in SERVERLESS_KEYS.items()}
    problems.add_by_field(serverless_problems(**capacity), SERVERLESS_KEYS)
    low, high = ROLLOUT_TIMEOUT_MINUTES
    rollout_minutes = value["rolloutTimeoutMinutes"]
    if not low <= rollout_minutes <= high:
        problems.add("rolloutTimeoutMinutes", f"must be {low}-{high}")
    proxy = {field_name: value[key] for field_name, key in PROXY_KEYS.items()}
    proxy["log_level"] = proxy["log_level"].upper()
    problems.add_by_field(proxy_problems(**proxy), PROXY_KEYS)
    problems.add("logRetentionDays", log_retention_problem(value["logRetentionDays"]))
    problems.add("priceClass", price_class_problem(value["priceClass"]))
    alarm_email = value["alarmEmail"].strip() or None
    problems.add("alarmEmail", alarm_email_problem(alarm_email) if alarm_email else None)
    if alarm_email and not value["monitoring"]:
        problems.add("alarmEmail", "is set but monitoring is false; no alarm would ever reach it")
    if value["requireAlarmEmail"] and not value["monitoring"]:
        problems.add("requireAlarmEmail", "is true but monitoring is false; there are no alarms")
    elif value["requireAlarmEmail"] and not alarm_email:
        problems.add(
            "alarmEmail",
            "this stack requires it (requireAlarmEmail) so that its alarms reach someone: "
            "`pulumi config set alarmEmail oncall@<your domain>`",
        )
    budget = value["monthlyBudgetUsd"]
    problems.add("monthlyBudgetUsd", budget_problem(budget))
    if budget > 0 and not value["monitoring"]:
        problems.add(
            "monthlyBudgetUsd",
            "is set but monitoring is false; the budget notifies the alarm topic, which "
            "monitoring creates",
        )
    # DNS names are case-insensitive; ACM and CloudFront keep them in lower case.
    domain = {
        "domain_name": value["domainName"].strip().lower().rstrip(".") or None,
        "hosted_zone_id": value["hostedZoneId"].strip() or None,
        "validated": value["domainValidated"],
    }
    problems.add_by_field(domain_problems(**domain), DOMAIN_KEYS)
    problems.add("wafRateLimit", rate_limit_problem(value["wafRateLimit"]))
    threshold = _review_threshold(value["reviewThreshold"], problems)
    review_email = value["reviewEmail"].strip() or None
    problems.add("reviewEmail", alarm_email_problem(review_email) if review_email else None)
    if review_email and not value["batch"]:
        problems.add("reviewEmail", "is set but batch is false; there is no review topic to mail")
    if value["batch"]:
        problems.add_by_field(
            batch_concurrency_problems(value["batchConcurrency"], capacity["max_concurrency"]),
            BATCH_CONCURRENCY_KEYS,
        )
    elif value["batchConcurrency"]:
        problems.add("batchConcurrency", "is set but batch is false; there is no batch to bound")
    variants = _variants(value, project_dir, name_prefix(project, stack), capacity, problems)
    problems.raise_any(stack)

    return StackSettings(
        project=project,
        stack=stack,
        region=region,
        variants=variants,
        image_uri=image["image_uri"],
        serving_base_image=image["base_image"],
        serverless=ServerlessConfig(**capacity),
        rollout_timeout_seconds=rollout_minutes * 60,
        lambda_memory_mb=proxy["memory_mb"],
        lambda_timeout_seconds=proxy["timeout_seconds"],
        throttle_rate_limit=proxy["throttle_rate_limit"],
        throttle_burst_limit=proxy["throttle_burst_limit"],
        direct_throttle_rate_limit=proxy["direct_throttle_rate_limit"],
        direct_throttle_burst_limit=proxy["direct_throttle_burst_limit"],
        origin_secret_rotation=proxy["origin_secret_rotation"],
        log_retention_days=value["logRetentionDays"],
        log_level=proxy["log_level"],
        price_class=value["priceClass"],
        wait_for_invalidation=value["waitForInvalidation"],
        monitoring=value["monitoring"],
        alarm_email=alarm_email,
        monthly_budget_usd=budget,
        tracing=value["tracing"],
        domain_name=domain["domain_name"],
        hosted_zone_id=domain["hosted_zone_id"],
        domain_validated=domain["validated"],
        waf=value["waf"],
        waf_rate_limit=value["wafRateLimit"],
        api_keys=value["apiKeys"],
        predictions_deletion_protection=value["predictionsDeletionProtection"],
        review_threshold=threshold,
        batch=value["batch"],
        review_email=review_email,
        batch_concurrency=batch_concurrency(value["batchConcurrency"], capacity["max_concurrency"]),
        aws_session=aws_session,
    )


def _review_threshold(text: str, problems: _Problems) -> float | None:
    """`reviewThreshold` as a number, or None when it is empty (the proxy's default)."""
    if not text.strip():
        return None
    low, high = REVIEW_THRESHOLD_RANGE
    try:
        threshold = float(text)
    except ValueError:
        threshold = None
    if threshold is None or not low <= threshold <= high:
        problems.add("reviewThreshold", f"{text!r} is not a number from {low:g} to {high:g}")
        return None
    return threshold


def _variants(
    value: Mapping[str, Any],
    project_dir: Path,
    prefix: str,
    capacity: Mapping[str, int],
    problems: _Problems,
) -> tuple[VariantSettings, ...]:
    """`variants` when set, else the one variant `main` from `modelVersion` or
    `modelArchive`; each variant's own memory checked as `serverlessMemoryMb` is."""
    version = value["modelVersion"].strip()
    if value["variants"] is None:
        if version:
            problems.add("modelVersion", version_problem(version))
            return (VariantSettings(MAIN, DEFAULT_WEIGHT, version=version),)
        return (VariantSettings(MAIN, DEFAULT_WEIGHT, archive=project_dir / value["modelArchive"]),)
    if version:
        problems.add(
            "modelVersion",
            "is set together with variants, where each variant names its own archive or "
            "version; put it on the variant main",
        )
    variants, found = read_variants(
        value["variants"], project_dir, prefix, capacity["provisioned_concurrency"]
    )
    for suffix, problem in found.items():
        problems.add(f"variants{suffix}", problem)
    # Indexes match the config's only when every entry was an object.
    for index, variant in enumerate(variants if not found else ()):
        if variant.memory_mb is not None:
            memory = serverless_problems(**(dict(capacity) | {"memory_mb": variant.memory_mb}))
            problems.add(f"variants[{index}].serverlessMemoryMb", memory.get("memory_mb"))
    return variants
