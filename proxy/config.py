"""The proxy's configuration: environment variables only, validated once at cold start."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.log_levels import DEFAULT_LOG_LEVEL, LOG_LEVELS
from shared.variants import MAIN

if TYPE_CHECKING:
    from proxy.variants import Variants

# SageMaker Serverless refuses request payloads above 4 MB; a limit above it could only fail
# later and less clearly.
SAGEMAKER_PAYLOAD_CAP = 4 * 1024 * 1024

DEFAULT_MAX_IMAGE_BYTES = 3 * 1024 * 1024
DEFAULT_REVIEW_THRESHOLD = 0.93
DEFAULT_MAX_ATTEMPTS = 4
DEFAULT_READ_TIMEOUT = 20.0
DEFAULT_CONNECT_TIMEOUT = 1.0

# How long the proxy trusts its copy of the API keys. The bound keeps the revocation delay
# what docs/api.md#revocation-delay says (a failing store doubles it).
DEFAULT_API_KEYS_CACHE_SECONDS = 30.0
MAX_API_KEYS_CACHE_SECONDS = 30.0

ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
"""The rule SageMaker itself applies to endpoint names (whole, `fullmatch`)."""
# A header value CloudFront can send and API Gateway passes on unchanged: visible ASCII.
_ORIGIN_SECRET = re.compile(r"^[\x21-\x7e]+$")
MIN_ORIGIN_SECRET_LENGTH = 32
MAX_ORIGIN_SECRET_LENGTH = 256
# An SSM Parameter Store hierarchy: /segment/segment..., at most 15 levels with the key's
# name, and no first segment starting with "aws" or "ssm" (reserved by SSM).
_SSM_PATH = re.compile(r"^(/[a-zA-Z0-9_.-]+){1,14}$")
MAX_SSM_PATH_LENGTH = 900
# DynamoDB's rule for table names.
_TABLE_NAME = re.compile(r"^[a-zA-Z0-9_.-]{3,255}$")
DEFAULT_METRICS_SERVICE = "image-classifier"
MAX_METRICS_SERVICE_LENGTH = 1024
"""The metrics' `Service` dimension outside Lambda (which names its function in
AWS_LAMBDA_FUNCTION_NAME)."""


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
    # Never in a repr, so never in a log line or a traceback's locals.
    origin_secret: str | None = field(default=None, repr=False)
    origin_secret_previous: str | None = field(default=None, repr=False)
    """The secret CloudFront sent before the last rotation, still admitted."""
    api_keys_path: str | None = None
    api_keys_file: str | None = None
    api_keys_cache_seconds: float = DEFAULT_API_KEYS_CACHE_SECONDS
    variants: Variants | None = None
    """From VARIANTS; None: one variant, `main`, on `endpoint_name` (see `variant_set`)."""
    predictions_table: str | None = None
    predictions_file: str | None = None
    model_labels_dir: str | None = None
    metrics_service: str = DEFAULT_METRICS_SERVICE

    @property
    def variant_set(self) -> Variants:
        """The variants that share the requests."""
        from proxy.variants import Variant, Variants

        if self.variants is not None:
            return self.variants
        return Variants((Variant(MAIN, 1, self.endpoint_name),))

    @property
    def records_predictions(self) -> bool:
        """Whether predictions are recorded (and feedback on them is taken)."""
        return self.predictions_table is not None or self.predictions_file is not None

    @property
    def origin_secrets(self) -> tuple[str, ...]:
        """The secrets the origin header may carry: the current one, then the previous."""
        return tuple(
            secret
            for secret in (self.origin_secret, self.origin_secret_previous)
            if secret is not None
        )

    @property
    def origin_check(self) -> bool:
        """Whether requests must carry the origin header (off only where ORIGIN_SECRET is unset)."""
        return self.origin_secret is not None

    @property
    def api_keys(self) -> bool:
        """Whether a valid `x-api-key` admits a request that lacks the origin header."""
        return self.api_keys_path is not None or self.api_keys_file is not None


def ssm_path_problem(path: str) -> str | None:
    """Why `path` cannot be an SSM Parameter Store path for API keys, or None."""
    if len(path) > MAX_SSM_PATH_LENGTH or not _SSM_PATH.match(path):
        return (
            "must be an SSM parameter path such as /image-classifier-dev/api-keys: segments of "
            "letters, digits, '_', '.' and '-', each after a '/', no trailing '/'"
        )
    if path[1:4].lower() in ("aws", "ssm"):
        return "may not start with /aws or /ssm (reserved by SSM)"
    return None


def _api_keys_source(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """`API_KEYS_PATH` (SSM) or `API_KEYS_FILE` (local), at most one of them."""
    api_keys_path = environ.get("API_KEYS_PATH", "").strip() or None
    api_keys_file = environ.get("API_KEYS_FILE", "").strip() or None
    if api_keys_path is not None:
        problem = ssm_path_problem(api_keys_path)
        if problem:
            raise ConfigError(f"API_KEYS_PATH={api_keys_path!r} {problem}")
        if api_keys_file is not None:
            raise ConfigError(
                "API_KEYS_PATH and API_KEYS_FILE are both set: the keys live in SSM (the cloud) "
                "or in a local file, not both"
            )
    return api_keys_path, api_keys_file


def _predictions_store(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """`PREDICTIONS_TABLE` (DynamoDB) or `PREDICTIONS_FILE` (SQLite), at most one of them."""
    predictions_table = environ.get("PREDICTIONS_TABLE", "").strip() or None
    predictions_file = environ.get("PREDICTIONS_FILE", "").strip() or None
    if predictions_table is not None:
        if not _TABLE_NAME.match(predictions_table):
            raise ConfigError(
                f"PREDICTIONS_TABLE={predictions_table!r} is not a DynamoDB table name (3 to "
                "255 letters, digits, '_', '.' and '-')"
            )
        if predictions_file is not None:
            raise ConfigError(
                "PREDICTIONS_TABLE and PREDICTIONS_FILE are both set: predictions are recorded "
                "in DynamoDB (the cloud) or in a local SQLite file, not both"
            )
    return predictions_table, predictions_file


def load_config(environ: Mapping[str, str]) -> ProxyConfig:
    """Read and check every variable, raising `ConfigError` on the first bad one."""
    variants = _variants(environ)
    endpoint = environ.get("SAGEMAKER_ENDPOINT_NAME", "").strip()
    if not endpoint and variants is not None:
        # VARIANTS alone: the name is only the default of the logs' `endpoint` key.
        endpoint = variants.variants[0].endpoint
    if not endpoint:
        raise ConfigError(
            "SAGEMAKER_ENDPOINT_NAME is required: set it to the name of the SageMaker "
            "endpoint to invoke (or VARIANTS to share the requests among several)"
        )
    if not ENDPOINT_NAME.fullmatch(endpoint):
        raise ConfigError(
            f"SAGEMAKER_ENDPOINT_NAME={endpoint!r} is not a valid SageMaker endpoint name "
            "(letters, digits and hyphens, at most 63 characters)"
        )
    log_level = environ.get("LOG_LEVEL", DEFAULT_LOG_LEVEL).strip().upper()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL={log_level!r} must be one of {', '.join(LOG_LEVELS)}")
    api_keys_path, api_keys_file = _api_keys_source(environ)
    predictions_table, predictions_file = _predictions_store(environ)
    origin_secret = _origin_secret("ORIGIN_SECRET", environ.get("ORIGIN_SECRET", ""))
    previous_secret = _origin_secret(
        "ORIGIN_SECRET_PREVIOUS", environ.get("ORIGIN_SECRET_PREVIOUS", "")
    )
    if previous_secret is not None and origin_secret is None:
        raise ConfigError(
            "ORIGIN_SECRET_PREVIOUS is set but ORIGIN_SECRET is not: the previous secret of "
            "a rotation is admitted only beside the current one"
        )
    service = environ.get("AWS_LAMBDA_FUNCTION_NAME", "").strip() or DEFAULT_METRICS_SERVICE
    if len(service) > MAX_METRICS_SERVICE_LENGTH:
        raise ConfigError(
            f"AWS_LAMBDA_FUNCTION_NAME has {len(service)} characters; a metrics dimension "
            f"holds at most {MAX_METRICS_SERVICE_LENGTH}"
        )
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
        origin_secret=origin_secret,
        origin_secret_previous=previous_secret,
        api_keys_path=api_keys_path,
        api_keys_file=api_keys_file,
        api_keys_cache_seconds=_number(
            environ,
            "API_KEYS_CACHE_SECONDS",
            float,
            DEFAULT_API_KEYS_CACHE_SECONDS,
            1.0,
            MAX_API_KEYS_CACHE_SECONDS,
        ),
        variants=variants,
        predictions_table=predictions_table,
        predictions_file=predictions_file,
        model_labels_dir=environ.get("MODEL_LABELS_DIR", "").strip() or None,
        metrics_service=service,
    )


def _variants(environ: Mapping[str, str]) -> Variants | None:
    """The variants of `VARIANTS`, or None when it is unset (one variant on the endpoint)."""
    from proxy.variants import parse_variants

    raw = environ.get("VARIANTS", "").strip()
    return parse_variants(raw) if raw else None


def _origin_secret(name: str, raw: str) -> str | None:
    """The secret CloudFront sends (variable `name`), or None. Errors never quote the value."""
    secret = raw.strip()
    if not secret:
        return None
    if not _ORIGIN_SECRET.match(secret):
        raise ConfigError(
            f"{name} must be visible ASCII characters without spaces (a header value)"
        )
    if not MIN_ORIGIN_SECRET_LENGTH <= len(secret) <= MAX_ORIGIN_SECRET_LENGTH:
        raise ConfigError(
            f"{name} has {len(secret)} characters; it must have {MIN_ORIGIN_SECRET_LENGTH} "
            f"to {MAX_ORIGIN_SECRET_LENGTH} (the stack generates a random one)"
        )
    return secret


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
