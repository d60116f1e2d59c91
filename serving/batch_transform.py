"""SageMaker Batch Transform's side of the container contract, for ``serving.serve``.

SageMaker runs the same image for a transform job with ``SAGEMAKER_BATCH=true`` and, when
the job sets them, ``SAGEMAKER_MAX_PAYLOAD_IN_MB``, ``SAGEMAKER_BATCH_STRATEGY`` and
``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS``; for what the job leaves out it asks
``GET /execution-parameters`` (AWS: "Use Your Own Inference Code with Batch Transform").

A job reads millions of files, and a non-2xx answer fails the job, so under
``SAGEMAKER_BATCH`` a record the model cannot use (its bytes: empty, not an image, corrupt,
too large) answers 200 with the API's error object, plus the status the API would have
answered. What is not the record's fault still fails: the job's content type or accept
(every record would fail the same way) and the model's own 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

BATCH_ENV = "SAGEMAKER_BATCH"
MAX_PAYLOAD_ENV = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
MAX_CONCURRENT_ENV = "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"
# One image is one request (the job's SplitType None); the execution parameters' spelling.
BATCH_STRATEGY = "SINGLE_RECORD"
# CreateTransformJob: MaxPayloadInMB at most 100, and MaxConcurrentTransforms times
# MaxPayloadInMB at most 100 too.
MAX_TRANSFORM_PAYLOAD_MB = 100
MIB = 2**20
# Errors about the job's headers, not the record's bytes: every record would get them.
JOB_ERROR_CODES = frozenset({"unsupported_content_type", "unsupported_accept"})


class BatchSettingError(ValueError):
    """A batch variable SageMaker set is not what the contract allows."""


@dataclass(frozen=True)
class BatchSettings:
    """What the transform job told the container; all off for a real-time endpoint."""

    enabled: bool = False
    max_payload_mb: int | None = None
    max_concurrent: int | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> BatchSettings:
        return cls(
            enabled=environ.get(BATCH_ENV, "").strip().lower() == "true",
            max_payload_mb=_optional_count(environ, MAX_PAYLOAD_ENV),
            max_concurrent=_optional_count(environ, MAX_CONCURRENT_ENV),
        )

    def body_limit(self, server_limit: int) -> int:
        """The largest body to accept: the server's, lowered to the job's payload."""
        if self.max_payload_mb is None:
            return server_limit
        return min(server_limit, self.max_payload_mb * MIB)


def _optional_count(environ: Mapping[str, str], name: str) -> int | None:
    """A whole number, or None when unset or 0 (SageMaker's "not set")."""
    value = environ.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit():
        raise BatchSettingError(f"{name}={value!r} is not a whole number of at least 0")
    return int(value) or None


def execution_parameters(workers: int, body_limit: int) -> dict[str, int | str]:
    """``GET /execution-parameters``: the requests this server runs at once and its body
    limit in MiB, within Batch Transform's 100 MB for one payload and for all in flight."""
    payload_mb = max(1, min(body_limit // MIB, MAX_TRANSFORM_PAYLOAD_MB))
    return {
        "MaxConcurrentTransforms": max(1, min(workers, MAX_TRANSFORM_PAYLOAD_MB // payload_mb)),
        "BatchStrategy": BATCH_STRATEGY,
        "MaxPayloadInMB": payload_mb,
    }


def record_error(status: int, body: bytes) -> bytes | None:
    """The 200 body for a record the model refused (``status``, the handler's JSON error
    ``body``), or None when the error is not the record's fault and must fail."""
    if not 400 <= status < 500:
        return None
    try:
        error = json.loads(body)["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError):
        code, message = None, None
    if not isinstance(code, str) or not isinstance(message, str):
        # The proxy's words for a 4xx without a readable error (docs/api.md).
        code, message = "invalid_image", "The model could not use this image."
    if code in JOB_ERROR_CODES:
        return None
    error = {"code": code, "message": message, "status": status}
    return json.dumps({"error": error}).encode()
