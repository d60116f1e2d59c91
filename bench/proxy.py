"""Benchmark of the proxy Lambda: its own overhead per request and its cold start.

    .venv/bin/python -m bench.proxy [--requests 3000] [--cold-runs 7]

Overhead is everything the function does except the SageMaker round trip, for a 200 KB
JPEG in a realistic HTTP API 2.0 event as CloudFront forwards it (`POST /api/predict` with the
origin header): the access check, validation, base64, sniffing, the call through the client,
reading the model's JSON, the response and the log line. It is also measured for a program's
direct call with an API key, once the proxy has the keys in its cache. It is measured twice,
through a bare fake client (the handler's own code) and through a real botocore client whose
HTTP send is answered in-process (adding botocore's serialisation, SigV4 signing of the body
and parsing). Cold start is a fresh interpreter importing the handler module, which validates
the configuration (as deployed: origin secret and API keys on; the key store is read only at
the first request with a key) and creates the client; of that, the proxy's own modules are
timed alone with the botocore modules they import already loaded. The baseline, measured in
the same run on the same inputs, is the naive reference proxy: decode base64, invoke, pass the
JSON on.

Target: overhead p50 < 2 ms.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder would come first on sys.path and its name would hide
# the `proxy` package it measures.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from botocore.awsrequest import AWSResponse  # noqa: E402
from PIL import Image  # noqa: E402

from admin.api_keys import issued, new_key  # noqa: E402
from hosting.origin import API_PATH  # noqa: E402
from local.event import HttpRequest, build_event  # noqa: E402
from local.lambda_context import LambdaContext  # noqa: E402
from machine.api_keys_file import FileKeyStore  # noqa: E402
from machine.proxy_stores import LOCAL_STORES  # noqa: E402
from proxy.access import Access  # noqa: E402
from proxy.app import PredictProxy  # noqa: E402
from proxy.config import load_config  # noqa: E402
from proxy.logs import configure_logging  # noqa: E402
from proxy.sagemaker import RuntimeClients  # noqa: E402
from shared.api import API_KEY_HEADER, ORIGIN_HEADER  # noqa: E402
from shared.stats import percentile  # noqa: E402

TARGET_P50_MS = 2.0
ORIGIN_SECRET = "B3nchOriginSecret" * 3
"""The stack's kind of secret (letters and digits, 48 of them here) in `x-origin-verify`."""
API_HOST = "abc123defg.execute-api.eu-west-1.amazonaws.com"
PREDICT_PATH = f"{API_PATH}/predict"
CLOUDFRONT = {
    ORIGIN_HEADER: ORIGIN_SECRET,
    "via": "2.0 3f5a1b2c4d6e8f0a.cloudfront.net (CloudFront)",
    "x-amz-cf-id": "Y2xvdWRmcm9udC1yZXF1ZXN0LWlk==",
    "x-forwarded-for": "203.0.113.7, 130.176.0.10",
}
"""What CloudFront adds to a request it forwards to the HTTP API."""
# What the proxy imports from botocore, loaded before the proxy's own modules are timed.
BOTOCORE_IMPORTS = "import botocore.config, botocore.exceptions, botocore.session"
IMAGE_BYTES = 200 * 1024
ENVIRONMENT = {
    "SAGEMAKER_ENDPOINT_NAME": "image-classifier-bench",
    "ORIGIN_SECRET": ORIGIN_SECRET,
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}

# The reference design's handler, verbatim in spirit: no validation, no retries, no logs.
NAIVE_PROXY = """
import base64, json, os
import boto3
runtime = boto3.client("sagemaker-runtime")

def handler(event, context):
    image = base64.b64decode(event["body"])
    response = runtime.invoke_endpoint(
        EndpointName=os.environ["SAGEMAKER_ENDPOINT_NAME"],
        ContentType="application/x-image",
        Body=image,
    )
    result = json.loads(response["Body"].read().decode("utf-8"))
    return {"statusCode": 200, "body": json.dumps(result)}
"""


def predict_event(image: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """`POST /api/predict` of a JPEG with `headers`, received now, as API Gateway hands it
    to the function (payload 2.0, as the local runtime's stand-in builds it)."""
    request = HttpRequest(
        method="POST",
        path=PREDICT_PATH,
        query_string="",
        headers=[
            ("content-type", "image/jpeg"),
            ("content-length", str(len(image))),
            ("host", API_HOST),
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64)"),
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
            *headers.items(),
        ],
        body=image,
        source_ip="203.0.113.7",
        host=API_HOST,
    )
    return build_event(request, f"POST {PREDICT_PATH}")


def model_answer(top1: float = 0.71) -> bytes:
    """The model's JSON for a photo of a cat: five predictions and the model."""
    rest = (1.0 - top1) / 4
    labels = ["tabby", "tiger cat", "Egyptian cat", "lynx", "Persian cat"]
    predictions = [
        {"label": label, "index": 281 + i, "probability": top1 if i == 0 else rest}
        for i, label in enumerate(labels)
    ]
    model = {"name": "mobilenet_v2", "version": "3f9a1c2b", "weights": "IMAGENET1K_V2"}
    return json.dumps({"predictions": predictions, "model": model}).encode()


def photo_of_size(target: int) -> bytes:
    """A real photo (scikit-image's astronaut) encoded as a JPEG of about `target` bytes."""
    import skimage.data

    image = Image.fromarray(np.asarray(skimage.data.astronaut())).resize((1024, 1024))
    best = b""
    for quality in range(50, 100):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        if abs(buffer.tell() - target) < abs(len(best) - target):
            best = buffer.getvalue()
    return best


class CannedRuntime:
    """A `sagemaker-runtime` client (and client factory) that answers at once."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer

    def __call__(self, _read_timeout: float) -> CannedRuntime:
        return self

    def invoke_endpoint(self, **_kwargs: Any) -> dict[str, Any]:
        return {"Body": io.BytesIO(self._answer)}


class _RawBody(io.BytesIO):
    def stream(self, **_kwargs: Any) -> Any:
        yield self.read()


def botocore_runtime(answer: bytes) -> RuntimeClients:
    """Real botocore clients whose HTTP send returns `answer` without a network."""
    clients = RuntimeClients(read_timeout=20.0, connect_timeout=1.0)

    def answer_send(request: Any, **_kwargs: Any) -> AWSResponse:
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": "bench"}
        return AWSResponse(request.url, 200, headers, _RawBody(answer))

    clients(20.0).meta.events.register("before-send.sagemaker-runtime", answer_send)
    return clients


def our_handler(
    runtime: Any, environ: dict[str, str] | None = None
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    config = load_config({**os.environ, **(environ or {})})
    # Lambda ships stdout to CloudWatch; here the line is written and thrown away.
    configure_logging(config.log_level, open(os.devnull, "w"))  # noqa: SIM115
    access = Access.from_config(config, local=LOCAL_STORES)
    return PredictProxy.create(config, runtime, access=access).handle


def naive_handler(runtime: Any) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    namespace: dict[str, Any] = {}
    exec(compile(NAIVE_PROXY, "naive_proxy", "exec"), namespace)
    namespace["runtime"] = runtime(20.0)
    return namespace["handler"]


def latencies_ms(
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    new_event: Callable[[], dict[str, Any]],
    n: int,
) -> list[float]:
    """`n` calls of `handler` on one event, received when the calls start (the HTTP API's
    30 s count from then), after a warm-up."""
    event = new_event()
    context = LambdaContext()
    for _ in range(max(50, n // 10)):
        assert handler(event, context)["statusCode"] == 200
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        handler(event, context)
        samples.append((time.perf_counter_ns() - start) / 1e6)
    return samples


def cold_start_ms(
    code: str, runs: int, setup: str = "", env: dict[str, str] | None = None
) -> float:
    """Median wall time, in a fresh interpreter each run, of executing `code` once."""
    probe = (
        f"{setup}\n"
        "import time\n"
        "start = time.perf_counter()\n"
        f"exec({code!r})\n"
        "print((time.perf_counter() - start) * 1000)\n"
    )
    environ = {**os.environ, **ENVIRONMENT, **(env or {})}
    times = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(result.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--cold-runs", type=int, default=7)
    args = parser.parse_args(argv)
    os.environ.update(ENVIRONMENT)

    image = photo_of_size(IMAGE_BYTES)
    key = new_key()

    def event() -> dict[str, Any]:
        return predict_event(image, CLOUDFRONT)

    def keyed() -> dict[str, Any]:
        return predict_event(image, {API_KEY_HEADER: key})

    answer = model_answer()
    print(f"proxy benchmark: {len(image) / 1024:.0f} KB JPEG in a payload 2.0 event")
    print(f"{'':34}{'ours p50':>10}{'p95':>9}{'naive p50':>11}{'ratio':>8}")
    ours_p50 = {}
    with tempfile.TemporaryDirectory() as scratch:
        key_file = os.path.join(scratch, "api-keys.json")
        FileKeyStore(key_file).add(issued("bench", key))
        for name, runtime, request, environ in (
            ("overhead, fake client", lambda: CannedRuntime(answer), event, None),
            ("overhead, botocore client", lambda: botocore_runtime(answer), event, None),
            (
                "  direct, API key (cached)",
                lambda: CannedRuntime(answer),
                keyed,
                {"API_KEYS_FILE": key_file},
            ),
        ):
            ours = latencies_ms(our_handler(runtime(), environ), request, args.requests)
            naive = latencies_ms(naive_handler(runtime()), request, args.requests)
            p50, naive_p50 = percentile(ours, 0.5), percentile(naive, 0.5)
            ours_p50[name] = p50
            print(
                f"{name:34}{p50:>8.3f}ms{percentile(ours, 0.95):>7.3f}ms"
                f"{naive_p50:>9.3f}ms{p50 / naive_p50:>7.2f}x"
            )

    ours_cold = cold_start_ms(
        "import proxy.handler", args.cold_runs, env={"API_KEYS_PATH": "/bench/api-keys"}
    )
    naive_cold = cold_start_ms(NAIVE_PROXY, args.cold_runs)
    modules_cold = cold_start_ms("import proxy.app", args.cold_runs, BOTOCORE_IMPORTS)
    print(
        f"{'cold start (import + client)':34}{ours_cold:>8.1f}ms{'':9}"
        f"{naive_cold:>9.1f}ms{ours_cold / naive_cold:>7.2f}x"
    )
    print(f"{'  of which proxy modules alone':34}{modules_cold:>8.1f}ms")
    p50 = ours_p50["overhead, fake client"]
    keyed_p50 = ours_p50["  direct, API key (cached)"]
    met = max(p50, keyed_p50) < TARGET_P50_MS
    print(
        f"target: handler overhead p50 < {TARGET_P50_MS} ms: {'met' if met else 'MISSED'} "
        f"({p50:.3f} ms; with an API key {keyed_p50:.3f} ms)"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
