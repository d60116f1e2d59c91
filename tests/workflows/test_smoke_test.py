"""The deploy workflow's smoke test (`.github/scripts/smoke_test.py`), run as the workflow
runs it, against a fake of the stack: two local HTTP servers standing in for the site
(`config.js`) and the HTTP API (`OPTIONS`/`POST /predict`), answering good and bad; and as
the stack is now, one origin: the site serving `config.js` and `/api/predict`, the other
server standing in for the HTTP API's own URL, which refuses a request without a key.

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
    config_js: str | None = None
    """None renders a correct config.js for the API URL and VERSION."""
    preflight: Answer | None = None
    """None answers like the HTTP API with CORS for `site_url`."""
    photo_answers: list[Answer] = field(default_factory=list)
    """Answers to the photo, in turn (the last one repeats); empty means a good 200."""
    refusal: Answer | None = None
    cors_on_answers: bool = True
    direct: Answer = field(
        default_factory=lambda: Answer(
            403, json.dumps({"error": {"code": "forbidden", "message": "Not here."}}).encode()
        )
    )
    """What the HTTP API's own URL answers a request without a key (one origin only)."""
    execute_api_url: str = ""
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)

    def photo_posts(self) -> list[tuple[str, str, dict[str, str], bytes]]:
        return [
            r for r in self.requests if r[0] == "POST" and r[2].get("content-type") == "image/jpeg"
        ]

    def cors(self) -> dict[str, str]:
        return {"access-control-allow-origin": self.site_url} if self.cors_on_answers else {}

    def answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes, direct: bool = False
    ) -> Answer:
        self.requests.append((method, path, headers, body))
        if direct:
            return self.direct
        if method == "GET" and path == "/config.js":
            text = self.config_js
            if text is None:
                api_url = self.api_url.removeprefix(self.site_url) or self.api_url
                config = {"apiUrl": api_url, "modelVersion": VERSION}
                text = f"window.APP_CONFIG = Object.freeze({json.dumps(config)});"
            return Answer(200, text.encode(), {"content-type": "text/javascript"})
        if path not in ("/predict", "/api/predict"):
            return Answer(404, b'{"message":"Not Found"}')
        if method == "OPTIONS":
            if self.preflight is not None:
                return self.preflight
            return Answer(
                204,
                headers={
                    "access-control-allow-origin": self.site_url,
                    "access-control-allow-methods": "POST",
                    "access-control-allow-headers": "content-type",
                },
            )
        if headers.get("content-type") == "application/json":
            refusal = self.refusal or Answer(
                400,
                json.dumps({"error": {"code": "missing_image", "message": "No image."}}).encode(),
            )
            return Answer(refusal.status, refusal.body, {**self.cors(), **refusal.headers})
        if self.photo_answers:
            turn = len(self.photo_posts()) - 1
            chosen = self.photo_answers[min(turn, len(self.photo_answers) - 1)]
        else:
            chosen = Answer(200, json.dumps(prediction_body()).encode())
        return Answer(
            chosen.status,
            chosen.body,
            {"content-type": "application/json", **self.cors(), **chosen.headers},
        )


def handler_for(stack: FakeStack, direct: bool = False) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {key.lower(): value for key, value in self.headers.items()}
            answer = stack.answer(self.command, self.path, headers, body, direct)
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return None

    return Handler


def _serving(fake: FakeStack, one_origin: bool) -> Iterator[FakeStack]:
    servers = [
        ThreadingHTTPServer(("127.0.0.1", 0), handler_for(fake, direct=one_origin and i == 1))
        for i in range(2)
    ]
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    fake.site_url, other = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    fake.api_url = f"{fake.site_url}/api" if one_origin else other
    fake.execute_api_url = f"{other}/api" if one_origin else ""
    try:
        yield fake
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def stack() -> Iterator[FakeStack]:
    """The API on an origin of its own, as `python -m local` serves it today."""
    yield from _serving(FakeStack(), one_origin=False)


@pytest.fixture
def one_origin() -> Iterator[FakeStack]:
    """The stack: the API under the site's `/api`, its own URL refusing keyless requests."""
    yield from _serving(FakeStack(), one_origin=True)


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
    stack: FakeStack, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--site-url",
            stack.site_url,
            "--api-url",
            stack.api_url,
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

    (preflight,) = [r for r in stack.requests if r[0] == "OPTIONS"]
    assert preflight[2]["origin"] == stack.site_url
    assert preflight[2]["access-control-request-method"] == "POST"
    (post,) = stack.photo_posts()
    assert post[1] == "/predict"
    assert post[2]["content-type"] == "image/jpeg"
    assert post[2]["origin"] == stack.site_url
    assert post[3] == PHOTO.read_bytes(), "the real photo, not an empty body"


def test_a_one_origin_stack_passes_without_cors_and_refuses_direct_calls(one_origin: FakeStack):
    result = smoke(one_origin, "--execute-api-url", one_origin.execute_api_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 of 5 smoke checks passed" in result.stdout
    assert "on the site's own origin" in result.stdout
    assert not [r for r in one_origin.requests if r[0] == "OPTIONS"], "no preflight to pass"
    (post, direct) = one_origin.photo_posts()
    assert post[1] == "/api/predict"
    assert direct[1] == "/api/predict"
    assert "x-origin-verify" not in direct[2]
    assert "x-api-key" not in direct[2]


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, json.dumps(prediction_body()).encode()),
        Answer(403, b'{"message":"Forbidden"}'),
        Answer(401, json.dumps({"error": {"code": "forbidden"}}).encode()),
    ],
    ids=["open", "not_the_proxy", "wrong_code"],
)
def test_a_direct_call_that_is_not_refused_by_the_proxy_fails(one_origin: FakeStack, answer):
    one_origin.direct = answer
    result = smoke(one_origin, "--execute-api-url", one_origin.execute_api_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL direct access refused" in result.stdout
    assert "expected 403 forbidden or 401 api_key_missing" in result.stdout


def test_a_relative_api_url_elsewhere_fails_the_config_check(one_origin: FakeStack):
    config = json.dumps({"apiUrl": "/v2", "modelVersion": VERSION})
    one_origin.config_js = f"window.APP_CONFIG = {config};"
    result = smoke(one_origin)
    assert result.returncode == 1
    assert "FAIL config.js" in result.stdout


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


def _preflight_without_cors(stack: FakeStack) -> None:
    stack.preflight = Answer(204, headers={"access-control-allow-methods": "POST"})


def _preflight_for_another_origin(stack: FakeStack) -> None:
    stack.preflight = Answer(
        204,
        headers={
            "access-control-allow-origin": "https://example.com",
            "access-control-allow-methods": "POST",
        },
    )


def _preflight_without_post(stack: FakeStack) -> None:
    stack.preflight = Answer(
        204,
        headers={
            "access-control-allow-origin": stack.site_url,
            "access-control-allow-methods": "GET",
        },
    )


def _preflight_reaches_the_lambda(stack: FakeStack) -> None:
    stack.preflight = Answer(405, b'{"error":{"code":"method_not_allowed"}}')


def _answer_without_cors(stack: FakeStack) -> None:
    stack.cors_on_answers = False


def _stale_config_js(stack: FakeStack) -> None:
    stack.config_js = (
        'window.APP_CONFIG = {"apiUrl": "https://old.example", "modelVersion": "0ld"};'
    )


def _refusal_is_a_5xx(stack: FakeStack) -> None:
    stack.refusal = Answer(500, b'{"message":"Internal Server Error"}')


BREAKAGES = [
    pytest.param(_bad_request, "status 400, expected 200", id="bad_request"),
    pytest.param(_wrong_version, "model.version is '0ld'", id="wrong_version"),
    pytest.param(_four_predictions, "expected 5 predictions, got 4", id="four_predictions"),
    pytest.param(_unsorted_predictions, "most probable first", id="unsorted_predictions"),
    pytest.param(_not_json, "not JSON", id="not_json"),
    pytest.param(_always_unavailable, "status 503, expected 200", id="always_unavailable"),
    pytest.param(_server_error, "status 502, expected 200", id="server_error"),
    pytest.param(
        _preflight_without_cors, "access-control-allow-origin is None", id="preflight_without_cors"
    ),
    pytest.param(
        _preflight_for_another_origin, "'https://example.com'", id="preflight_for_another_origin"
    ),
    pytest.param(
        _preflight_without_post, "expected it to include POST", id="preflight_without_post"
    ),
    pytest.param(
        _preflight_reaches_the_lambda, "status 405, expected 2xx", id="preflight_reaches_the_lambda"
    ),
    pytest.param(_answer_without_cors, "a browser would refuse", id="answer_without_cors"),
    pytest.param(_stale_config_js, "does not mention", id="stale_config_js"),
    pytest.param(_refusal_is_a_5xx, "expected 400 missing_image", id="refusal_is_a_5xx"),
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
    assert stack.requests == []


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
        assert "5 of 5 smoke checks passed" in result.stdout
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
