"""The stack's settings: its config read, typed and checked before any resource exists.

`Pulumi.yaml` is the one place a key's type, default and description live. The engine
applies those defaults (and refuses a value of the wrong type) before the program
starts, so `load_settings` receives every declared key and holds no defaults of its
own: a second copy here would never be used under the engine, only drift from it. Tests
build the same mapping the way the engine does (the dev and prod stack files over
`Pulumi.yaml`'s defaults).

Each rule lives beside what it validates (`serverless_problems`, `proxy_problems`,
`log_retention_problem`, ...); this module maps their findings to config keys, adds the
rules that exist only for the config (a region is set, no removed key is set, no alarm
email without monitoring) and reports every problem at once as one
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

from components.aws_session import AwsSessionSettings, read_assume_roles
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
from components.proxy_api import FUNCTION_MEMORY_MB, FUNCTION_TIMEOUT_SECONDS, proxy_problems
from components.service_role import log_retention_problem
from components.serving_image import image_uri_problem
from components.site_certificate import domain_problems
from components.static_site import price_class_problem
from components.web_firewall import RATE_LIMIT, RATE_WINDOW_SECONDS
from shared.log_levels import DEFAULT_LOG_LEVEL
from shared.registry import ARCHIVE_SUFFIX

REGION = "aws:region"
PROFILE = "aws:profile"
ASSUME_ROLES = "aws:assumeRoles"
LEGACY_ASSUME_ROLE = "aws:assumeRole"
"""pulumi-aws 6's single role; pulumi-aws 7 ignores it, so a stack that sets it is refused."""
AWS_KEYS = (PROFILE, ASSUME_ROLES, LEGACY_ASSUME_ROLE)
"""The AWS provider's settings the dynamic providers follow too (`components.aws_session`)."""
BURST_PER_RATE = 2
"""API Gateway's burst on each stage, per request per second of its steady rate: a page's
few requests at once pass, a flood waits on the rate."""
WAF_SHARE_OF_RATE = 10
"""With `waf`, one client IP may make a tenth of the site stage's steady rate, averaged
over WAF's 5-minute window, before WAF blocks it."""
ROLLOUT_TIMEOUT_MINUTES = 90
"""How long a create or update of an endpoint may take before `pulumi up` fails; SageMaker
carries on, and the next `pulumi up` waits for it again. Long enough for the largest
memory with warm instances: a timeout only decides when a stuck rollout is reported."""
PROJECT_KEYS = {
    "model": "model",
    "imageUri": "string",
    "serverlessMemoryMb": "integer",
    "serverlessMaxConcurrency": "integer",
    "serverlessProvisionedConcurrency": "integer",
    "throttleRateLimit": "integer",
    "directThrottleRateLimit": "integer",
    "apiKeys": "boolean",
    "originSecretRotation": "integer",
    "tracing": "boolean",
    "priceClass": "string",
    "domainName": "string",
    "hostedZoneId": "string",
    "domainValidated": "boolean",
    "waf": "boolean",
    "logRetentionDays": "integer",
    "monitoring": "boolean",
    "alarmEmail": "string",
    "monthlyBudgetUsd": "integer",
    "production": "boolean",
    "batch": "boolean",
    "batchConcurrency": "integer",
    "reviewThreshold": "string",
    "reviewEmail": "string",
}
"""Every project key the program reads, with the type `Pulumi.yaml` declares for it;
`model` is a string or a list of objects, which a project cannot declare (its config types
are string, integer, boolean and arrays of those), so `Pulumi.yaml` declares it untyped and
the loader checks it."""
REMOVED_KEYS = {
    "modelArchive": "replaced by model, set to the archive's path (`model: build/model.tar.gz`)",
    "modelVersion": "replaced by model, set to the version (`model: 3f9a1c2b4d5e`)",
    "variants": "replaced by model, set to the same list of variants",
    "servingBaseImage": (
        "replaced by imageUri: build serving/Dockerfile with `--build-arg BASE_IMAGE=...`, "
        "push it to this region's ECR and set imageUri to it"
    ),
    "rolloutTimeoutMinutes": (
        f"no longer a choice: a rollout may take {ROLLOUT_TIMEOUT_MINUTES} minutes, and the "
        "next `pulumi up` waits for one still under way"
    ),
    "lambdaMemoryMb": f"no longer a choice: the proxy Lambda has {FUNCTION_MEMORY_MB} MB",
    "lambdaTimeoutSeconds": (
        f"no longer a choice: the proxy Lambda's timeout is {FUNCTION_TIMEOUT_SECONDS} s, "
        "the HTTP API's own limit (decision 6)"
    ),
    "logLevel": (
        "no longer a choice: every request's line is logged at INFO, failures at WARNING "
        "and ERROR (DEBUG logged nothing more)"
    ),
    "throttleBurstLimit": (
        f"derived from throttleRateLimit: the burst is {BURST_PER_RATE} times the rate"
    ),
    "directThrottleBurstLimit": (
        f"derived from directThrottleRateLimit: the burst is {BURST_PER_RATE} times the rate"
    ),
    "wafRateLimit": (
        f"derived from throttleRateLimit: one client IP may make 1/{WAF_SHARE_OF_RATE} of "
        "the requests it allows in WAF's 5 minutes"
    ),
    "waitForInvalidation": (
        "no longer a choice: `pulumi up` does not wait for CloudFront's invalidation of "
        "config.js (the smoke test waits for the new config.js)"
    ),
    "requireAlarmEmail": (
        "replaced by production (`pulumi config set production true`): a production stack "
        "refuses to deploy without alarmEmail"
    ),
    "predictionsDeletionProtection": (
        "replaced by production (`pulumi config set production true`): a production stack's "
        "predictions table has deletion protection"
    ),
}
"""Keys this program read once, each with what replaced it: a stack that still sets one
is refused before anything is created (docs/operations.md, Upgrading a stack)."""

SERVERLESS_KEYS = {
    "memory_mb": "serverlessMemoryMb",
    "max_concurrency": "serverlessMaxConcurrency",
    "provisioned_concurrency": "serverlessProvisionedConcurrency",
}
PROXY_KEYS = {
    "throttle_rate_limit": "throttleRateLimit",
    "direct_throttle_rate_limit": "directThrottleRateLimit",
    "origin_secret_rotation": "originSecretRotation",
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
    serverless: ServerlessConfig
    throttle_rate_limit: int
    direct_throttle_rate_limit: int
    origin_secret_rotation: int
    log_retention_days: int
    price_class: str
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
    api_keys: bool
    production: bool
    """Its predictions table has deletion protection, and its alarms must reach someone."""
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
    def throttle_burst_limit(self) -> int:
        return BURST_PER_RATE * self.throttle_rate_limit

    @property
    def direct_throttle_burst_limit(self) -> int:
        return BURST_PER_RATE * self.direct_throttle_rate_limit

    @property
    def waf_rate_limit(self) -> int:
        """Requests one client IP may make to /api/ in WAF's window (within WAF's range)."""
        low, high = RATE_LIMIT
        share = self.throttle_rate_limit * RATE_WINDOW_SECONDS // WAF_SHARE_OF_RATE
        return min(max(share, low), high)

    @property
    def rollout_timeout_seconds(self) -> int:
        return ROLLOUT_TIMEOUT_MINUTES * 60

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
    """The fully qualified keys `load_settings` reads, the removed ones too (to refuse
    them)."""
    keys = (*PROJECT_KEYS, *REMOVED_KEYS)
    return [REGION, *AWS_KEYS, *(f"{project}:{key}" for key in keys)]


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


def _model(text: str) -> Any:
    # How the engine passes a list: its JSON. A string (a path, a version) comes as it is.
    if not text.strip().startswith(("[", "{")):
        return text.strip()
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError(f"{text!r} is not a list of variants") from None


def _boolean(text: str) -> bool:
    # How the engine writes a boolean, and all `pulumi.Config.get_bool` accepts.
    if text.lower() not in ("true", "false"):
        raise ValueError(f"{text!r} is not a boolean (true or false)")
    return text.lower() == "true"


_PARSERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "integer": _integer,
    "boolean": _boolean,
    "model": _model,
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
    """Each project key's value as the type `PROJECT_KEYS` gives it; every removed key
    still set named with its replacement."""
    for key, replacement in REMOVED_KEYS.items():
        if config.get(f"{project}:{key}") is not None:
            problems.add(key, f"removed, {replacement}; then `pulumi config rm {key}`")
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
    session = AwsSessionSettings()
    if profile := config.get(PROFILE):
        session["profile"] = profile
    if text := config.get(ASSUME_ROLES):
        try:
            entries = json.loads(text)
        except ValueError:
            entries = None
        session["assume_roles"], found = read_assume_roles(entries)
        for suffix, problem in found.items():
            problems.add(f"{ASSUME_ROLES}{suffix}", problem)
    return session


def _alarm_email(value: Mapping[str, Any], problems: _Problems) -> str | None:
    """The alarm email, checked against monitoring and production."""
    alarm_email = value["alarmEmail"].strip() or None
    problems.add("alarmEmail", alarm_email_problem(alarm_email) if alarm_email else None)
    if alarm_email and not value["monitoring"]:
        problems.add("alarmEmail", "is set but monitoring is false; no alarm would ever reach it")
    if value["production"] and not value["monitoring"]:
        problems.add("production", "is true but monitoring is false; its alarms must exist")
    elif value["production"] and not alarm_email:
        problems.add(
            "alarmEmail",
            "a production stack requires it so that its alarms reach someone: "
            "`pulumi config set alarmEmail oncall@<your domain>`",
        )
    return alarm_email


def _check_budget(value: Mapping[str, Any], problems: _Problems) -> None:
    """The budget goes with monitoring: it notifies the alarm topic."""
    budget = value["monthlyBudgetUsd"]
    problems.add("monthlyBudgetUsd", budget_problem(budget))
    if budget > 0 and not value["monitoring"]:
        problems.add(
            "monthlyBudgetUsd",
            "is set but monitoring is false; the budget notifies the alarm topic, which "
            "monitoring creates",
        )


def _review_email(
    value: Mapping[str, Any], max_concurrency: int, problems: _Problems
) -> str | None:
    """The review email, checked against batch (and the batch's concurrency)."""
    review_email = value["reviewEmail"].strip() or None
    problems.add("reviewEmail", alarm_email_problem(review_email) if review_email else None)
    if review_email and not value["batch"]:
        problems.add("reviewEmail", "is set but batch is false; there is no review topic to mail")
    if value["batch"]:
        problems.add_by_field(
            batch_concurrency_problems(value["batchConcurrency"], max_concurrency),
            BATCH_CONCURRENCY_KEYS,
        )
    elif value["batchConcurrency"]:
        problems.add("batchConcurrency", "is set but batch is false; there is no batch to bound")
    return review_email


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

    image_uri = value["imageUri"].strip() or None
    problems.add("imageUri", image_uri_problem(image_uri) if image_uri else None)
    capacity = {field_name: value[key] for field_name, key in SERVERLESS_KEYS.items()}
    problems.add_by_field(serverless_problems(**capacity), SERVERLESS_KEYS)
    proxy = {field_name: value[key] for field_name, key in PROXY_KEYS.items()}
    # The fixed and derived values hold whenever the rates do: only the rates' problems.
    found = proxy_problems(
        memory_mb=FUNCTION_MEMORY_MB,
        timeout_seconds=FUNCTION_TIMEOUT_SECONDS,
        throttle_burst_limit=BURST_PER_RATE * proxy["throttle_rate_limit"],
        direct_throttle_burst_limit=BURST_PER_RATE * proxy["direct_throttle_rate_limit"],
        log_level=DEFAULT_LOG_LEVEL,
        **proxy,
    )
    problems.add_by_field({f: p for f, p in found.items() if f in PROXY_KEYS}, PROXY_KEYS)
    problems.add("logRetentionDays", log_retention_problem(value["logRetentionDays"]))
    problems.add("priceClass", price_class_problem(value["priceClass"]))
    alarm_email = _alarm_email(value, problems)
    _check_budget(value, problems)
    # DNS names are case-insensitive; ACM and CloudFront keep them in lower case.
    domain = {
        "domain_name": value["domainName"].strip().lower().rstrip(".") or None,
        "hosted_zone_id": value["hostedZoneId"].strip() or None,
        "validated": value["domainValidated"],
    }
    problems.add_by_field(domain_problems(**domain), DOMAIN_KEYS)
    threshold = _review_threshold(value["reviewThreshold"], problems)
    review_email = _review_email(value, capacity["max_concurrency"], problems)
    variants = _variants(
        value["model"], project_dir, name_prefix(project, stack), capacity, problems
    )
    problems.raise_any(stack)

    return StackSettings(
        project=project,
        stack=stack,
        region=region,
        variants=variants,
        image_uri=image_uri,
        serverless=ServerlessConfig(**capacity),
        throttle_rate_limit=proxy["throttle_rate_limit"],
        direct_throttle_rate_limit=proxy["direct_throttle_rate_limit"],
        origin_secret_rotation=proxy["origin_secret_rotation"],
        log_retention_days=value["logRetentionDays"],
        price_class=value["priceClass"],
        monitoring=value["monitoring"],
        alarm_email=alarm_email,
        monthly_budget_usd=value["monthlyBudgetUsd"],
        tracing=value["tracing"],
        domain_name=domain["domain_name"],
        hosted_zone_id=domain["hosted_zone_id"],
        domain_validated=domain["validated"],
        waf=value["waf"],
        api_keys=value["apiKeys"],
        production=value["production"],
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
    model: Any,
    project_dir: Path,
    prefix: str,
    capacity: Mapping[str, int],
    problems: _Problems,
) -> tuple[VariantSettings, ...]:
    """What `model` says serves: an archive (a path ending in `ARCHIVE_SUFFIX`) or a
    registry version as the one variant `main`, or the list of variants; each variant's own
    memory checked as `serverlessMemoryMb` is."""
    if isinstance(model, str):
        if model.endswith(ARCHIVE_SUFFIX):
            return (VariantSettings(MAIN, DEFAULT_WEIGHT, archive=project_dir / model),)
        problem = version_problem(model)
        if problem:
            problems.add(
                "model", f"{problem}, nor a model archive (a path ending in {ARCHIVE_SUFFIX})"
            )
        return (VariantSettings(MAIN, DEFAULT_WEIGHT, version=model),)
    variants, found = read_variants(model, project_dir, prefix, capacity["provisioned_concurrency"])
    for suffix, problem in found.items():
        problems.add(f"model{suffix}", problem)
    # Indexes match the config's only when every entry was an object.
    for index, variant in enumerate(variants if not found else ()):
        if variant.memory_mb is not None:
            memory = serverless_problems(**(dict(capacity) | {"memory_mb": variant.memory_mb}))
            problems.add(f"model[{index}].serverlessMemoryMb", memory.get("memory_mb"))
    return variants
