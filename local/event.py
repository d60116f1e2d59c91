"""Translate between HTTP and API Gateway HTTP API payload format 2.0.

The shapes follow the AWS documentation for Lambda proxy integrations of HTTP APIs:
lower-case header names, duplicate headers joined with commas, cookies in their own
list, and a body that is base64-encoded unless it is text.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

TEXT_TYPES = (
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-www-form-urlencoded",
)
"""Media types (besides text/*, +json and +xml) API Gateway hands over as plain text."""

# API Gateway owns framing: a backend's headers of these kinds are dropped. Others pass,
# CORS headers too: an HTTP API without a CORS configuration (the stack's) sends them as is.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True)
class HttpRequest:
    """The parts of an incoming HTTP request that API Gateway passes to Lambda."""

    method: str
    path: str
    query_string: str
    headers: Iterable[tuple[str, str]]
    body: bytes
    source_ip: str
    host: str
    api_id: str = "local"
    stage: str = "$default"
    received: float | None = None
    """When the request arrived (Unix seconds), before its body: API Gateway's `timeEpoch`,
    from which the proxy counts the HTTP API's 30 s. None: now."""


@dataclass
class HttpResponse:
    """What API Gateway sends back to the client for a Lambda result."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def _is_text(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return (
        media_type.startswith("text/")
        or media_type in TEXT_TYPES
        or media_type.endswith(("+json", "+xml"))
    )


def build_event(request: HttpRequest, route_key: str) -> dict:
    """Return the HTTP API 2.0 event API Gateway would send to the Lambda integration."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value

    now = time.time() if request.received is None else request.received
    event: dict = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": request.api_id,
            "domainName": request.host,
            "domainPrefix": request.host.split(".", 1)[0],
            "http": {
                "method": request.method.upper(),
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": _api_request_id(),
            "routeKey": route_key,
            "stage": request.stage,
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    query: dict[str, str] = {}
    for name, value in parse_qsl(request.query_string, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    if query:
        event["queryStringParameters"] = query
    if request.body:
        if _is_text(headers.get("content-type", "")):
            with contextlib.suppress(UnicodeDecodeError):
                event["body"] = request.body.decode("utf-8")
        if "body" not in event:
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def _api_request_id() -> str:
    # API Gateway's own request ids look like "JKJaXmPLvHcESHA="; any unique token will do.
    return base64.b64encode(uuid.uuid4().bytes[:10]).decode("ascii")


def to_http_response(result: object) -> HttpResponse:
    """Interpret a Lambda result the way HTTP API payload 2.0 does.

    A dict with `statusCode` is a full response; anything else that serialises to JSON
    is a 200 `application/json` body, as API Gateway infers it.
    """
    if not (isinstance(result, Mapping) and "statusCode" in result):
        body = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("content-type", "application/json")], body.encode())

    headers = [
        (name.lower(), str(value))
        for name, value in (result.get("headers") or {}).items()
        if name.lower() not in _FRAMING
    ]
    headers.extend(("set-cookie", cookie) for cookie in result.get("cookies") or ())
    raw = result.get("body") or ""
    content = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    return HttpResponse(int(result["statusCode"]), headers, content)
