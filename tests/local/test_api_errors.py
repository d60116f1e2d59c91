"""Real HTTP through the local API for every error class the proxy defines, on the site's
one origin (`/api/predict`, as the page and CloudFront call it), with no CORS.

Client errors go through the whole `python -m local` (proxy -> real model server).
SageMaker's own failures (throttling, cold start, missing endpoint, ...) cannot be
provoked from a healthy model server, so a fake SageMaker Runtime plays them, behind the
same local API and the same real proxy handler.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from PIL import Image
from skimage import data
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.process import LocalRuntime, local_runtime
from machine.ports import listen
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

FOREIGN = "https://evil.example"
JPEG_MAGIC = b"\xff\xd8\xff\xe0"


def photo_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(data.chelsea()).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def runtime(model_artifact: Path) -> Iterator[LocalRuntime]:
    with local_runtime(model_artifact) as running:
        yield running


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert message.endswith((".", ")")), message
    assert "Traceback" not in response.text
    if "request_id" in body:
        assert response.headers["x-request-id"] == body["request_id"]
    return body


def post(runtime: LocalRuntime, content: bytes, content_type: str, **headers) -> httpx.Response:
    return httpx.post(
        f"{runtime.api_url}/predict",
        content=content,
        headers={"content-type": content_type, **headers},
        timeout=30,
    )


def as_json(document: object) -> bytes:
    return json.dumps(document).encode()


def test_a_photo_gets_five_predictions_in_both_request_forms(runtime):
    image = photo_jpeg()
    raw = post(runtime, image, "image/jpeg")
    data_url = "data:image/jpeg;base64," + base64.b64encode(image).decode()
    wrapped = post(runtime, as_json({"image": data_url}), "application/json")
    for response in (raw, wrapped):
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["predictions"]) == 5
        assert body["model"]["weights"] == "random"
        assert body["needs_review"] is True
        assert response.headers["x-request-id"] == body["request_id"]
    assert raw.json()["predictions"] == wrapped.json()["predictions"]


CLIENT_ERRORS = {
    "empty_body": (400, b"", "image/jpeg"),
    "invalid_json": (400, b"{not json", "application/json"),
    "missing_image": (400, as_json({"picture": "x"}), "application/json"),
    "invalid_base64": (400, as_json({"image": "***"}), "application/json"),
    "empty_image": (400, as_json({"image": "data:image/jpeg;base64,"}), "application/json"),
    "payload_too_large": (413, JPEG_MAGIC + bytes(3_500_000), "image/jpeg"),
    "unsupported_media_type": (415, b"shopping list", "text/plain"),
    "unsupported_image_format": (415, b"II*\x00" + bytes(100), "image/tiff"),
    "not_an_image": (422, b"definitely not an image", "image/jpeg"),
}


@pytest.mark.parametrize("code", CLIENT_ERRORS)
def test_client_errors_of_the_proxy(runtime, code):
    status, content, content_type = CLIENT_ERRORS[code]
    assert_error(post(runtime, content, content_type), status, code)


def test_wrong_method(runtime):
    response = httpx.get(f"{runtime.api_url}/predict")
    assert_error(response, 405, "method_not_allowed")


def test_the_models_own_4xx_passes_through(runtime):
    truncated = photo_jpeg()[:1500]
    response = post(runtime, truncated, "image/jpeg")
    assert 400 <= response.status_code < 500, response.text
    body = assert_error(response, response.status_code, response.json()["error"]["code"])
    assert body["error"]["code"] not in {code for code in CLIENT_ERRORS}, "the model answered"


def test_the_gateway_limit_and_unknown_routes(runtime):
    assert_error(
        post(runtime, JPEG_MAGIC + bytes(11 * 1024 * 1024), "image/jpeg"), 413, "payload_too_large"
    )
    assert_error(httpx.post(f"{runtime.api_url}/classify", content=b"x"), 404, "not_found")


def preflight(url: str, origin: str) -> httpx.Response:
    return httpx.options(
        url,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )


def cors_headers(response: httpx.Response) -> list[str]:
    return [name for name in response.headers if name.startswith("access-control-")]


def test_no_cors_anywhere_the_site_is_one_origin(runtime):
    """The page calls its own origin: nothing answers a preflight with permission, for the
    site or anyone else, and no answer carries CORS headers (least of all `*`)."""
    for url in (f"{runtime.api_url}/predict", f"{runtime.direct_url}/predict"):
        for origin in (runtime.site_url, FOREIGN):
            response = preflight(url, origin)
            assert response.status_code == 404, (url, origin)
            assert not cors_headers(response)
    for origin in (runtime.site_url, FOREIGN):
        for answer in (
            post(runtime, photo_jpeg(), "image/jpeg", origin=origin),
            post(runtime, b"text", "text/plain", origin=origin),
        ):
            assert answer.status_code in (200, 415)
            assert not cors_headers(answer)


def test_a_direct_call_without_the_origin_header_is_refused(runtime):
    """The API's own port stands in for its execute-api URL: CloudFront's header is
    missing, so the proxy refuses (keys are off in this runtime)."""
    url = f"{runtime.direct_url}/predict"
    for headers in ({}, {"x-origin-verify": "a-guess-" + "x" * 40}):
        response = httpx.post(
            url, content=photo_jpeg(), headers={"content-type": "image/jpeg", **headers}
        )
        body = assert_error(response, 403, "forbidden")
        assert "/api/predict" in body["error"]["message"]
    assert runtime.logged('"origin_header": "missing"')
    assert runtime.logged('"origin_header": "wrong"')


def test_through_the_site_a_header_the_client_sends_is_replaced(runtime):
    response = post(runtime, photo_jpeg(), "image/jpeg", **{"x-origin-verify": "wrong"})
    assert response.status_code == 200, response.text
    request_id = response.json()["request_id"]
    assert runtime.logged(request_id)
    line = next(line for line in runtime.lines if request_id in line)
    assert json.loads(line)["access"] == "origin"


def test_the_site_and_the_direct_port_are_two_stages_and_the_log_tells_them_apart(runtime):
    """As in the cloud (decision 13): the site's requests reach the API's secret stage,
    direct ones `$default`; each log line says which, never the stage's name."""
    through_site = post(runtime, photo_jpeg(), "image/jpeg")
    assert through_site.status_code == 200, through_site.text
    direct = httpx.post(
        f"{runtime.direct_url}/predict", content=b"x", headers={"content-type": "image/jpeg"}
    )
    assert_error(direct, 403, "forbidden")
    ids = [through_site.json()["request_id"], direct.headers["x-request-id"]]
    for request_id in ids:
        assert runtime.logged(request_id)
    lines = [json.loads(next(line for line in runtime.lines if i in line)) for i in ids]
    assert [line["via"] for line in lines] == ["cloudfront", "execute-api"]
    # The visitor's address: from the origin's viewer header, or the connection's own.
    assert [line["viewer_ip"] for line in lines] == ["127.0.0.1", "127.0.0.1"]


def test_through_the_site_the_viewers_address_is_the_connections_not_one_sent(runtime):
    response = post(
        runtime, photo_jpeg(), "image/jpeg", **{"cloudfront-viewer-address": "198.51.100.7:1"}
    )
    assert response.status_code == 200, response.text
    request_id = response.json()["request_id"]
    assert runtime.logged(request_id)
    line = json.loads(next(line for line in runtime.lines if request_id in line))
    assert line["viewer_ip"] == "127.0.0.1"


def test_the_direct_api_serves_only_what_the_stack_routes(runtime):
    assert_error(httpx.post(f"{runtime.direct_url}/classify", content=b"x"), 404, "not_found")
    base = runtime.direct_url.removesuffix("/api")
    assert_error(httpx.post(f"{base}/predict", content=b"x"), 404, "not_found")
    assert httpx.get(f"{base}/").status_code == 404, "the direct port serves no site"


# SageMaker Runtime failures, played by a fake service: (HTTP status, x-amzn-ErrorType, body).
SAGEMAKER_FAILURES: dict[str, tuple[int, str, dict]] = {
    "throttled": (400, "ThrottlingException", {"message": "Rate exceeded"}),
    "not_ready": (429, "ModelNotReadyException", {"message": "Model is not ready"}),
    "unavailable": (503, "ServiceUnavailable", {"message": "Service unavailable"}),
    "no_endpoint": (
        400,
        "ValidationError",
        {"message": "Endpoint image-classifier-local of account 000000000000 not found."},
    ),
    "model_crash": (
        424,
        "ModelError",
        {
            "ErrorCode": "SERVER_ERROR_FROM_MODEL",
            "OriginalStatusCode": 500,
            "OriginalMessage": '{"error": {"code": "internal_error", "message": "boom"}}',
            "Message": "Received server error (500) from primary",
        },
    ),
    "unknown": (400, "SomethingNewException", {"message": "?"}),
}


async def fake_invocations(request: Request) -> Response:
    scenario = (await request.body())[len(JPEG_MAGIC) :].decode()
    if scenario == "gibberish":
        return Response(b"<html>not json</html>", media_type="text/html")
    if scenario == "slow":
        await asyncio.sleep(3)
        return Response(b"{}", media_type="application/json")
    status, error_type, body = SAGEMAKER_FAILURES[scenario]
    return JSONResponse(body, status_code=status, headers={"x-amzn-ErrorType": error_type})


@pytest.fixture(scope="module")
def fake_sagemaker() -> Iterator[str]:
    app = Starlette(
        routes=[Route("/endpoints/{name}/invocations", fake_invocations, methods=["POST"])]
    )
    sock = listen("127.0.0.1", 0, "--port")
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def api_before_fake_sagemaker(fake_sagemaker: str) -> Iterator[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.local.api_only",
            "--sagemaker-url",
            fake_sagemaker,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "SAGEMAKER_MAX_ATTEMPTS": "2",
            "SAGEMAKER_READ_TIMEOUT_SECONDS": "1",
        },
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("API "), line
    threading.Thread(target=process.stdout.read, daemon=True).start()
    yield line.split()[1]
    process.terminate()
    process.wait(10)


@pytest.mark.parametrize(
    ("scenario", "status", "code", "retry_after"),
    [
        ("throttled", 503, "model_busy", True),
        ("not_ready", 503, "model_not_ready", True),
        ("unavailable", 503, "model_unavailable", True),
        ("no_endpoint", 503, "endpoint_not_found", True),
        ("model_crash", 502, "model_error", False),
        ("gibberish", 502, "bad_model_response", False),
        ("unknown", 502, "upstream_error", False),
        ("slow", 504, "model_timeout", True),
    ],
)
def test_sagemaker_failures(api_before_fake_sagemaker, scenario, status, code, retry_after):
    response = httpx.post(
        f"{api_before_fake_sagemaker}/predict",
        content=JPEG_MAGIC + scenario.encode(),
        headers={"content-type": "image/jpeg"},
        timeout=30,
    )
    assert_error(response, status, code)
    assert ("retry-after" in response.headers) is retry_after
