"""The deploy workflow's smoke test (`.github/scripts/smoke_test.py`), run as the workflow
runs it, against a fake of the stack, one origin as CloudFront serves it: one local HTTP
server for the site (`config.js` and `POST /api/predict`), another for the HTTP API's own
URL (`execute_api_url`), which refuses a request without the origin header or a key. Both
answer good and bad.

A smoke test is only worth its run if it fails when the stack is broken, so most of
these tests break one thing and expect exit status 1.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".github" / "scripts" / "smoke_test.py"
PHOTO = ROOT / "tests" / "smoke" / "photo.jpg"
VERSION = "3f9a1c2b0d4e"
LABELS = ("tabby", "tiger cat", "Egyptian cat", "lynx", "Persian cat")


def prediction_body(count: int = 5, version: str = VERSION) -> dict[str, Any]:
    probabilities = [0.6, 0.2, 0.1, 0.05, 0.03, 0.01, 0.01][:count]
    return {
        "predictions": [
            {"label": label, "index": 281 + i, "probability": p}
            for i, (label, p) in enumerate(zip(LABELS * 2, probabilities, strict=False))
        ],
        "model": {"name": "mobilenet_v2", "version": version, "weights": "IMAGENET1K_V2"},
        "needs_review": True,
        "request_id": "req-1",
    }


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeStack:
    """What each fake server answers, and every request it saw."""

    site_url: str = ""
    api_url: str = ""
    """`<site_url>/api`, as the stack outputs it."""
    execute_api_url: str = ""
    config_js: str | None = None
    """None renders a correct config.js: `apiUrl` "/api" and VERSION."""
    photo_answers: list[Answer] = field(default_factory=list)
    """Answers to the photo, in turn (the last one repeats); empty means a good 200."""
    refusal: Answer | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)
    """Added to every answer of the site's API."""
    direct: Answer = field(
        default_factory=lambda: Answer(
            403,
            json.dumps({"error": {"code": "forbidden", "message": "Not here."}}).encode(),
            {"content-type": "application/json"},
        )
    )
    """What the HTTP API's own URL answers (a request without the origin header)."""
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    direct_requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def photo_posts(self) -> list[tuple[str, str, dict[str, str], bytes]]:
        return [
            r for r in self.requests if r[0] == "POST" and r[2].get("content-type") == "image/jpeg"
        ]

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        self.requests.append((method, path, headers, body))
        if method == "GET" and path == "/config.js":
            text = self.config_js
            if text is None:
                config = {"apiUrl": "/api", "modelVersion": VERSION}
                text = f"window.APP_CONFIG = Object.freeze({json.dumps(config)});"
            return Answer(200, text.encode(), {"content-type": "text/javascript"})
        if path != "/api/predict" or method != "POST":
            return Answer(404, b'{"message":"Not Found"}')
        if headers.get("content-type") == "application/json":
            chosen = self.refusal or Answer(
                400,
                json.dumps({"error": {"code": "missing_image", "message": "No image."}}).encode(),
            )
        elif self.photo_answers:
            turn = len(self.photo_posts()) - 1
            chosen = self.photo_answers[min(turn, len(self.photo_answers) - 1)]
        else:
            chosen = Answer(200, json.dumps(prediction_body()).encode())
        return Answer(
            chosen.status,
            chosen.body,
            {"content-type": "application/json", **self.extra_headers, **chosen.headers},
        )

    def answer_direct(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        self.direct_requests.append((method, path, headers, body))
        if path != "/api/predict":
            return Answer(404, b'{"message":"Not Found"}')
        return self.direct


def handler_for(answer: Callable[..., Answer]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {key.lower(): value for key, value in self.headers.items()}
            chosen = answer(self.command, self.path, headers, body)
            self.send_response(chosen.status)
            for key, value in chosen.headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(chosen.body)))
            self.end_headers()
            self.wfile.write(chosen.body)

        do_GET = do_POST = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return None

    return Handler


@pytest.fixture
def stack() -> Iterator[FakeStack]:
    fake = FakeStack()
    servers = [
        ThreadingHTTPServer(("127.0.0.1", 0), handler_for(answer))
        for answer in (fake.answer, fake.answer_direct)
    ]
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    fake.site_url, direct = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    fake.api_url = f"{fake.site_url}/api"
    fake.execute_api_url = f"{direct}/api"
    try:
        yield fake
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def script_env(**extra: str) -> dict[str, str]:
    """This environment without what would change the script's behaviour here: CI's own
    GITHUB_ACTIONS (annotations) and proxies (the fake stack is on loopback)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key != "GITHUB_ACTIONS" and not key.lower().endswith("_proxy")
    }
    return {**env, **extra}


def smoke(
    stack: FakeStack, *extra: str, env: dict[str, str] | None = None, direct: bool = True
) -> subprocess.CompletedProcess:
    """Run the script as deploy.yml runs it (with `--execute-api-url`, unless `direct` is
    False), with quick retries."""
    return subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--site-url",
            stack.site_url,
            "--api-url",
            stack.api_url,
            *(["--execute-api-url", stack.execute_api_url] if direct else []),
            "--model-version",
            VERSION,
            "--photo",
            str(PHOTO),
            "--attempts",
            "3",
            "--retry-wait",
            "0",
            "--timeout",
            "10",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env or script_env(),
    )


def test_the_photo_is_a_small_real_jpeg():
    data = PHOTO.read_bytes()
    assert len(data) < 20_000, "a few KB: the workflow posts it on every deployment"
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        image.load()
        # At least the model's 224x224 crop, so it classifies what a user would send.
        assert min(image.size) >= 224


def test_a_healthy_stack_passes_and_is_asked_as_a_browser_would(stack: FakeStack):
    result = smoke(stack)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 of 4 smoke checks passed" in result.stdout

    everything = stack.requests + stack.direct_requests
    assert not [r for r in everything if r[0] == "OPTIONS"], "one origin: no preflight"
    (post,) = stack.photo_posts()
    assert post[1] == "/api/predict"
    assert post[2]["content-type"] == "image/jpeg"
    assert post[2]["origin"] == stack.site_url
    assert post[3] == PHOTO.read_bytes(), "the real photo, not an empty body"
    (direct,) = stack.direct_requests
    assert direct[1] == "/api/predict"
    assert "x-origin-verify" not in direct[2]
    assert "x-api-key" not in direct[2]


def test_without_the_execute_api_url_the_direct_call_is_not_checked(stack: FakeStack):
    result = smoke(stack, direct=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 of 3 smoke checks passed" in result.stdout
    assert stack.direct_requests == []


def test_a_stack_with_api_keys_refuses_a_direct_call_with_401(stack: FakeStack):
    stack.direct = Answer(401, json.dumps({"error": {"code": "api_key_missing"}}).encode())
    result = smoke(stack)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "refused with 401 api_key_missing" in result.stdout


def test_a_cold_endpoint_is_retried_until_it_answers(stack: FakeStack):
    stack.photo_answers = [
        Answer(503, b'{"error":{"code":"model_not_ready"}}', {"retry-after": "5"}),
        Answer(200, json.dumps(prediction_body()).encode()),
    ]
    result = smoke(stack)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(stack.photo_posts()) == 2


def _bad_request(stack: FakeStack) -> None:
    stack.photo_answers = [Answer(400, b'{"error":{"code":"empty_body"}}')]


def _wrong_version(stack: FakeStack) -> None:
    stack.photo_answers = [Answer(200, json.dumps(prediction_body(version="0ld")).encode())]


def _four_predictions(stack: FakeStack) -> None:
    stack.photo_answers = [Answer(200, json.dumps(prediction_body(count=4)).encode())]


def _unsorted_predictions(stack: FakeStack) -> None:
    body = prediction_body()
    body["predictions"].reverse()
    stack.photo_answers = [Answer(200, json.dumps(body).encode())]


def _not_json(stack: FakeStack) -> None:
    stack.photo_answers = [Answer(200, b"<html>gateway</html>")]


def _always_unavailable(stack: FakeStack) -> None:
    stack.photo_answers = [Answer(503, b'{"error":{"code":"model_not_ready"}}')]


def _server_error(stack: FakeStack) -> None:
    stack.photo_answers = [Answer(502, b'{"error":{"code":"model_error"}}')]


def _any_website_may_read_the_answers(stack: FakeStack) -> None:
    stack.extra_headers = {"access-control-allow-origin": "*"}


def _stale_config_js(stack: FakeStack) -> None:
    stack.config_js = (
        'window.APP_CONFIG = {"apiUrl": "https://old.example", "modelVersion": "0ld"};'
    )


def _config_js_points_at_another_origin(stack: FakeStack) -> None:
    """The two-origin layout: the page would call the API's own URL, cross-origin."""
    config = {"apiUrl": stack.execute_api_url, "modelVersion": VERSION}
    stack.config_js = f"window.APP_CONFIG = Object.freeze({json.dumps(config)});"


def _config_js_points_at_another_path(stack: FakeStack) -> None:
    stack.config_js = f'window.APP_CONFIG = {{"apiUrl": "/v2", "modelVersion": "{VERSION}"}};'


def _api_url_on_another_origin(stack: FakeStack) -> None:
    stack.api_url = stack.execute_api_url


def _refusal_is_a_5xx(stack: FakeStack) -> None:
    stack.refusal = Answer(500, b'{"message":"Internal Server Error"}')


def _direct_call_admitted(stack: FakeStack) -> None:
    stack.direct = Answer(200, json.dumps(prediction_body()).encode())


def _direct_refusal_not_the_proxys(stack: FakeStack) -> None:
    stack.direct = Answer(403, b'{"message":"Forbidden"}')


def _direct_refusal_with_the_wrong_code(stack: FakeStack) -> None:
    stack.direct = Answer(401, json.dumps({"error": {"code": "forbidden"}}).encode())


def _direct_refusal_readable_by_any_website(stack: FakeStack) -> None:
    stack.direct = Answer(
        403,
        json.dumps({"error": {"code": "forbidden"}}).encode(),
        {"access-control-allow-origin": "*"},
    )


BREAKAGES = [
    pytest.param(_bad_request, "status 400, expected 200", id="bad_request"),
    pytest.param(_wrong_version, "model.version is '0ld'", id="wrong_version"),
    pytest.param(_four_predictions, "expected 5 predictions, got 4", id="four_predictions"),
    pytest.param(_unsorted_predictions, "most probable first", id="unsorted_predictions"),
    pytest.param(_not_json, "not JSON", id="not_json"),
    pytest.param(_always_unavailable, "status 503, expected 200", id="always_unavailable"),
    pytest.param(_server_error, "status 502, expected 200", id="server_error"),
    pytest.param(
        _any_website_may_read_the_answers,
        "access-control-allow-origin is '*'",
        id="wildcard_cors",
    ),
    pytest.param(_stale_config_js, "does not mention model", id="stale_config_js"),
    pytest.param(
        _config_js_points_at_another_origin,
        "the browser would call the API cross-origin",
        id="config_js_cross_origin",
    ),
    pytest.param(
        _config_js_points_at_another_path, "/v2, not http://", id="config_js_another_path"
    ),
    pytest.param(_api_url_on_another_origin, "is not on the site's origin", id="api_url_elsewhere"),
    pytest.param(_refusal_is_a_5xx, "expected 400 missing_image", id="refusal_is_a_5xx"),
    pytest.param(_direct_call_admitted, "without the origin header", id="direct_open"),
    pytest.param(
        _direct_refusal_not_the_proxys, "expected 403 forbidden", id="direct_not_the_proxy"
    ),
    pytest.param(_direct_refusal_with_the_wrong_code, "code 'forbidden'", id="direct_wrong_code"),
    pytest.param(
        _direct_refusal_readable_by_any_website,
        "access-control-allow-origin is '*'",
        id="direct_wildcard_cors",
    ),
]
"""One broken thing each, and what the failure must say."""


@pytest.mark.parametrize(("breakage", "message"), BREAKAGES)
def test_a_broken_stack_fails_the_smoke_test(
    stack: FakeStack, breakage: Callable[[FakeStack], None], message: str
):
    breakage(stack)
    result = smoke(stack)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stdout
    assert message in result.stdout, result.stdout


def test_a_failure_is_annotated_in_github_actions(stack: FakeStack):
    _bad_request(stack)
    result = smoke(stack, env=script_env(GITHUB_ACTIONS="true"))
    assert result.returncode == 1
    assert "::error::FAIL prediction" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--site-url", "ftp://example.com"],
        ["--model-version", " "],
        ["--photo", "/nonexistent/photo.jpg"],
        ["--execute-api-url", "execute-api"],
    ],
)
def test_usage_errors_exit_2_before_any_request(stack: FakeStack, args: list[str]):
    base = {
        "--site-url": stack.site_url,
        "--api-url": stack.api_url,
        "--model-version": VERSION,
        "--photo": str(PHOTO),
    }
    base[args[0]] = args[1]
    argv = [item for pair in base.items() for item in pair]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=script_env(),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert stack.requests == stack.direct_requests == []


@pytest.mark.slow
def test_the_local_runtime_passes_the_smoke_test(model_artifact: Path):
    """The same checks against the real proxy, origin check and model server (`python -m
    local`, the stack on one machine: the site's port serves the API under /api as
    CloudFront does, the API's own port stands in for execute-api): the smoke test agrees
    with the product, not only with the fake above."""
    command = ["-m", "local", "--artifact", str(model_artifact), "--port", "0"]
    process = subprocess.Popen(
        [sys.executable, *command, "--api-port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**script_env(), "PYTHONUNBUFFERED": "1"},
    )
    found: dict[str, str] = {}
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            patterns = {
                "version": r"Model\s.*\bversion (\S+),",
                "execute_api_url": r"API\s+(http://\S+)/predict",
                "site_url": r"Site\s+(http://\S+)",
            }
            for key, pattern in patterns.items():
                if match := re.match(pattern, line):
                    found[key] = match.group(1)
            if line.startswith("Ready:") or process.poll() is not None:
                break
        assert set(found) == {"version", "execute_api_url", "site_url"}, "".join(lines)
        arguments = {
            "--site-url": found["site_url"],
            "--api-url": f"{found['site_url']}/api",
            "--execute-api-url": found["execute_api_url"],
            "--model-version": found["version"],
            "--photo": str(PHOTO),
            "--attempts": "3",
            "--retry-wait": "1",
        }
        result = subprocess.run(
            [sys.executable, str(SCRIPT), *(item for pair in arguments.items() for item in pair)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=script_env(),
        )
        assert result.returncode == 0, result.stdout + result.stderr + "".join(lines)
        assert "4 of 4 smoke checks passed" in result.stdout
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
