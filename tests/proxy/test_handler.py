"""`proxy.handler` as Lambda loads it: config and client at import, then `handler(event, ctx)`."""

import importlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from admin.api_keys import main as api_keys_cli
from proxy.sagemaker import RuntimeClients
from tests.proxy.photos import encoded
from tests.proxy.support import (
    ENDPOINT,
    ORIGIN_SECRET,
    LambdaContext,
    body_of,
    http_event,
    prediction_payload,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def handler_module(aws_env):
    sys.modules.pop("proxy.handler", None)
    module = importlib.import_module("proxy.handler")
    yield module
    sys.modules.pop("proxy.handler", None)


def test_handler_serves_a_request_with_its_cold_start_client(handler_module):
    client = handler_module.PROXY.invoker.clients(20.0)
    data = prediction_payload()
    with Stubber(client) as stubber:
        stubber.add_response(
            "invoke_endpoint", {"Body": StreamingBody(io.BytesIO(data), len(data))}
        )
        response = handler_module.handler(
            http_event(encoded("chelsea")), LambdaContext(time.monotonic)
        )
    assert response["statusCode"] == 200
    assert body_of(response)["needs_review"] is True


def test_log_level_and_stdout_come_from_the_environment(aws_env, capsys, caplog):
    aws_env.setenv("LOG_LEVEL", "warning")
    sys.modules.pop("proxy.handler", None)
    try:
        handler = importlib.import_module("proxy.handler").handler
    finally:
        sys.modules.pop("proxy.handler", None)
    handler(http_event(None, method="GET"), LambdaContext(time.monotonic))
    no_time = LambdaContext(time.monotonic, timeout_ms=1_500)
    assert handler(http_event(encoded("chelsea")), no_time)["statusCode"] == 503
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert (record["level"], record["event"], record["status"]) == ("WARNING", "request", 503)
    assert (record["attempts"], record["failures"]) == (0, [])
    assert record["detail"] == "deadline reached before a call"
    # Not passed on to the root logger, which the local runtime prints to stderr.
    assert caplog.records == []


def test_the_cold_start_client_exists_before_the_first_request(handler_module, aws_env):
    clients = handler_module.PROXY.invoker.clients

    def create_client(*_args, **_kwargs):
        raise AssertionError("a client was made after the init")

    aws_env.setattr(clients.session, "create_client", create_client)
    assert clients(20.0).meta.config.read_timeout == 20.0


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, "SAGEMAKER_ENDPOINT_NAME"),
        ({"REVIEW_THRESHOLD": "2"}, "REVIEW_THRESHOLD"),
        # Local files, which only the local runtime supplies the stores for.
        ({"PREDICTIONS_FILE": "/tmp/predictions.sqlite3"}, "PREDICTIONS_FILE"),
        ({"API_KEYS_FILE": "/tmp/api-keys.json"}, "API_KEYS_FILE"),
    ],
)
def test_a_misconfigured_function_fails_its_init_naming_the_variable(environ, variable):
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "eu-west-1", **environ}
    if variable != "SAGEMAKER_ENDPOINT_NAME":
        env["SAGEMAKER_ENDPOINT_NAME"] = ENDPOINT
    result = subprocess.run(
        [sys.executable, "-c", "import proxy.handler"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    log = json.loads(result.stdout.splitlines()[0])
    assert log["level"] == "ERROR"
    assert log["event"] == "invalid_configuration"
    assert log["message"].startswith(variable)
    assert f"ConfigError: {variable}" in result.stderr


def test_clients_have_our_timeouts_and_no_hidden_retries(aws_env):
    client = RuntimeClients(read_timeout=20.0, connect_timeout=2.0)(20.0)
    config = client.meta.config
    assert (config.read_timeout, config.connect_timeout) == (20.0, 2.0)
    assert config.retries["total_max_attempts"] == 1
    assert client.meta.region_name == "eu-west-1"


def test_clients_follow_aws_endpoint_url_sagemaker_runtime(aws_env):
    aws_env.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "http://127.0.0.1:8080")
    client = RuntimeClients(read_timeout=20.0, connect_timeout=2.0)(20.0)
    assert client.meta.endpoint_url == "http://127.0.0.1:8080"


def test_shorter_read_timeouts_get_their_own_cached_client(aws_env):
    clients = RuntimeClients(read_timeout=20.0, connect_timeout=2.0)
    usual = clients(20.0)
    assert clients(25.0) is usual
    short = clients(7.9)
    assert short.meta.config.read_timeout == 7.0
    assert clients(7.2) is short
    assert clients(0.3).meta.config.read_timeout == 1.0


def test_the_deployed_handler_admits_a_key_from_ssm_and_refuses_a_direct_call(aws_env):
    """As deployed: ORIGIN_SECRET and API_KEYS_PATH set, keys made with the CLI in SSM."""
    path = "/image-classifier-dev/api-keys"
    aws_env.setenv("ORIGIN_SECRET", ORIGIN_SECRET)
    aws_env.setenv("API_KEYS_PATH", path)
    out = io.StringIO()
    with mock_aws():
        created = api_keys_cli(
            ["create", "ci-bot", "--ssm-path", path, "--region", "eu-west-1"], stdout=out
        )
        assert created == 0
        key = out.getvalue().strip()
        sys.modules.pop("proxy.handler", None)
        try:
            module = importlib.import_module("proxy.handler")
        finally:
            sys.modules.pop("proxy.handler", None)
        clients = module.PROXY.invoker.clients
        made: list[str] = []
        create_client = clients.session.create_client

        def recorded(service_name, *args, **kwargs):
            made.append(service_name)
            return create_client(service_name, *args, **kwargs)

        aws_env.setattr(clients.session, "create_client", recorded)
        client = clients(20.0)
        data = prediction_payload()
        direct = http_event(encoded("chelsea"), path="/api/predict")
        with Stubber(client) as stubber:
            stubber.add_response(
                "invoke_endpoint", {"Body": StreamingBody(io.BytesIO(data), len(data))}
            )
            keyed = dict(direct, headers={**direct["headers"], "x-api-key": key})
            assert module.handler(keyed, LambdaContext(time.monotonic))["statusCode"] == 200
            refused = module.handler(direct, LambdaContext(time.monotonic))
    assert refused["statusCode"] == 401
    assert body_of(refused)["error"]["code"] == "api_key_missing"
    # The SSM client came from the container's session, the SageMaker client's.
    assert made == ["ssm"]
