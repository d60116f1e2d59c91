"""The proxy's configuration: environment variables only, validated once at cold start."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# SageMaker Serverless refuses request payloads above 4 MB; a limit above it could only fail
# later and less clearly.
SAGEMAKER_PAYLOAD_CAP = 4 * 1024 * 1024

DEFAULT_MAX_IMAGE_BYTES = 3 * 1024 * 1024
DEFAULT_REVIEW_THRESHOLD = 0.93
DEFAULT_LOG_LEVEL = "INFO"
DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_READ_TIMEOUT = 20.0
DEFAULT_CONNECT_TIMEOUT = 1.0

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# The rule SageMaker itself applies to endpoint names.
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class ConfigError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


@dataclass(frozen=True)
class ProxyConfig:
    endpoint_name: str
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    review_threshold: float = DEFAULT_REVIEW_THRESHOLD
    log_level: str = DEFAULT_LOG_LEVEL
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    read_timeout: float = DEFAULT_READ_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT


def load_config(environ: Mapping[str, str]) -> ProxyConfig:
    """Read and check every variable, raising `ConfigError` on the first bad one."""
    endpoint = environ.get("SAGEMAKER_ENDPOINT_NAME", "").strip()
    if not endpoint:
        raise ConfigError(
            "SAGEMAKER_ENDPOINT_NAME is required: set it to the name of the SageMaker "
            "endpoint to invoke"
        )
    if not _ENDPOINT_NAME.match(endpoint):
        raise ConfigError(
            f"SAGEMAKER_ENDPOINT_NAME={endpoint!r} is not a valid SageMaker endpoint name "
            "(letters, digits and hyphens, at most 63 characters)"
        )
    log_level = environ.get("LOG_LEVEL", DEFAULT_LOG_LEVEL).strip().upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL={log_level!r} must be one of {', '.join(LOG_LEVELS)}")
    return ProxyConfig(
        endpoint_name=endpoint,
        max_image_bytes=_number(
            environ, "MAX_IMAGE_BYTES", int, DEFAULT_MAX_IMAGE_BYTES, 1, SAGEMAKER_PAYLOAD_CAP
        ),
        review_threshold=_number(
            environ, "REVIEW_THRESHOLD", float, DEFAULT_REVIEW_THRESHOLD, 0.0, 1.0
        ),
        log_level=log_level,
        max_attempts=_number(environ, "SAGEMAKER_MAX_ATTEMPTS", int, DEFAULT_MAX_ATTEMPTS, 1, 10),
        read_timeout=_number(
            environ, "SAGEMAKER_READ_TIMEOUT_SECONDS", float, DEFAULT_READ_TIMEOUT, 1.0, 900.0
        ),
        connect_timeout=_number(
            environ, "SAGEMAKER_CONNECT_TIMEOUT_SECONDS", float, DEFAULT_CONNECT_TIMEOUT, 0.1, 60.0
        ),
    )


def _number(
    environ: Mapping[str, str],
    name: str,
    kind: type[int] | type[float],
    default: float,
    low: float,
    high: float,
) -> Any:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {_article(kind)}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} must be between {low} and {high}")
    return value


def _article(kind: type) -> str:
    return "an integer" if kind is int else "a number"
