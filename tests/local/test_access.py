"""API keys over real HTTP: `python -m local --api-keys FILE` with keys made by the real
`python -m admin.api_keys`, as a developer follows the startup message.

The direct port is the execute-api stand-in; the key cache lives 1 s here
(`API_KEYS_CACHE_SECONDS=1`), so a revoked key must be refused within about that.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from local.process import LocalRuntime, local_runtime
from tests.conftest import ROOT
from tests.local.test_api_errors import assert_error, photo_jpeg

pytestmark = pytest.mark.slow

CACHE_SECONDS = 1.0


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys") / "api-keys.json"


@pytest.fixture(scope="module")
def runtime(model_artifact: Path, key_file: Path) -> Iterator[LocalRuntime]:
    with local_runtime(
        model_artifact,
        ["--api-keys", str(key_file)],
        env={"API_KEYS_CACHE_SECONDS": str(CACHE_SECONDS)},
    ) as running:
        yield running


def key_command(runtime: LocalRuntime, verb: str, name: str) -> list[str]:
    """The command the startup message prints, with `verb` and `name` filled in."""
    match = re.search(r"^API keys\s+.*add one: (.+)$", runtime.output, re.M)
    assert match, runtime.output
    command = shlex.split(match.group(1))
    assert command[1:5] == ["-m", "admin.api_keys", "create", "NAME"], command
    return [command[0], "-m", "admin.api_keys", verb, name, *command[5:]]


def keys(runtime: LocalRuntime, verb: str, name: str) -> str:
    done = subprocess.run(
        key_command(runtime, verb, name), cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def direct(runtime: LocalRuntime, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{runtime.direct_url}/predict",
        content=photo_jpeg(),
        headers={"content-type": "image/jpeg", **headers},
        timeout=30,
    )


def test_the_startup_message_says_keys_are_on_and_where(runtime, key_file):
    assert re.search(r"^API\s+http://\S+/api/predict \(.*x-api-key", runtime.output, re.M)
    assert re.search(
        rf"^API keys\s+{re.escape(str(key_file))} \(no keys yet\)", runtime.output, re.M
    )


def test_a_direct_call_without_a_key_is_asked_for_one(runtime):
    body = assert_error(direct(runtime), 401, "api_key_missing")
    assert "x-api-key" in body["error"]["message"]
    assert direct(runtime).headers["www-authenticate"] == 'ApiKey header="x-api-key"'


def test_a_malformed_key_is_invalid(runtime):
    assert_error(direct(runtime, **{"x-api-key": "hunter2"}), 401, "api_key_invalid")


def test_a_created_key_works_and_a_revoked_one_is_refused_within_the_cache_time(runtime):
    key = keys(runtime, "create", "ci-bot")
    assert re.fullmatch(r"ick_[A-Za-z0-9_-]{43}", key)

    admitted = direct(runtime, **{"x-api-key": key})
    assert admitted.status_code == 200, admitted.text
    assert len(admitted.json()["predictions"]) == 5
    request_id = admitted.json()["request_id"]
    assert runtime.logged(request_id)
    line = next(line for line in runtime.lines if request_id in line)
    assert '"api_key": "ci-bot"' in line
    assert key not in runtime.output, "a key is never logged"

    # Well-formed but not in the store: refused, not invalid.
    assert_error(direct(runtime, **{"x-api-key": "ick_" + "A" * 43}), 403, "api_key_refused")

    keys(runtime, "revoke", "ci-bot")
    revoked = time.monotonic()
    while (answer := direct(runtime, **{"x-api-key": key})).status_code == 200:
        assert time.monotonic() - revoked < CACHE_SECONDS + 2, "still admitted"
        time.sleep(0.1)
    assert_error(answer, 403, "api_key_refused")
    print(f"revoked key refused after {time.monotonic() - revoked:.2f} s")
    # A sent key is checked on every path: through the site too.
    through_site = httpx.post(
        f"{runtime.api_url}/predict",
        content=photo_jpeg(),
        headers={"content-type": "image/jpeg", "x-api-key": key},
        timeout=30,
    )
    assert_error(through_site, 403, "api_key_refused")


def test_the_site_needs_no_key(runtime):
    response = httpx.post(
        f"{runtime.api_url}/predict",
        content=photo_jpeg(),
        headers={"content-type": "image/jpeg"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
