"""Fakes and builders for the batch tests: a SageMaker Runtime client that answers by the
image it is sent, model answers, real photos and the bad files a folder may hold."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.response import StreamingBody

from pipeline.tasks import Classifier
from proxy.sagemaker import EndpointInvoker
from tests.conftest import ROOT
from tests.proxy.photos import encoded
from tests.serving.images import png_declaring

ENDPOINT = "image-classifier-dev"
VERSION = "3f9a1c2b4d5e"
LABELS = ["tabby", "tiger cat", "Egyptian cat", "lynx", "Persian cat", "espresso", "a/b: c?"]


def answer(top1: float, version: str = VERSION, label: str = "tabby") -> bytes:
    """The model's JSON: `label` first with `top1`, four others sharing the rest."""
    others = [name for name in LABELS if name != label][:4]
    rest = (1.0 - top1) / 4
    predictions = [{"label": label, "index": LABELS.index(label), "probability": top1}] + [
        {"label": name, "index": LABELS.index(name), "probability": rest} for name in others
    ]
    model = {"name": "mobilenet_v2", "version": version, "weights": "IMAGENET1K_V2"}
    return json.dumps({"predictions": predictions, "model": model}).encode()


def client_error(code: str, status: int, message: str = "", **modeled: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message or code},
        "ResponseMetadata": {"HTTPStatusCode": status},
        **modeled,
    }
    return ClientError(response, "InvokeEndpoint")


def model_error(status: int, code: str, message: str) -> ClientError:
    """A `ModelError` with the handler's body, as SageMaker and serving.serve send it."""
    original = json.dumps({"error": {"code": code, "message": message}})
    return client_error(
        "ModelError",
        424,
        "Received client error",
        OriginalStatusCode=status,
        OriginalMessage=original,
    )


class FakeRuntime:
    """A `sagemaker-runtime` client and the factory of clients, as `RuntimeClients` is.

    `respond(body, content_type)` says what each call gets: bytes, or an exception raised.
    """

    def __init__(self, respond: Callable[[bytes, str], bytes | Exception]) -> None:
        self.respond = respond
        self.calls: list[dict[str, Any]] = []
        self._session: Any = None

    @property
    def session(self) -> Any:
        """A botocore session, as `RuntimeClients.session` (moto patches its S3 client)."""
        if self._session is None:
            self._session = botocore.session.get_session()
        return self._session

    def __call__(self, read_timeout: float) -> FakeRuntime:
        return self

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        outcome = self.respond(kwargs["Body"], kwargs["ContentType"])
        if isinstance(outcome, Exception):
            raise outcome
        return {"Body": StreamingBody(io.BytesIO(outcome), len(outcome))}


def scripted(*outcomes: bytes | Exception) -> FakeRuntime:
    """Answers in order, the last one again and again."""
    queue = list(outcomes)

    def respond(_body: bytes, _type: str) -> bytes | Exception:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return FakeRuntime(respond)


def classifier(runtime: Any, threshold: float = 0.93, **options: Any) -> Classifier:
    invoker = EndpointInvoker(
        clients=runtime,
        endpoint_name=ENDPOINT,
        max_attempts=options.pop("max_attempts", 2),
        read_timeout=5.0,
        connect_timeout=1.0,
        sleep=lambda _seconds: None,
        jitter=lambda: 0.5,
        **options,
    )
    return Classifier(invoker, threshold)


@cache
def photo(name: str = "chelsea", image_format: str = "JPEG") -> bytes:
    return encoded(name, image_format)


@cache
def truncated_jpeg() -> bytes:
    data = photo("astronaut")
    return data[: len(data) // 2]


def huge_declared_png() -> bytes:
    """A few bytes declaring 100000 x 100000 pixels: refused by the model before decoding."""
    return png_declaring(100_000, 100_000)


def oversized_jpeg(size: int = 3 * 1024 * 1024 + 10) -> bytes:
    """A JPEG signature and more bytes than the API accepts."""
    return b"\xff\xd8\xff\xe0" + bytes(size - 4)


def write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def batch_cli(*args: str) -> subprocess.CompletedProcess:
    """`python -m batch ARGS` as a user runs it, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "batch", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


class QuietHandler(BaseHTTPRequestHandler):
    """A stand-in's request handler: it answers with `send` and logs nothing."""

    def send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """`handler` served on a free loopback port, in threads of its own, until the block
    ends; the block gets its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
