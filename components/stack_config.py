"""The stack's configuration, read and validated in one place before any resource exists.

Every problem is reported at once, each under the config key to change, as one
`StackConfigError` (a `pulumi.RunError`: the CLI prints the message, not a traceback).
The defaults equal those declared in `Pulumi.yaml` (a test keeps them in step).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pulumi

from components.inference_endpoint import (
    ServerlessConfig,
    ecr_repository_arn,
    serverless_problems,
)
from components.proxy_api import LAMBDA_MEMORY_MB, LAMBDA_TIMEOUT_SECONDS
from components.static_site import PRICE_CLASSES

LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557}
    | {2922, 3288, 3653}
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LEAVE_OUT_CHOICES = frozenset({"responseHeadersPolicy"})
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
SERVERLESS_KEYS = {
    "memory_mb": "serverlessMemoryMb",
    "max_concurrency": "serverlessMaxConcurrency",
    "provisioned_concurrency": "serverlessProvisionedConcurrency",
}

T = TypeVar("T")


class StackConfigError(pulumi.RunError):
    """The stack's config is invalid; the message names every key to fix."""


@dataclass(frozen=True)
class StackSettings:
    project: str
    stack: str
    region: str
    model_archive: Path
    image_uri: str | None
    serverless: ServerlessConfig
    rollout_timeout_seconds: int
    lambda_memory_mb: int
    lambda_timeout_seconds: int
    throttle_rate_limit: float
    throttle_burst_limit: int
    log_retention_days: int
    log_level: str
    price_class: str
    wait_for_invalidation: bool
    monitoring: bool
    alarm_email: str | None
    leave_out: frozenset[str]

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


class _Reader:
    """Reads keys, collecting every problem instead of stopping at the first."""

    def __init__(self, config: pulumi.Config) -> None:
        self.config = config
        self.problems: list[str] = []

    def read(self, getter: Callable[[str], T | None], key: str, default: T) -> T:
        try:
            value = getter(key)
        except pulumi.ConfigTypeError as error:
            self.problems.append(f"{key}: {error}")
            return default
        return default if value is None else value

    def check(self, ok: bool, key: str, message: str) -> None:
        if not ok:
            self.problems.append(f"{key}: {message}")


def load_settings(project_dir: Path) -> StackSettings:
    reader = _Reader(pulumi.Config())
    config = reader.config
    region = pulumi.Config("aws").get("region") or ""
    reader.check(
        bool(region), "aws:region", "set it, e.g. `pulumi config set aws:region eu-west-1`"
    )

    archive = reader.read(config.get, "modelArchive", "build/model.tar.gz")
    image_uri = reader.read(config.get, "imageUri", "") or None
    if image_uri is not None:
        try:
            ecr_repository_arn(image_uri)
        except ValueError as error:
            reader.problems.append(f"imageUri: {error}")

    capacity = {
        "memory_mb": reader.read(config.get_int, "serverlessMemoryMb", 2048),
        "max_concurrency": reader.read(config.get_int, "serverlessMaxConcurrency", 5),
        "provisioned_concurrency": reader.read(
            config.get_int, "serverlessProvisionedConcurrency", 0
        ),
    }
    for field_name, message in serverless_problems(**capacity).items():
        reader.problems.append(f"{SERVERLESS_KEYS[field_name]}: {message}")

    rollout_minutes = reader.read(config.get_int, "rolloutTimeoutMinutes", 60)
    reader.check(1 <= rollout_minutes <= 1440, "rolloutTimeoutMinutes", "must be 1-1440")
    lambda_memory = reader.read(config.get_int, "lambdaMemoryMb", 256)
    reader.check(
        LAMBDA_MEMORY_MB[0] <= lambda_memory <= LAMBDA_MEMORY_MB[1],
        "lambdaMemoryMb",
        f"{lambda_memory} is out of range {LAMBDA_MEMORY_MB[0]}-{LAMBDA_MEMORY_MB[1]}",
    )
    lambda_timeout = reader.read(config.get_int, "lambdaTimeoutSeconds", 30)
    reader.check(
        LAMBDA_TIMEOUT_SECONDS[0] <= lambda_timeout <= LAMBDA_TIMEOUT_SECONDS[1],
        "lambdaTimeoutSeconds",
        f"{lambda_timeout} is out of range 1-30 (the HTTP API gives up after 30 s)",
    )
    rate = reader.read(config.get_float, "throttleRateLimit", 10.0)
    reader.check(rate > 0, "throttleRateLimit", f"{rate} must be above 0 requests per second")
    burst = reader.read(config.get_int, "throttleBurstLimit", 20)
    reader.check(burst >= 1, "throttleBurstLimit", f"{burst} must be at least 1")
    retention = reader.read(config.get_int, "logRetentionDays", 30)
    reader.check(
        retention in LOG_RETENTION_DAYS,
        "logRetentionDays",
        f"{retention} is not a value CloudWatch accepts ({sorted(LOG_RETENTION_DAYS)})",
    )
    log_level = reader.read(config.get, "logLevel", "INFO").upper()
    reader.check(log_level in LOG_LEVELS, "logLevel", f"must be one of {', '.join(LOG_LEVELS)}")
    price_class = reader.read(config.get, "priceClass", "PriceClass_100")
    reader.check(
        price_class in PRICE_CLASSES, "priceClass", f"must be one of {', '.join(PRICE_CLASSES)}"
    )
    wait = reader.read(config.get_bool, "waitForInvalidation", False)
    monitoring = reader.read(config.get_bool, "monitoring", True)
    alarm_email = reader.read(config.get, "alarmEmail", "").strip() or None
    reader.check(
        alarm_email is None or EMAIL.fullmatch(alarm_email) is not None,
        "alarmEmail",
        f"{alarm_email!r} is not an email address",
    )
    reader.check(
        monitoring or alarm_email is None,
        "alarmEmail",
        "is set but monitoring is false; no alarm would ever reach it",
    )
    leave_out = _leave_out(reader)

    if reader.problems:
        listed = "\n".join(f"  - {problem}" for problem in reader.problems)
        raise StackConfigError(
            f"invalid config for stack {pulumi.get_stack()!r}; nothing was created:\n{listed}"
        )
    if leave_out:
        pulumi.log.warn(
            f"leaveOut={sorted(leave_out)}: this stack is for emulator tests only and lacks "
            "security features a real deployment needs. Never set leaveOut on a real stack."
        )
    return StackSettings(
        project=pulumi.get_project(),
        stack=pulumi.get_stack(),
        region=region,
        model_archive=project_dir / archive,
        image_uri=image_uri,
        serverless=ServerlessConfig(**capacity),
        rollout_timeout_seconds=rollout_minutes * 60,
        lambda_memory_mb=lambda_memory,
        lambda_timeout_seconds=lambda_timeout,
        throttle_rate_limit=rate,
        throttle_burst_limit=burst,
        log_retention_days=retention,
        log_level=log_level,
        price_class=price_class,
        wait_for_invalidation=wait,
        monitoring=monitoring,
        alarm_email=alarm_email,
        leave_out=leave_out,
    )


def _leave_out(reader: _Reader) -> frozenset[str]:
    value: Any = reader.read(reader.config.get_object, "leaveOut", [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        reader.problems.append(f"leaveOut: must be a list of names, got {value!r}")
        return frozenset()
    unknown = sorted(set(value) - LEAVE_OUT_CHOICES)
    reader.check(
        not unknown,
        "leaveOut",
        f"{unknown} cannot be left out; the only accepted value is responseHeadersPolicy "
        "(for emulator test stacks only)",
    )
    return frozenset(value) & LEAVE_OUT_CHOICES
