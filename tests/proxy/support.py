"""Builders and fakes for the proxy tests: payload 2.0 events, a Lambda context, a fake
clock, a scripted SageMaker Runtime client, the proxy's log lines and real photos."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.response import StreamingBody

from machine.proxy_stores import LOCAL_STORES
from proxy.access import Access
from proxy.app import PredictProxy
from proxy.config import ProxyConfig
from proxy.logs import configure_logging
from proxy.metrics import EmfMetrics

ENDPOINT = "image-classifier-dev"
API_HOST = "abc123defg.execute-api.eu-west-1.amazonaws.com"
# What the stack generates: random, URL-safe, long. Tests look for it in every log line.
ORIGIN_SECRET = "Zq3v9Xb1LkP0sW7tYc2NfR8mHd5GjA4eUo6iTx_-"


def http_event(
    body: bytes | str | None,
    content_type: str | None = "image/jpeg",
    *,
    method: str = "POST",
    base64_encoded: bool | None = None,
    headers: dict[str, str] | None = None,
    request_id: str = "JKJaXmPLvHcESHA=",
    path: str = "/predict",
) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event, as the AWS documentation shows it.

    Bytes are base64-encoded (what API Gateway does for binary media types); a str body is
    passed as text unless `base64_encoded` says otherwise. `path` is the route's: `/predict`
    on the execute-api URL of old, `/api/predict` as CloudFront forwards it.
    """
    if isinstance(body, bytes):
        text: str | None = base64.b64encode(body).decode("ascii")
        encoded = True if base64_encoded is None else base64_encoded
    else:
        text = body
        encoded = bool(base64_encoded)
    all_headers = {
        "accept": "*/*",
        "accept-encoding": "gzip, deflate, br",
        "content-length": str(len(body or b"")),
        "host": API_HOST,
        "origin": "https://d1234abcd.cloudfront.net",
        "user-agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "x-amzn-trace-id": "Root=1-5e66d96f-7491f09xmpl79d18acf3d050",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if content_type is not None:
        all_headers["content-type"] = content_type
    all_headers.update(headers or {})
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123defg",
            "domainName": API_HOST,
            "domainPrefix": "abc123defg",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
            },
            "requestId": request_id,
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "21/Nov/2026:05:16:23 +0000",
            "timeEpoch": 1795238183220,
        },
        "isBase64Encoded": encoded,
    }
    if text is not None:
        event["body"] = text
    return event


def json_event(document: Any, **kwargs: Any) -> dict[str, Any]:
    return http_event(json.dumps(document), "application/json", **kwargs)


def via_cloudfront(event: dict[str, Any], secret: str = ORIGIN_SECRET) -> dict[str, Any]:
    """`event` as CloudFront forwards it to the HTTP API: with the origin header and what
    CloudFront itself adds (its `via`, the viewer's address first in `x-forwarded-for`)."""
    headers = event["headers"]
    headers["x-origin-verify"] = secret
    headers["via"] = "2.0 3f5a1b2c4d6e8f0a.cloudfront.net (CloudFront)"
    headers["x-amz-cf-id"] = "Y2xvdWRmcm9udC1yZXF1ZXN0LWlk=="
    headers["x-forwarded-for"] = "203.0.113.7, 130.176.0.10"
    return event


class FakeClock:
    """`clock` and `sleep` for the invoker: time passes only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class LambdaContext:
    """The parts of the Lambda context object the proxy reads; time left follows `clock`."""

    clock: Callable[[], float]
    timeout_ms: int = 29_000
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.timeout_ms - (self.clock() - self.started) * 1000))


@dataclass
class Hang:
    """The endpoint never answers: the call lasts its whole read timeout."""


class ScriptedRuntime:
    """A `sagemaker-runtime` client (and the factory of clients) playing a script.

    Each entry is bytes (a success), an exception to raise, or `Hang()`. Each call takes
    `latency` seconds of fake time, or is cut at its read timeout as botocore would.
    """

    def __init__(self, clock: FakeClock, script: list[Any], latency: float = 0.05) -> None:
        self.clock = clock
        self.script = list(script)
        self.latency = latency
        self.read_timeouts: list[float] = []
        self.calls: list[dict[str, Any]] = []
        self._timeout = 0.0

    def __call__(self, read_timeout: float) -> ScriptedRuntime:
        self._timeout = read_timeout
        return self

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        self.read_timeouts.append(self._timeout)
        outcome = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(outcome, Hang) or self.latency > self._timeout:
            self.clock.now += self._timeout
            raise ReadTimeoutError(endpoint_url=f"https://runtime.sagemaker/{ENDPOINT}")
        self.clock.now += self.latency
        if isinstance(outcome, BaseException):
            raise outcome
        return {"Body": StreamingBody(io.BytesIO(outcome), len(outcome))}


def client_error(code: str, status: int, message: str = "", **modeled: Any) -> ClientError:
    """What botocore raises for a SageMaker Runtime error response."""
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message or code},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "7f2c1b9e-req"},
        **modeled,
    }
    if message:
        response["Message"] = message
    return ClientError(response, "InvokeEndpoint")


def model_error(status: int, code: str | None, message: str, traceback: bool = True) -> ClientError:
    """A `ModelError` carrying the handler's body, as serving.serve and SageMaker send it."""
    original = (
        json.dumps({"error": {"code": code, "message": message}}) if code is not None else message
    )
    if traceback:
        original += '\nTraceback (most recent call last):\n  File "inference.py", line 1'
    return client_error(
        "ModelError",
        424,
        f'Received client error ({status}) from primary with message "{original}".',
        OriginalStatusCode=status,
        OriginalMessage=original,
        LogStreamArn="arn:aws:logs:eu-west-1:123456789012:log-group:/aws/sagemaker/Endpoints/x",
    )


def prediction_payload(top1: float = 0.71, version: str = "3f9a1c2b") -> bytes:
    rest = (1.0 - top1) / 4
    labels = ["tabby", "tiger cat", "Egyptian cat", "lynx", "Persian cat"]
    predictions = [
        {"label": label, "index": 281 + i, "probability": top1 if i == 0 else rest}
        for i, label in enumerate(labels)
    ]
    model = {"name": "mobilenet_v2", "version": version, "weights": "IMAGENET1K_V2"}
    return json.dumps({"predictions": predictions, "model": model}).encode()


# The EMF timestamp of every metrics line in these tests (Unix ms).
METRICS_EPOCH = 1_772_366_400.0
SERVICE = "image-classifier-dev-proxy"


def build_proxy(
    runtime: Any,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    *,
    store: Any = None,
    labels: Any = None,
    rng: Any = None,
    wall_clock: Callable[[], float] | None = None,
    **config: Any,
) -> PredictProxy:
    settings = ProxyConfig(endpoint_name=ENDPOINT, **{"metrics_service": SERVICE, **config})
    return PredictProxy.create(
        settings,
        runtime,
        # The local runtime's stores, for an `api_keys_file`, as it supplies them.
        access=Access.from_config(settings, clock, local=LOCAL_STORES),
        store=store,
        labels=labels,
        rng=rng,
        **({"wall_clock": wall_clock} if wall_clock is not None else {}),
        metrics=EmfMetrics(settings.metrics_service, clock=lambda: METRICS_EPOCH),
        clock=clock,
        sleep=sleep,
        jitter=lambda: 0.5,
    )


class LogLines:
    """The proxy's log from now on, configured as the handler does it but into memory."""

    def __init__(self, level: str = "INFO") -> None:
        self.stream = io.StringIO()
        configure_logging(level, self.stream)

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """Each line parsed: every line must be one JSON object."""
        return [json.loads(line) for line in self.text.splitlines()]


def body_of(response: dict[str, Any]) -> dict[str, Any]:
    assert response["headers"]["content-type"] == "application/json"
    assert response["isBase64Encoded"] is False
    return json.loads(response["body"])
