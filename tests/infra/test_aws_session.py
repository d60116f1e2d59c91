"""The dynamic providers act with the stack's AWS settings, in the stack's account only.

moto plays STS: a profile with `role_arn` and an `aws:assumeRoles` chain lead into other
accounts (moto answers `GetCallerIdentity` with the assumed role's account), so a session
that ignored them would be caught by the account check.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from components.aws_session import WrongAccountError, checked_session
from components.cloudfront_invalidation import CloudFrontInvalidationProvider
from components.endpoint_rollout import PROVIDER_VERSION, EndpointRolloutProvider, RolloutError
from components.stack_config import StackConfigError, load_settings
from tests.infra.conftest import ACCOUNT, PROJECT, REGION, ROOT, FakeClock, stack_config

MOTO_ACCOUNT = "123456789012"
OTHER_ACCOUNT = "999999999999"
DYNAMIC = "pulumi-python:dynamic/"


def spec(account: str = MOTO_ACCOUNT, profile: str | None = None, roles=()) -> dict:
    """An `aws` input as the engine hands it to a provider."""
    return {
        "region": REGION,
        "profile": profile,
        "assume_roles": list(roles),
        "account_id": account,
    }


@pytest.fixture
def aws(monkeypatch, tmp_path: Path):
    """moto, default credentials in the environment, and a profile `deploy` that assumes a
    role in account 222222222222 from profile `base`."""
    for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    (tmp_path / "config").write_text(
        "[profile deploy]\n"
        "role_arn = arn:aws:iam::222222222222:role/deployer\n"
        "source_profile = base\n"
    )
    (tmp_path / "credentials").write_text(
        "[base]\naws_access_key_id = AKIABASEEXAMPLE\naws_secret_access_key = base\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    with mock_aws():
        yield


def test_the_default_chain_in_the_stacks_account_is_accepted(aws):
    session = checked_session(spec())
    assert session.region_name == REGION
    assert session.client("sts").get_caller_identity()["Account"] == MOTO_ACCOUNT


def test_the_profile_is_honoured(aws):
    session = checked_session(spec("222222222222", profile="deploy"))
    identity = session.client("sts").get_caller_identity()
    assert identity["Arn"].startswith("arn:aws:sts::222222222222:assumed-role/deployer/")


def test_assumed_roles_are_taken_in_turn_with_their_session_name(aws):
    roles = [
        {"role_arn": "arn:aws:iam::111111111111:role/hop", "external_id": "ext-id-1"},
        {"role_arn": "arn:aws:iam::333333333333:role/deployer", "session_name": "ci-deploy"},
    ]
    session = checked_session(spec("333333333333", roles=roles))
    identity = session.client("sts").get_caller_identity()
    assert identity["Arn"] == "arn:aws:sts::333333333333:assumed-role/deployer/ci-deploy"


@pytest.mark.parametrize(
    ("profile", "roles"),
    [(None, ()), ("deploy", ()), (None, [{"role_arn": "arn:aws:iam::111111111111:role/x"}])],
)
def test_a_session_in_another_account_is_refused_with_what_to_set(aws, profile, roles):
    with pytest.raises(WrongAccountError) as refused:
        checked_session(spec(OTHER_ACCOUNT, profile=profile, roles=roles))
    message = str(refused.value)
    assert f"deploys to account {OTHER_ACCOUNT}" in message
    assert "aws:profile" in message
    assert "aws:assumeRoles" in message


def test_the_rollout_refuses_another_account_before_any_call(aws):
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    props = {
        "endpoint_name": "image-classifier-test",
        "endpoint_config_name": "image-classifier-test-config",
        "region": REGION,
        "timeout_seconds": 60.0,
        "poll_seconds": 15.0,
        "version": PROVIDER_VERSION,
        "aws": spec(OTHER_ACCOUNT),
    }
    clock = FakeClock()
    provider = EndpointRolloutProvider(sleep=clock.sleep, clock=clock, log=lambda _: None)
    with pytest.raises(WrongAccountError):
        provider.create(props)
    with pytest.raises(WrongAccountError):
        provider.delete("image-classifier-test", props)
    assert sagemaker.list_endpoints()["Endpoints"] == []


def test_the_invalidation_refuses_another_account_before_any_call(aws):
    props = {
        "distribution_id": "E111111ABCDEF8",
        "content_hash": "a" * 64,
        "paths": ["/config.js"],
        "wait": False,
        "timeout_seconds": 900.0,
        "poll_seconds": 10.0,
        "version": "3",
        "aws": spec(OTHER_ACCOUNT),
    }
    with pytest.raises(WrongAccountError):
        CloudFrontInvalidationProvider().create(props)


def test_a_rollout_state_without_its_account_is_refused_with_what_to_do():
    def no_session(aws):
        raise AssertionError("no AWS call without knowing the account")

    old_state = {
        "endpoint_name": "image-classifier-test",
        "endpoint_config_name": "image-classifier-test-config",
        "region": REGION,
        "timeout_seconds": 60.0,
        "poll_seconds": 15.0,
        "version": "1",
    }
    provider = EndpointRolloutProvider(session_factory=no_session)
    with pytest.raises(RolloutError, match=r"run `pulumi up` once to record it"):
        provider.delete("image-classifier-test", old_state)
    with pytest.raises(RolloutError, match=r"run `pulumi up` once to record it"):
        provider.read("image-classifier-test", old_state)


def test_a_changed_session_updates_the_stored_one(aws):
    """Delete and refresh use the stored `aws`: a change must reach the state."""
    olds = {"endpoint_name": "e", "endpoint_config_name": "c", "region": REGION, "aws": spec()}
    news = {**olds, "aws": spec(profile="deploy")}
    diff = EndpointRolloutProvider().diff("e", olds, news)
    assert diff.changes
    assert not diff.replaces
    assert CloudFrontInvalidationProvider().diff("I1", olds, news).changes


# -- the stack passes its settings -------------------------------------------------------

ROLES = [
    {"roleArn": "arn:aws:iam::111111111111:role/deployer", "sessionName": "ci", "externalId": "x1"}
]


def test_every_dynamic_resource_gets_the_stacks_aws_settings_and_account(run_stack):
    secret = "never-in-state-0123456789"
    run = run_stack(
        {
            "aws:profile": "deploy",
            "aws:assumeRoles": json.dumps(ROLES),
            "aws:accessKey": "AKIAEXAMPLE",
            "aws:secretKey": secret,
        }
    )
    assert run.error is None, run.error
    dynamic = [r for r in run.resources if r.type.startswith(DYNAMIC)]
    assert {r.type.split(":")[-1] for r in dynamic} >= {"EndpointRollout", "CloudFrontInvalidation"}
    for resource in dynamic:
        assert resource.inputs["aws"] == {
            "region": REGION,
            "profile": "deploy",
            "assume_roles": [
                {
                    "role_arn": "arn:aws:iam::111111111111:role/deployer",
                    "session_name": "ci",
                    "external_id": "x1",
                }
            ],
            "account_id": ACCOUNT,
        }, resource.name
        assert secret not in json.dumps(resource.inputs), resource.name


def test_without_aws_settings_the_default_chain_is_used_in_the_stacks_account(dev_stack):
    for resource in (r for r in dev_stack.resources if r.type.startswith(DYNAMIC)):
        aws = resource.inputs["aws"]
        assert aws["region"] == REGION, resource.name
        assert aws["account_id"] == ACCOUNT, resource.name
        assert not aws.get("profile"), resource.name
        assert aws["assume_roles"] == [], resource.name


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"aws:assumeRole": json.dumps({"roleArn": ROLES[0]["roleArn"]})},
            r"aws:assumeRole: pulumi-aws 7 reads aws:assumeRoles",
        ),
        ({"aws:assumeRoles": "not json"}, r"aws:assumeRoles: .*a list of roles"),
        ({"aws:assumeRoles": json.dumps([{"sessionName": "x"}])}, r"\[0\]\.roleArn: .*set"),
        (
            {"aws:assumeRoles": json.dumps([{"roleArn": "arn:aws:iam::1:user/me"}])},
            r"aws:assumeRoles\[0\]\.roleArn: 'arn:aws:iam::1:user/me' is not a role ARN",
        ),
        (
            {"aws:assumeRoles": json.dumps([{**ROLES[0], "policyArns": ["arn:aws:iam::x"]}])},
            r"aws:assumeRoles\[0\]: policyArns is not supported by the dynamic providers",
        ),
    ],
)
def test_aws_settings_the_dynamic_providers_cannot_follow_are_refused(overrides, expected):
    with pytest.raises(StackConfigError, match=expected):
        load_settings(stack_config() | overrides, PROJECT, "dev", ROOT)


def test_aws_settings_are_read():
    config = stack_config() | {
        "aws:profile": "deploy",
        "aws:assumeRoles": json.dumps(
            [*ROLES, {"roleArn": "arn:aws:iam::222222222222:role/b", "duration": "2h"}]
        ),
    }
    settings = load_settings(config, PROJECT, "dev", ROOT).aws_session
    assert settings == {
        "profile": "deploy",
        "assume_roles": [
            {
                "role_arn": "arn:aws:iam::111111111111:role/deployer",
                "session_name": "ci",
                "external_id": "x1",
            },
            {"role_arn": "arn:aws:iam::222222222222:role/b"},
        ],
    }
