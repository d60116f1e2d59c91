#!/usr/bin/env python3
"""Smoke test of a deployed stack, as a browser on the site would use it.

The site and the API are one origin: CloudFront serves the page and, under `/api/*`, the
API (stack output `api_url` is `<site_url>/api`), adding the origin header the proxy
requires. The browser never makes a cross-origin request, so nothing needs CORS.

1. `config.js` on the site names this model version and points the page at `api_url`,
   on the site's own origin (`/api`, resolved as the browser resolves it).
2. A real photo posted to `<api_url>/predict` gets a 200 with five predictions from the
   model version the stack says it deployed.
3. A request without an image is refused with the proxy's JSON 400 (`missing_image`).
4. With `--execute-api-url` (stack output `execute_api_url`): the same photo sent to the
   HTTP API's own URL, without the origin header or an API key, is refused by the proxy
   (403 `forbidden`, or 401 `api_key_missing` where the stack admits API keys): only the
   site's path is open.

No answer may carry `access-control-allow-origin: *` (any website could read it).

A cold serverless endpoint answers 503 (`model_not_ready`) for a while after a
deployment, and the stage throttles with 429: those are retried, everything else fails
at once. Standard library only, so the workflow runs it with any Python 3.11+, and the
tests run it against a local fake of the stack and against `python -m local`
(tests/workflows/test_smoke_test.py).

Exit status: 0 when every check passed, 1 otherwise (each failure is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

TOP_K = 5
"""The API always answers the top five classes."""
DIRECT_REFUSALS = {401: "api_key_missing", 403: "forbidden"}
"""What the proxy answers a request that came neither through CloudFront nor with a key."""
RETRYABLE = frozenset({429, 503, 504})
"""Throttled, endpoint starting or busy, model timeout: worth another try after a wait."""
EXCERPT = 300
"""Characters of an unexpected body shown in a failure."""
API_URL_IN_CONFIG = re.compile(r'"apiUrl":\s*("(?:[^"\\]|\\.)*")')
"""`apiUrl` in config.js: a JSON string, kept whole to be read as JSON."""


class SmokeFailure(Exception):
    """One check failed; the message says what was expected and what came back."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Message
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def excerpt(self) -> str:
        return self.body[:EXCERPT].decode("utf-8", "replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise SmokeFailure(f"the body is not JSON ({error}): {self.excerpt()!r}") from None


@dataclass(frozen=True)
class Settings:
    site_url: str
    """The site's origin, `https://<id>.cloudfront.net`: what a browser sends as Origin."""
    api_url: str
    """The API on the site's origin, `<site_url>/api`: the page posts to `{api_url}/predict`."""
    model_version: str
    photo: bytes
    execute_api_url: str | None
    attempts: int
    retry_wait: float
    timeout: float


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def no_wildcard_cors(response: Response, what: str) -> None:
    """Fail if any website may read this answer: the API has one origin, the site's."""
    allowed = (response.header("access-control-allow-origin") or "").strip()
    if allowed == "*":
        raise SmokeFailure(
            f"{what}: access-control-allow-origin is '*', so any website could read the "
            "answer; the page calls the API on its own origin and needs no CORS"
        )


def http_url(value: str) -> str:
    """An http(s) URL without a trailing slash (anything else is a usage error)."""
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {value!r}")
    return value.rstrip("/")


def send(
    method: str,
    url: str,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> Response:
    """One HTTP exchange; any status is a `Response`, only the network failing raises."""
    # Only http(s): urllib would also open file: and ftp: URLs (ruff S310).
    if urlsplit(url).scheme not in ("https", "http"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    headers = dict(headers or {})
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return Response(answer.status, answer.headers, answer.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.headers, error.read())
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise SmokeFailure(f"{method} {url}: no answer ({error})") from None


def with_retries(settings: Settings, what: str, call: Callable[[], Response]) -> Response:
    """Call until the answer is not a retryable status or the attempts run out."""
    response = call()
    for attempt in range(2, settings.attempts + 1):
        if response.status not in RETRYABLE:
            break
        wait = settings.retry_wait
        print(
            f"  {what}: {response.status} ({response.excerpt()!r}); "
            f"attempt {attempt} of {settings.attempts} in {wait:g} s"
        )
        time.sleep(wait)
        response = call()
    return response


def check_config_js(settings: Settings) -> str:
    """The site serves the config.js this deployment rendered: this model version, and an
    `apiUrl` that resolves, against the page, to `api_url` on the site's own origin.
    CloudFront may keep the previous copy until the invalidation lands, so a stale one is
    retried too."""
    url = f"{settings.site_url}/config.js"
    for attempt in range(1, settings.attempts + 1):
        response = send("GET", url, settings.timeout)
        problem = config_js_problem(settings, response)
        if problem is None:
            return (
                f"{url} points the page at {settings.api_url}, its own origin, "
                f"and names model {settings.model_version}"
            )
        if attempt == settings.attempts:
            raise SmokeFailure(f"GET {url}: {problem}: {response.excerpt()!r}")
        print(f"  config.js: {problem}; attempt {attempt + 1} of {settings.attempts}")
        time.sleep(settings.retry_wait)
    raise AssertionError("unreachable")


def config_js_problem(settings: Settings, response: Response) -> str | None:
    """What is wrong with this answer for config.js, or None."""
    if origin_of(settings.api_url) != origin_of(settings.site_url):
        return (
            f"--api-url {settings.api_url} is not on the site's origin {settings.site_url} "
            "(the stack serves the API under the site's /api)"
        )
    if response.status != 200:
        return f"status {response.status}"
    text = response.body.decode("utf-8", "replace")
    if settings.model_version not in text:
        return f"it does not mention model {settings.model_version}"
    configured = configured_api(settings, text)
    if configured is None:
        return "it has no apiUrl"
    if origin_of(configured) != origin_of(settings.site_url):
        return (
            f"its apiUrl {configured} is not on the site's origin {settings.site_url} "
            "(the browser would call the API cross-origin)"
        )
    if configured != settings.api_url:
        return f"its apiUrl resolves to {configured}, not {settings.api_url}"
    return None


def configured_api(settings: Settings, text: str) -> str | None:
    """The API URL `config.js` gives the page, resolved as the browser resolves it."""
    found = API_URL_IN_CONFIG.search(text)
    if found is None:
        return None
    try:
        value = json.loads(found.group(1))
    except ValueError:
        return None
    return urljoin(f"{settings.site_url}/", value).rstrip("/")


def check_predictions(body: Any, model_version: str) -> str:
    """The 200 body's contract (docs/api.md, Response): five predictions, most probable
    first, from the deployed model version."""
    if not isinstance(body, dict):
        raise SmokeFailure(f"the body is not a JSON object: {body!r:.{EXCERPT}}")
    predictions = body.get("predictions")
    if not isinstance(predictions, list) or len(predictions) != TOP_K:
        count = len(predictions) if isinstance(predictions, list) else "no"
        raise SmokeFailure(f"expected {TOP_K} predictions, got {count}: {body!r:.{EXCERPT}}")
    for position, prediction in enumerate(predictions, 1):
        label = prediction.get("label") if isinstance(prediction, dict) else None
        probability = prediction.get("probability") if isinstance(prediction, dict) else None
        if not isinstance(label, str) or not label:
            raise SmokeFailure(f"prediction {position} has no label: {prediction!r}")
        if not isinstance(probability, int | float) or not 0 <= probability <= 1:
            raise SmokeFailure(f"prediction {position} has no probability: {prediction!r}")
    probabilities = [prediction["probability"] for prediction in predictions]
    if probabilities != sorted(probabilities, reverse=True):
        raise SmokeFailure(f"predictions are not most probable first: {probabilities}")
    model = body.get("model")
    version = model.get("version") if isinstance(model, dict) else None
    if version != model_version:
        raise SmokeFailure(
            f"model.version is {version!r}, expected the deployed {model_version!r} "
            "(an old endpoint config still serving?)"
        )
    top = predictions[0]
    return f"top-1 {top['label']!r} at {top['probability']:.3f}, model {version}"


def check_photo(settings: Settings) -> str:
    """A real photo, sent as the web UI sends it: to the site's own origin."""
    url = f"{settings.api_url}/predict"

    def post() -> Response:
        return send(
            "POST",
            url,
            settings.timeout,
            headers={"Content-Type": "image/jpeg", "Origin": settings.site_url},
            body=settings.photo,
        )

    response = with_retries(settings, "POST photo", post)
    if response.status != 200:
        raise SmokeFailure(
            f"POST {url} with a {len(settings.photo)}-byte JPEG: status {response.status}, "
            f"expected 200: {response.excerpt()!r}"
        )
    summary = check_predictions(response.json(), settings.model_version)
    no_wildcard_cors(response, f"POST {url}")
    return summary


def check_refusal(settings: Settings) -> str:
    """No image: the proxy's own JSON 400, proving errors come from our code, not a 5xx."""
    url = f"{settings.api_url}/predict"

    def post() -> Response:
        return send(
            "POST",
            url,
            settings.timeout,
            headers={"Content-Type": "application/json", "Origin": settings.site_url},
            body=b"{}",
        )

    response = with_retries(settings, "POST {}", post)
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if response.status != 400 or code != "missing_image":
        raise SmokeFailure(
            f"POST {url} with {{}}: status {response.status}, code {code!r}; "
            f"expected 400 missing_image: {response.excerpt()!r}"
        )
    no_wildcard_cors(response, f"POST {url} with {{}}")
    return "a body without an image is refused with 400 missing_image"


def check_direct_refused(settings: Settings) -> str:
    """The HTTP API's own URL, without the origin secret CloudFront adds or an API key:
    the proxy refuses before anything reaches the model."""
    assert settings.execute_api_url is not None
    url = f"{settings.execute_api_url}/predict"

    def post() -> Response:
        return send(
            "POST",
            url,
            settings.timeout,
            headers={"Content-Type": "image/jpeg"},
            body=settings.photo,
        )

    response = with_retries(settings, "POST photo directly", post)
    body = response.json() if response.body else None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    if response.status not in DIRECT_REFUSALS or DIRECT_REFUSALS[response.status] != code:
        raise SmokeFailure(
            f"POST {url} without the origin header or a key: status {response.status}, code "
            f"{code!r}; expected 403 forbidden or 401 api_key_missing: {response.excerpt()!r}"
        )
    no_wildcard_cors(response, f"POST {url}")
    return f"a direct request without a key is refused with {response.status} {code}"


CHECKS: Sequence[tuple[str, Callable[[Settings], str]]] = (
    ("config.js", check_config_js),
    ("prediction", check_photo),
    ("refusal", check_refusal),
)


def run(settings: Settings) -> int:
    annotate = os.environ.get("GITHUB_ACTIONS") == "true"
    failed = 0
    checks = [*CHECKS]
    if settings.execute_api_url is not None:
        checks.append(("direct access refused", check_direct_refused))
    for name, check in checks:
        try:
            print(f"ok   {name}: {check(settings)}")
        except SmokeFailure as failure:
            failed += 1
            print(f"{'::error::' if annotate else ''}FAIL {name}: {failure}")
    print(f"{len(checks) - failed} of {len(checks)} smoke checks passed")
    return 1 if failed else 0


def parse_args(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site-url", type=http_url, required=True, help="stack output site_url")
    parser.add_argument(
        "--api-url", type=http_url, required=True, help="stack output api_url (<site-url>/api)"
    )
    parser.add_argument(
        "--execute-api-url",
        type=http_url,
        help="stack output execute_api_url: also check that a direct call without a key fails",
    )
    parser.add_argument("--model-version", required=True, help="stack output model_version")
    parser.add_argument("--photo", type=Path, required=True, help="a JPEG to classify")
    parser.add_argument("--attempts", type=int, default=8, help="tries per retried check")
    parser.add_argument("--retry-wait", type=float, default=10.0, help="seconds between tries")
    parser.add_argument("--timeout", type=float, default=35.0, help="seconds per request")
    args = parser.parse_args(argv)
    if args.attempts < 1:
        parser.error("--attempts must be at least 1")
    if not args.model_version.strip():
        parser.error("--model-version is empty (is model_version a stack output?)")
    try:
        photo = args.photo.read_bytes()
    except OSError as error:
        parser.error(f"cannot read --photo: {error}")
    return Settings(
        site_url=args.site_url,
        api_url=args.api_url,
        model_version=args.model_version,
        photo=photo,
        execute_api_url=args.execute_api_url,
        attempts=args.attempts,
        retry_wait=args.retry_wait,
        timeout=args.timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
