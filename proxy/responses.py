"""HTTP API payload 2.0 responses: JSON bodies, the request id header, never CORS headers.

CORS belongs to the HTTP API's own configuration (it answers preflight and adds the headers);
a Lambda that added them as well would send duplicates, which browsers reject.
"""

from __future__ import annotations

import json
from typing import Any

from proxy.errors import ApiError

_ALLOWED_METHODS = "POST"


def json_response(
    status: int, body: dict[str, Any], request_id: str, extra_headers: dict[str, str] | None = None
) -> dict[str, Any]:
    headers = {
        "content-type": "application/json",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "x-request-id": request_id,
    }
    if extra_headers:
        headers.update(extra_headers)
    return {
        "statusCode": status,
        "headers": headers,
        "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        "isBase64Encoded": False,
    }


def error_response(error: ApiError, request_id: str) -> dict[str, Any]:
    extra: dict[str, str] = {}
    if error.retry_after is not None:
        extra["retry-after"] = str(error.retry_after)
    if error.status == 405:
        extra["allow"] = _ALLOWED_METHODS
    body = {"error": {"code": error.code, "message": error.message}, "request_id": request_id}
    return json_response(error.status, body, request_id, extra)
