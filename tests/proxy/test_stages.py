"""The HTTP API's two stages as the proxy sees them (decision 13): the site's, whose name
only CloudFront knows (its origin path), and `$default`, the direct one at the API's own URL.

A request on the direct stage without a valid key is refused by the Lambda's first check,
before any work: no botocore client is made for it, in a fresh interpreter as in Lambda.
The site stage's name never reaches a visitor or a log line.
"""

from __future__ import annotations

import json

import pytest

from proxy.access import API_KEY_HEADER
from tests.proxy.photos import encoded
from tests.proxy.support import ORIGIN_SECRET, http_event, via_cloudfront
from tests.proxy.test_access import Harness, error_of, run_init

SITE_STAGE = "q8ZrT2mVx4Lc9NwB7hK3sD1fJ6yP0aGe"
"""A site stage's name, as the stack generates one (32 letters and digits)."""


def on_stage(event: dict, stage: str) -> dict:
    """`event` as API Gateway sends it from `stage`: a named stage's segment leads the path
    (`rawPath`, `requestContext.http.path`), as API Gateway sends it; the route key has none."""
    context = event["requestContext"]
    context["stage"] = stage
    if stage != "$default":
        event["rawPath"] = f"/{stage}{event['rawPath']}"
        context["http"]["path"] = f"/{stage}{context['http']['path']}"
    return event


def site(**kwargs) -> dict:
    return on_stage(
        via_cloudfront(http_event(encoded("chelsea"), path="/api/predict", **kwargs)), SITE_STAGE
    )


def direct(**kwargs) -> dict:
    return on_stage(http_event(encoded("chelsea"), path="/api/predict", **kwargs), "$default")


@pytest.fixture
def harness(tmp_path):
    return Harness(tmp_path)


def test_the_log_says_which_way_a_request_came_never_the_stage(harness):
    assert harness.call(site())["statusCode"] == 200
    assert harness.record()["via"] == "cloudfront"
    assert error_of(harness.call(direct())) == (401, "api_key_missing")
    assert harness.record()["via"] == "execute-api"
    assert SITE_STAGE not in harness.logs.text


def test_a_wrong_method_through_the_site_names_the_public_path_not_the_stage(harness):
    response = harness.call(site(method="GET"))
    assert error_of(response) == (405, "method_not_allowed")
    message = json.loads(response["body"])["error"]["message"]
    assert message == "GET is not allowed here; use POST /api/predict."
    assert SITE_STAGE not in response["body"]


def test_the_route_is_read_past_the_stage(harness):
    event = on_stage(
        via_cloudfront(http_event(None, None, method="GET", path="/api/labels")), SITE_STAGE
    )
    # Labels, not a prediction: a prediction would answer 405 to a GET.
    assert harness.call(event)["statusCode"] != 405
    assert harness.record()["route"] == "labels"


DIRECT_REFUSALS = {
    "no header": {},
    "a wrong origin header": {"x-origin-verify": "guess" * 8},
    "a malformed key": {API_KEY_HEADER: "ick_short"},
    "an empty key": {API_KEY_HEADER: " "},
}

FRESH_LAMBDA = """
import json, sys
import boto3.session, botocore.session

made = []
create_client = botocore.session.Session.create_client
boto3_session = boto3.session.Session.__init__

def counting_client(self, *args, **kwargs):
    made.append(args[0] if args else kwargs.get("service_name"))
    return create_client(self, *args, **kwargs)

def counting_session(self, *args, **kwargs):
    made.append("boto3.Session")
    return boto3_session(self, *args, **kwargs)

botocore.session.Session.create_client = counting_client
boto3.session.Session.__init__ = counting_session

import proxy.handler  # the Lambda's init
at_init, made[:] = list(made), []
answers = [proxy.handler.handler(event, None) for event in json.load(sys.stdin)]
print(json.dumps({
    "at_init": at_init,
    "per_request": made,
    "answers": [(a["statusCode"], json.loads(a["body"])["error"]["code"]) for a in answers],
}))
"""


@pytest.mark.parametrize("keys", [True, False], ids=["api keys on", "api keys off"])
def test_the_direct_stage_refuses_before_any_work_with_no_client_made(keys):
    events = [direct(headers=headers) for headers in DIRECT_REFUSALS.values()]
    environ = {
        "ORIGIN_SECRET": ORIGIN_SECRET,
        "PREDICTIONS_TABLE": "image-classifier-dev-predictions",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://127.0.0.1:9",
    }
    if keys:
        environ["API_KEYS_PATH"] = "/image-classifier-dev/api-keys"
    result = run_init(FRESH_LAMBDA, stdin=json.dumps(events), **environ)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    # The init makes the SageMaker client once per container; a refusal makes nothing.
    assert outcome["at_init"] == ["sagemaker-runtime"]
    assert outcome["per_request"] == []
    if keys:
        expected = [(401, "api_key_missing"), (401, "api_key_missing")]
        expected += [(401, "api_key_invalid"), (401, "api_key_missing")]
    else:
        expected = [(403, "forbidden")] * len(events)
    assert [tuple(answer) for answer in outcome["answers"]] == expected
