"""Who reaches the model: CloudFront by the origin header, programs by API keys, nobody else.

Every test goes through `PredictProxy.handle` with payload 2.0 events as API Gateway sends
them, keys made with the CLI (`python -m admin.api_keys`) in a local key file, and time on a
fake clock, so a key's revocation is seen when the proxy's cache expires.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from admin.api_keys import main as api_keys_cli
from shared.api import API_KEY_HEADER, ORIGIN_HEADER
from tests.proxy.photos import encoded
from tests.proxy.support import (
    ENDPOINT,
    ORIGIN_SECRET,
    FakeClock,
    LambdaContext,
    LogLines,
    ScriptedRuntime,
    body_of,
    build_proxy,
    http_event,
    json_event,
    prediction_payload,
    via_cloudfront,
)
from tests.proxy.test_app import every_kind_of_response

ROOT = Path(__file__).resolve().parents[2]
TTL = 30.0


class Harness:
    """One proxy container (its key cache lives as long as it does) on a fake clock."""

    def __init__(self, tmp_path: Path, *, secret: str | None = ORIGIN_SECRET, keys: bool = True):
        self.clock = FakeClock()
        self.runtime = ScriptedRuntime(self.clock, [prediction_payload()])
        self.logs = LogLines()
        self.key_file = tmp_path / "api-keys.json"
        self.keys: list[str] = []
        self.responses: list[dict] = []
        config: dict = {}
        if secret is not None:
            config["origin_secret"] = secret
        if keys:
            config["api_keys_file"] = str(self.key_file)
            config["api_keys_cache_seconds"] = TTL
        self.proxy = build_proxy(self.runtime, self.clock, self.clock.sleep, **config)

    def call(self, event: dict) -> dict:
        response = self.proxy.handle(event, LambdaContext(self.clock))
        self.responses.append(response)
        return response

    def cli(self, *argv: str) -> str:
        out, err = io.StringIO(), io.StringIO()
        status = api_keys_cli([*argv, "--local", str(self.key_file)], stdout=out, stderr=err)
        assert status == 0, err.getvalue()
        return out.getvalue().strip()

    def create_key(self, name: str) -> str:
        key = self.cli("create", name)
        self.keys.append(key)
        return key

    def record(self) -> dict:
        return self.logs.records()[-1]


@pytest.fixture
def harness(tmp_path):
    return Harness(tmp_path)


@pytest.fixture
def no_keys(tmp_path):
    return Harness(tmp_path, keys=False)


def photo(**kwargs) -> dict:
    return http_event(encoded("chelsea"), path="/api/predict", **kwargs)


def with_key(event: dict, key: str) -> dict:
    event["headers"][API_KEY_HEADER] = key
    return event


def error_of(response: dict) -> tuple[int, str]:
    body = body_of(response)
    assert set(body) == {"error", "request_id"}
    assert set(body["error"]) == {"code", "message"}
    assert body["request_id"] == response["headers"]["x-request-id"]
    return response["statusCode"], body["error"]["code"]


# -- through CloudFront ---------------------------------------------------------------------


def test_through_cloudfront_the_origin_header_admits(harness):
    response = harness.call(via_cloudfront(photo()))
    assert response["statusCode"] == 200
    assert body_of(response)["predictions"][0]["label"] == "tabby"
    record = harness.record()
    assert record["access"] == "origin"
    assert "api_key" not in record
    assert "origin_header" not in record
    assert len(harness.runtime.calls) == 1


@pytest.mark.parametrize("path", ["/api/predict", "/predict"])
def test_the_proxy_serves_the_route_it_is_given(harness, path):
    """CloudFront forwards /api/predict; a stack may still route /predict on execute-api."""
    event = via_cloudfront(http_event(encoded("chelsea"), path=path))
    assert event["routeKey"] == f"POST {path}"
    assert harness.call(event)["statusCode"] == 200


@pytest.mark.parametrize("name", ["X-Origin-Verify", "X-ORIGIN-VERIFY"])
def test_a_hand_built_event_may_spell_the_header_otherwise(harness, name):
    event = photo(headers={name: ORIGIN_SECRET})
    assert harness.call(event)["statusCode"] == 200


def test_through_cloudfront_a_wrong_method_is_still_405(harness):
    response = harness.call(via_cloudfront(http_event(None, method="GET", path="/api/predict")))
    assert error_of(response) == (405, "method_not_allowed")
    assert response["headers"]["allow"] == "POST"
    assert body_of(response)["error"]["message"] == (
        "GET is not allowed here; use POST /api/predict."
    )


# -- direct calls to the execute-api URL ----------------------------------------------------


def test_a_direct_call_without_the_header_is_a_403_json_error(no_keys):
    response = no_keys.call(photo())
    assert error_of(response) == (403, "forbidden")
    assert "/api/predict" in body_of(response)["error"]["message"]
    assert response["headers"]["content-type"] == "application/json"
    assert "www-authenticate" not in response["headers"]
    assert no_keys.runtime.calls == []
    record = no_keys.record()
    assert (record["level"], record["status"], record["error"]) == ("INFO", 403, "forbidden")
    assert record["origin_header"] == "missing"
    assert "access" not in record
    assert "method" not in record  # refused before anything else is read


WRONG_SECRETS = [
    "guess",
    ORIGIN_SECRET[:-1],
    ORIGIN_SECRET + "x",
    ORIGIN_SECRET.upper(),
    f"guess,{ORIGIN_SECRET}",  # a viewer's header joined with CloudFront's
    ORIGIN_SECRET[:-1] + "é",  # compare_digest refuses non-ASCII str: never a 500
    "\ud800" * 40,
]


@pytest.mark.parametrize("value", WRONG_SECRETS)
def test_a_wrong_origin_header_is_refused(no_keys, value):
    response = no_keys.call(photo(headers={ORIGIN_HEADER: value}))
    assert error_of(response) == (403, "forbidden")
    assert no_keys.record()["origin_header"] == "wrong"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_direct_call_learns_nothing_about_methods(no_keys, method):
    response = no_keys.call(http_event(None, method=method, path="/api/predict"))
    assert error_of(response) == (403, "forbidden")
    assert "allow" not in response["headers"]


def test_an_empty_header_is_a_missing_one(no_keys):
    no_keys.call(photo(headers={ORIGIN_HEADER: "  "}))
    assert no_keys.record()["origin_header"] == "missing"


# -- API keys --------------------------------------------------------------------------------


def test_a_valid_key_admits_a_direct_call_and_its_name_is_logged(harness):
    key = harness.create_key("ci-bot")
    response = harness.call(with_key(photo(), key))
    assert response["statusCode"] == 200
    record = harness.record()
    assert (record["access"], record["api_key"]) == ("api_key", "ci-bot")
    assert record["api_keys_loaded"] == 1
    assert key not in harness.logs.text


def test_a_key_with_surrounding_spaces_is_the_key(harness):
    key = harness.create_key("ci-bot")
    assert harness.call(with_key(photo(), f"  {key} "))["statusCode"] == 200


def test_a_direct_call_without_a_key_is_a_401_with_a_challenge(harness):
    response = harness.call(photo())
    assert error_of(response) == (401, "api_key_missing")
    assert response["headers"]["www-authenticate"] == 'ApiKey header="x-api-key"'
    assert "x-api-key" in body_of(response)["error"]["message"]
    assert harness.runtime.calls == []


@pytest.mark.parametrize(
    "value",
    ["ci-bot", "Bearer ick_abc", "ick_short", "x" * 47, "ick_" + "é" * 43, "ick_" + "A" * 44],
)
def test_a_malformed_key_is_a_401(harness, value):
    response = harness.call(with_key(photo(), value))
    assert error_of(response) == (401, "api_key_invalid")
    assert response["headers"]["www-authenticate"] == 'ApiKey header="x-api-key"'
    assert "api_keys_loaded" not in harness.record()  # the store is not even read


def test_a_wrong_key_is_a_403(harness):
    real = harness.create_key("ci-bot")
    wrong = real[:-1] + ("A" if real[-1] != "A" else "B")
    response = harness.call(with_key(photo(), wrong))
    assert error_of(response) == (403, "api_key_refused")
    assert "www-authenticate" not in response["headers"]
    assert "api_key" not in harness.record()


def test_a_revoked_key_is_refused_once_the_cache_expires(harness):
    key = harness.create_key("ci-bot")
    assert harness.call(with_key(photo(), key))["statusCode"] == 200
    harness.cli("revoke", "ci-bot")
    harness.clock.now += TTL - 1
    assert harness.call(with_key(photo(), key))["statusCode"] == 200
    harness.clock.now += 1
    response = harness.call(with_key(photo(), key))
    assert error_of(response) == (403, "api_key_refused")
    assert harness.record()["api_keys_loaded"] == 0


def test_a_new_key_is_accepted_once_the_cache_expires(harness):
    harness.create_key("first")
    assert harness.call(with_key(photo(), harness.keys[0]))["statusCode"] == 200
    late = harness.create_key("late")
    assert error_of(harness.call(with_key(photo(), late))) == (403, "api_key_refused")
    harness.clock.now += TTL
    assert harness.call(with_key(photo(), late))["statusCode"] == 200


def test_keys_are_not_read_per_request(harness, monkeypatch):
    key = harness.create_key("ci-bot")
    reads = []
    original = Path.read_text
    monkeypatch.setattr(
        Path, "read_text", lambda self, **kw: reads.append(1) or original(self, **kw)
    )
    for _ in range(20):
        assert harness.call(with_key(photo(), key))["statusCode"] == 200
        harness.clock.now += 1
    assert len(reads) == 1


def test_through_cloudfront_no_key_is_needed(harness):
    harness.create_key("ci-bot")
    response = harness.call(via_cloudfront(photo()))
    assert response["statusCode"] == 200
    assert harness.record()["access"] == "origin"


def test_through_cloudfront_a_key_sent_is_still_checked(harness):
    """A revoked key is refused on every path, so its program learns it is revoked."""
    key = harness.create_key("ci-bot")
    record_of = harness.call(via_cloudfront(with_key(photo(), key)))
    assert record_of["statusCode"] == 200
    assert harness.record()["api_key"] == "ci-bot"
    harness.cli("revoke", "ci-bot")
    harness.clock.now += TTL
    response = harness.call(via_cloudfront(with_key(photo(), key)))
    assert error_of(response) == (403, "api_key_refused")


def test_with_keys_off_a_key_is_ignored_and_opens_nothing(no_keys, tmp_path):
    out = io.StringIO()
    assert api_keys_cli(["create", "ci-bot", "--local", str(tmp_path / "k.json")], stdout=out) == 0
    someone_elses = out.getvalue().strip()
    admitted = no_keys.call(via_cloudfront(with_key(photo(), someone_elses)))
    assert admitted["statusCode"] == 200
    assert no_keys.record()["access"] == "origin"
    refused = no_keys.call(with_key(photo(), someone_elses))
    assert error_of(refused) == (403, "forbidden")


def test_without_a_secret_every_request_is_admitted_but_a_key_sent_is_checked(tmp_path):
    """ORIGIN_SECRET unset: local runs and tests. The log line says the check was off."""
    harness = Harness(tmp_path, secret=None)
    assert harness.call(photo())["statusCode"] == 200
    assert harness.record()["access"] == "open"
    assert error_of(harness.call(with_key(photo(), "ick_" + "A" * 43))) == (
        403,
        "api_key_refused",
    )


def test_an_unreadable_key_store_is_a_503_to_try_again(harness):
    harness.key_file.write_text("{ not json")
    response = harness.call(with_key(photo(), "ick_" + "A" * 43))
    assert error_of(response) == (503, "api_keys_unavailable")
    assert response["headers"]["retry-after"] == "5"
    record = harness.record()
    assert record["level"] == "WARNING"
    assert "is not an API key file" in record["detail"]
    # CloudFront's requests do not depend on the store.
    assert harness.call(via_cloudfront(photo()))["statusCode"] == 200


def test_a_store_failing_after_a_load_serves_the_last_keys_for_one_more_ttl(harness):
    key = harness.create_key("ci-bot")
    assert harness.call(with_key(photo(), key))["statusCode"] == 200
    harness.key_file.write_text("{ not json")
    harness.clock.now += TTL
    assert harness.call(with_key(photo(), key))["statusCode"] == 200
    record = harness.record()
    assert record["api_keys_stale_s"] == TTL
    assert "is not an API key file" in record["api_keys_error"]
    harness.clock.now += TTL
    assert error_of(harness.call(with_key(photo(), key))) == (503, "api_keys_unavailable")


# -- what stays the same, and what never shows ---------------------------------------------


def answer(response: dict) -> tuple:
    body = body_of(response)
    body.pop("request_id")
    return response["statusCode"], body


@pytest.mark.parametrize("index", range(len(every_kind_of_response()) - 1))
def test_bad_input_gets_the_same_answer_behind_the_origin_header(tmp_path, index):
    """Admitted, every request is answered as before the check existed (the last event of
    the list has no headers at all, so it cannot carry the origin header)."""
    open_proxy = Harness(tmp_path / "open", secret=None, keys=False)
    deployed = Harness(tmp_path / "deployed")
    expected = open_proxy.call(every_kind_of_response()[index])
    actual = deployed.call(via_cloudfront(every_kind_of_response()[index]))
    assert answer(actual) == answer(expected)


JUNK = [None, "", "x", 0, 1.5, [], {}, ["x"], {"x": 1}, b"bytes"]
MUTATIONS = [
    lambda event, junk: junk,
    lambda event, junk: {**event, "headers": junk},
    lambda event, junk: {**event, "headers": {**event["headers"], ORIGIN_HEADER: junk}},
    lambda event, junk: {**event, "headers": {**event["headers"], API_KEY_HEADER: junk}},
    lambda event, junk: {**event, "requestContext": junk},
]


@pytest.mark.parametrize("seed", range(100))
def test_junk_events_never_get_a_500(tmp_path, seed):
    rng = random.Random(seed)
    harness = Harness(tmp_path, keys=rng.random() < 0.5)
    event = via_cloudfront(photo()) if rng.random() < 0.5 else photo()
    for mutate in rng.sample(MUTATIONS, rng.randint(1, 3)):
        if isinstance(event, dict) and isinstance(event.get("headers"), dict):
            event = mutate(event, rng.choice(JUNK))
    response = harness.call(event)
    assert response["statusCode"] < 500, body_of(response)


def test_the_secret_and_the_keys_never_appear_in_logs_or_answers(tmp_path):
    harness = Harness(tmp_path)
    key = harness.create_key("ci-bot")
    revoked = harness.create_key("old")
    harness.cli("revoke", "old")
    events = [
        via_cloudfront(photo()),
        via_cloudfront(http_event(None, method="GET", path="/api/predict")),
        via_cloudfront(http_event("plain", "text/plain", path="/api/predict")),
        via_cloudfront(json_event({"image": "!!"}, path="/api/predict")),
        photo(headers={ORIGIN_HEADER: ORIGIN_SECRET[:-1]}),
        photo(headers={ORIGIN_HEADER: ORIGIN_SECRET[:-1] + "é"}),
        with_key(photo(), key),
        with_key(photo(), revoked),
        with_key(photo(), key[:-2]),
        with_key(via_cloudfront(photo()), key),
        photo(),
    ]
    for event in events:
        harness.call(event)
    harness.runtime.script = [ZeroDivisionError("a bug")]
    harness.call(via_cloudfront(photo()))
    harness.call(with_key(photo(), key))
    harness.key_file.write_text("{ broken")
    harness.clock.now += 3 * TTL
    harness.call(with_key(photo(), key))

    statuses = [r["statusCode"] for r in harness.responses]
    assert {200, 401, 403, 405, 415, 400, 500, 503} <= set(statuses)
    answers = json.dumps(harness.responses)
    for secret in (ORIGIN_SECRET, key, revoked, key[12:], key[:-2]):
        assert secret not in harness.logs.text
        assert secret not in answers
    assert [r["api_key"] for r in harness.logs.records() if "api_key" in r] == [
        "ci-bot",
        "ci-bot",
        "ci-bot",
    ]
    assert any("traceback" in r for r in harness.logs.records())


# -- the Lambda's init -----------------------------------------------------------------------


def run_init(code: str, stdin: str | None = None, **environ: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "SAGEMAKER_ENDPOINT_NAME": ENDPOINT,
        **environ,
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_the_key_store_is_not_loaded_at_init_nor_by_keyless_requests():
    code = (
        "import json, sys, proxy.handler as h\n"
        "h.PROXY.access.admit(json.load(sys.stdin))\n"
        "print('proxy.api_keys' in sys.modules)\n"
    )
    result = run_init(
        code,
        json.dumps(via_cloudfront(http_event(b"x"))),
        ORIGIN_SECRET=ORIGIN_SECRET,
        API_KEYS_PATH="/image-classifier-dev/api-keys",
    )
    assert result.stdout == "False\n"


def test_on_aws_a_function_without_the_secret_says_so_at_init():
    code = "import proxy.handler"
    warned = run_init(code, AWS_EXECUTION_ENV="AWS_Lambda_python3.12")
    (line,) = warned.stdout.splitlines()
    assert json.loads(line) == {
        "level": "WARNING",
        "event": "origin_check_off",
        "message": "ORIGIN_SECRET is not set: every request is admitted",
    }
    assert run_init(code, AWS_EXECUTION_ENV="x", ORIGIN_SECRET=ORIGIN_SECRET).stdout == ""
    # The local runtime and tests run without the secret, and without the warning.
    assert run_init(code).stdout == ""


# -- rotating the origin secret ---------------------------------------------------------------

PREVIOUS_SECRET = "pR3v10usS3cretOfTheLastRotationXy7-_"


@pytest.fixture
def rotating(tmp_path):
    """A proxy during a rotation: CloudFront sends the new secret, or still the previous."""
    harness = Harness(tmp_path, keys=False)
    harness.proxy = build_proxy(
        harness.runtime,
        harness.clock,
        harness.clock.sleep,
        origin_secret=ORIGIN_SECRET,
        origin_secret_previous=PREVIOUS_SECRET,
    )
    return harness


def test_during_a_rotation_both_secrets_are_admitted(rotating):
    assert rotating.call(via_cloudfront(photo()))["statusCode"] == 200
    assert rotating.record()["access"] == "origin"
    assert "origin_secret" not in rotating.record()
    assert rotating.call(via_cloudfront(photo(), PREVIOUS_SECRET))["statusCode"] == 200
    # The runbook's sign that an edge still sends the previous one.
    assert (rotating.record()["access"], rotating.record()["origin_secret"]) == (
        "origin",
        "previous",
    )
    for secret in (ORIGIN_SECRET, PREVIOUS_SECRET):
        assert secret not in rotating.logs.text


@pytest.mark.parametrize(
    "third",
    [
        "Zq3v9Xb1LkP0sW7tYc2NfR8mHd5GjA4eUo6iTx_+",
        PREVIOUS_SECRET[:-1],
        f"{ORIGIN_SECRET},{PREVIOUS_SECRET}",
    ],
)
def test_during_a_rotation_a_third_secret_is_refused(rotating, third):
    assert error_of(rotating.call(via_cloudfront(photo(), third))) == (403, "forbidden")
    assert rotating.record()["origin_header"] == "wrong"


def test_every_secret_is_compared_in_constant_time_whichever_matches(rotating, monkeypatch):
    import proxy.access

    compared = []
    real = proxy.access.hmac.compare_digest

    def recording(presented, secret):
        compared.append(secret)
        return real(presented, secret)

    monkeypatch.setattr(proxy.access.hmac, "compare_digest", recording)
    for sent in (ORIGIN_SECRET, PREVIOUS_SECRET, "a-guess-" * 5):
        compared.clear()
        rotating.call(via_cloudfront(photo(), sent))
        # Both, each time: which one matched takes no less time than a miss.
        assert compared == [ORIGIN_SECRET.encode(), PREVIOUS_SECRET.encode()]
