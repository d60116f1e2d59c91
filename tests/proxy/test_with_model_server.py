"""The whole request path: `proxy.handler` -> botocore -> the real `serving.serve`.

The handler is imported as Lambda would import it, with `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`
pointing the stock SageMaker Runtime client at the local model server.
"""

import base64
import importlib
import socket
import struct
import sys
import threading
import time
import zlib

import pytest

from tests.proxy.photos import encoded, with_alpha
from tests.proxy.support import ENDPOINT, LambdaContext, body_of, http_event, json_event

pytestmark = pytest.mark.slow


def import_handler(monkeypatch, endpoint_url, **environ):
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = {
        "SAGEMAKER_ENDPOINT_NAME": ENDPOINT,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        **environ,
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    sys.modules.pop("proxy.handler", None)
    module = importlib.import_module("proxy.handler")
    sys.modules.pop("proxy.handler", None)
    return module.handler


@pytest.fixture(scope="module")
def handler(model_server_url):
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield import_handler(monkeypatch, model_server_url)


def call(handler, event, timeout_ms=29_000):
    response = handler(event, LambdaContext(time.monotonic, timeout_ms))
    return response, body_of(response)


REAL_PHOTOS = [
    pytest.param(lambda: encoded("chelsea"), "image/jpeg", id="chelsea-jpeg"),
    pytest.param(lambda: encoded("coffee", "PNG"), "image/png", id="coffee-png"),
    pytest.param(lambda: encoded("astronaut", "WEBP"), "image/webp", id="astronaut-webp"),
    pytest.param(lambda: encoded("china", "GIF"), "image/gif", id="china-gif"),
    pytest.param(lambda: encoded("camera"), "image/jpeg", id="camera-grayscale-jpeg"),
    pytest.param(lambda: with_alpha("coffee"), "image/png", id="coffee-rgba-png"),
    pytest.param(lambda: encoded("chelsea"), "application/octet-stream", id="octet-stream"),
]


@pytest.mark.parametrize(("make", "content_type"), REAL_PHOTOS)
def test_real_photos_as_raw_bodies(handler, make, content_type):
    response, body = call(handler, http_event(make(), content_type))
    assert response["statusCode"] == 200, body
    assert len(body["predictions"]) == 5
    probabilities = [p["probability"] for p in body["predictions"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert body["model"]["name"] == "mobilenet_v2"
    assert body["model"]["weights"] == "random"
    # Untrained weights are never confident: everything goes to review.
    assert body["needs_review"] is True
    assert body["request_id"] == response["headers"]["x-request-id"]


@pytest.mark.parametrize("data_url", [False, True])
def test_real_photos_as_json(handler, data_url):
    text = base64.b64encode(encoded("china")).decode()
    image = f"data:image/jpeg;base64,{text}" if data_url else text
    response, body = call(handler, json_event({"image": image}))
    assert response["statusCode"] == 200, body
    assert body["model"]["weights"] == "random"


def png_header(width, height):
    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


BAD_INPUTS = [
    # Refused by the proxy before SageMaker.
    pytest.param(http_event(None), 400, "empty_body", id="empty"),
    pytest.param(http_event("%%%", base64_encoded=True), 400, "invalid_base64", id="base64"),
    pytest.param(json_event({"img": "x"}), 400, "missing_image", id="json-no-image"),
    pytest.param(http_event("{", "application/json"), 400, "invalid_json", id="json-broken"),
    pytest.param(http_event(None, method="GET"), 405, "method_not_allowed", id="get"),
    pytest.param(
        http_event(b"\xff\xd8\xff" + bytes(3 * 1024 * 1024)), 413, "payload_too_large", id="big"
    ),
    pytest.param(http_event("hi", "text/plain"), 415, "unsupported_media_type", id="text"),
    pytest.param(
        http_event(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"),
        415,
        "unsupported_image_format",
        id="heic",
    ),
    pytest.param(http_event(b"just some bytes"), 422, "not_an_image", id="not-an-image"),
    # Refused by the model handler, passed on by the proxy.
    pytest.param(http_event(encoded("chelsea")[:4000]), 400, "corrupt_image", id="truncated-jpeg"),
    pytest.param(
        http_event(b"\xff\xd8\xff\xe0" + bytes(2000)), 400, "corrupt_image", id="corrupt-jpeg"
    ),
    pytest.param(
        http_event(png_header(20_000, 16_000), "image/png"),
        413,
        "image_too_large",
        id="decompression-bomb",
    ),
    pytest.param(
        http_event(png_header(1, 100_000), "image/png"), 400, "invalid_dimensions", id="absurd"
    ),
]


@pytest.mark.parametrize(("event", "status", "code"), BAD_INPUTS)
def test_every_bad_input_gets_its_4xx(handler, event, status, code):
    response, body = call(handler, event)
    assert (response["statusCode"], body["error"]["code"]) == (status, code), body
    assert body["error"]["message"]
    assert "Traceback" not in response["body"]


def test_nothing_listening_is_a_503_inside_the_budget(monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = import_handler(monkeypatch, f"http://127.0.0.1:{port}")
    started = time.monotonic()
    response, body = call(handler, http_event(encoded("chelsea")), timeout_ms=3_000)
    assert (response["statusCode"], body["error"]["code"]) == (503, "model_unavailable")
    assert response["headers"]["retry-after"] == "5"
    assert time.monotonic() - started < 3.0


def test_a_silent_endpoint_is_a_504_inside_the_budget(monkeypatch):
    """A server that accepts the connection and never answers, with real botocore timeouts."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []
    stop = threading.Event()

    def accept_and_hold():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept_and_hold, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        handler = import_handler(
            monkeypatch,
            f"http://127.0.0.1:{port}",
            SAGEMAKER_READ_TIMEOUT_SECONDS="1",
            SAGEMAKER_CONNECT_TIMEOUT_SECONDS="0.5",
        )
        started = time.monotonic()
        response, body = call(handler, http_event(encoded("chelsea")), timeout_ms=4_000)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()
    assert (response["statusCode"], body["error"]["code"]) == (504, "model_timeout")
    assert len(accepted) >= 2
    assert elapsed < 4.0
