"""`EndpointRollout` with real boto3: moto where it implements the calls, botocore's
`Stubber` (request and response shapes checked against the SageMaker API model) for the
status sequences moto cannot play (it has no update_endpoint; endpoints are InService
at once). A fake clock makes every wait instant."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import boto3
import dill
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from pulumi.dynamic.dynamic import serialize_provider

from components.aws_session import WrongAccountError
from components.endpoint_rollout import (
    ENDPOINT_TAG,
    PROVIDER_VERSION,
    EndpointCleanupProvider,
    EndpointRolloutProvider,
    RolloutError,
    RolloutTimeoutError,
)
from tests.infra.conftest import FakeClock, FakeSession, aws_input

REGION = "eu-west-1"
NAME = "image-classifier-test"
ARN_BASE = f"arn:aws:sagemaker:{REGION}:123456789012"
ARN = f"{ARN_BASE}:endpoint/{NAME}"
# The serving image a model names, by digest as ServingImage pushes it.
IMAGE = f"123456789012.dkr.ecr.{REGION}.amazonaws.com/{NAME}-serving@sha256:" + "5e" * 32
PREFIX = f"{NAME[:20]}-"
"""Configs are named `<endpoint, 20 characters>-<version>-<suffix>` (`InferenceEndpoint`)."""
NAME_FILTER = NAME[:20]
"""What every endpoint that may use one of those configs has in its name: the stack's."""
OLD, NEW = f"{PREFIX}aaaaaaaaaaaa-111111", f"{PREFIX}bbbbbbbbbbbb-222222"
OLD_MODEL, NEW_MODEL = "model-old", "model-new"
BUCKET = "model-artifacts-0a1b2c3"
ARCHIVE = {
    OLD_MODEL: f"s3://{BUCKET}/models/aaaaaaaaaaaa/model.tar.gz",
    NEW_MODEL: f"s3://{BUCKET}/models/bbbbbbbbbbbb/model.tar.gz",
}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
POLL = 15


TAGS = {"project": "image-classifier", "stack": "test", "managed-by": "pulumi"}
"""The stack's tags (`StackSettings.tags`), which the endpoint carries like the rest."""


def props(config: str = NEW, timeout: int = 3600, tags: dict | None = None) -> dict:
    # As the engine hands them over: numbers are floats.
    return {
        "endpoint_name": NAME,
        "endpoint_config_name": config,
        "config_name_prefix": PREFIX,
        "region": REGION,
        "timeout_seconds": float(timeout),
        "poll_seconds": float(POLL),
        "version": PROVIDER_VERSION,
        "aws": aws_input(REGION),
        "tags": TAGS if tags is None else tags,
    }


def as_tag_list(tags: dict) -> list[dict]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def provider_for(client, s3, clock: FakeClock, log: list[str]) -> EndpointRolloutProvider:
    return EndpointRolloutProvider(
        session_factory=lambda aws: FakeSession(sagemaker=client, s3=s3),
        sleep=clock.sleep,
        clock=clock,
        log=log.append,
    )


# -- Stubber scenarios ---------------------------------------------------------------------


def _client(service: str):
    return boto3.client(
        service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


class Script:
    """Real SageMaker and S3 clients whose every call must match the scripted sequence."""

    def __init__(self) -> None:
        self.client = _client("sagemaker")
        self.stub = Stubber(self.client)
        self.s3 = _client("s3")
        self.s3_stub = Stubber(self.s3)
        self.clock = FakeClock()
        self.log: list[str] = []
        self.provider = provider_for(self.client, self.s3, self.clock, self.log)

    def described(self, status, config, *, reason=None, modified=T0):
        response = {
            "EndpointName": NAME,
            "EndpointArn": ARN,
            "EndpointConfigName": config,
            "EndpointStatus": status,
            "CreationTime": T0,
            "LastModifiedTime": modified,
        }
        if reason:
            response["FailureReason"] = reason
        self.stub.add_response("describe_endpoint", response, {"EndpointName": NAME})

    def missing(self):
        self.stub.add_client_error(
            "describe_endpoint",
            "ValidationException",
            f"Could not find endpoint '{ARN}'.",
            expected_params={"EndpointName": NAME},
        )

    def create(self, config=NEW):
        self.stub.add_response(
            "create_endpoint",
            {"EndpointArn": ARN},
            {"EndpointName": NAME, "EndpointConfigName": config, "Tags": as_tag_list(TAGS)},
        )

    def tagged(self, added: dict, removed: list[str]):
        if added:
            params = {"ResourceArn": ARN, "Tags": as_tag_list(added)}
            self.stub.add_response("add_tags", {"Tags": as_tag_list(added)}, params)
        if removed:
            params = {"ResourceArn": ARN, "TagKeys": removed}
            self.stub.add_response("delete_tags", {}, params)

    def update(self, config=NEW):
        self.stub.add_response(
            "update_endpoint",
            {"EndpointArn": ARN},
            {"EndpointName": NAME, "EndpointConfigName": config},
        )

    def delete(self):
        self.stub.add_response("delete_endpoint", {}, {"EndpointName": NAME})

    def config(self, name, model):
        self.stub.add_response(
            "describe_endpoint_config",
            {
                "EndpointConfigName": name,
                "EndpointConfigArn": f"{ARN_BASE}:endpoint-config/{name}",
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": model,
                        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2},
                    }
                ],
                "CreationTime": T0,
            },
            {"EndpointConfigName": name},
        )

    def endpoints(self, *configs):
        """ListEndpoints of the stack's endpoint names (`NAME_FILTER`), then DescribeEndpoint
        of each: the configs in use."""
        names = [NAME if i == 0 else f"{NAME}-{i}" for i in range(len(configs))]
        self.stub.add_response(
            "list_endpoints",
            {
                "Endpoints": [
                    {
                        "EndpointName": name,
                        "EndpointArn": f"{ARN}{name[len(NAME) :]}",
                        "CreationTime": T0,
                        "LastModifiedTime": T0,
                        "EndpointStatus": "InService",
                    }
                    for name in names
                ]
            },
            {"NameContains": NAME_FILTER},
        )
        for name, config in zip(names, configs, strict=True):
            response = {
                "EndpointName": name,
                "EndpointArn": f"{ARN}{name[len(NAME) :]}",
                "EndpointConfigName": config,
                "EndpointStatus": "InService",
                "CreationTime": T0,
                "LastModifiedTime": T0,
            }
            self.stub.add_response("describe_endpoint", response, {"EndpointName": name})

    def listed(self, *configs):
        """ListEndpointConfigs of the endpoint's name prefix: where it looks for leftovers."""
        self.stub.add_response(
            "list_endpoint_configs",
            {
                "EndpointConfigs": [
                    {
                        "EndpointConfigName": config,
                        "EndpointConfigArn": f"{ARN_BASE}:endpoint-config/{config}",
                        "CreationTime": T0,
                    }
                    for config in configs
                ]
            },
            {"NameContains": PREFIX},
        )

    def retire(self, config, model, *, keep=None, kept_model=None):
        """`config` and then its model go, once nothing uses them; what `keep` (the config
        now active) uses is looked up first and stays. No archive is ever deleted (no S3
        call is scripted: the S3 Stubber would refuse one)."""
        self.listed(config, *([keep] if keep else []))
        self.endpoints(*([keep] if keep else []))
        if keep:
            self.config(keep, kept_model)
        self.config(config, model)
        self.stub.add_response("delete_endpoint_config", {}, {"EndpointConfigName": config})
        self.stub.add_response("delete_model", {}, {"ModelName": model})

    def retire_old(self, active=NEW):
        """The previous config and its model go, once nothing uses them."""
        self.retire(OLD, OLD_MODEL, keep=active, kept_model=NEW_MODEL)


@pytest.fixture
def script():
    script = Script()
    with script.stub, script.s3_stub:
        yield script
        script.stub.assert_no_pending_responses()
        script.s3_stub.assert_no_pending_responses()


def test_create_waits_from_creating_to_in_service(script):
    script.missing()
    script.create()
    script.described("Creating", NEW)
    script.described("Creating", NEW)
    script.described("InService", NEW)
    script.listed(NEW)  # nothing left behind to retire
    result = script.provider.create(props())
    assert result.id == NAME
    assert result.outs["endpoint_arn"] == ARN
    assert result.outs["endpoint_config_name"] == NEW
    assert result.outs["endpoint_status"] == "InService"
    assert script.clock.sleeps == [POLL, POLL]
    assert any("creating endpoint" in line for line in script.log)
    assert any(line.endswith("InService") for line in script.log)


def test_update_waits_from_updating_to_in_service_with_the_new_config(script):
    script.described("InService", OLD)
    script.update()
    script.described("Updating", OLD)
    script.described("Updating", OLD)
    script.described("InService", NEW, modified=T0 + timedelta(minutes=6))
    script.retire_old()
    result = script.provider.update(NAME, props(OLD), props(NEW))
    assert result.outs["endpoint_config_name"] == NEW
    assert script.clock.sleeps == [POLL, POLL]
    assert any(f"{OLD} -> {NEW}" in line for line in script.log)
    assert any(f"retired endpoint config {OLD}" in line for line in script.log)


def test_a_long_update_reports_progress_every_minute(script):
    script.described("InService", OLD)
    script.update()
    for _ in range(9):  # 9 polls of 15 s: 135 s of Updating
        script.described("Updating", OLD)
    script.described("InService", NEW, modified=T0 + timedelta(minutes=3))
    script.retire_old()
    script.provider.update(NAME, props(OLD), props(NEW))
    progress = [line for line in script.log if "still Updating" in line]
    assert progress == [f"endpoint {NAME}: still Updating after {s} s" for s in (60, 120)]


def test_an_update_of_the_tags_only_retags_the_endpoint(script):
    """Tags apply at once, not at the next rollout: AddTags and DeleteTags on the endpoint,
    and no rollout (no UpdateEndpoint was scripted: the Stubber would refuse one)."""
    before = {**TAGS, "team": "ml", "cost-centre": "42"}
    after = {**TAGS, "team": "vision"}
    script.described("InService", NEW)
    script.tagged({"team": "vision"}, ["cost-centre"])
    script.listed(NEW)
    result = script.provider.update(NAME, props(NEW, tags=before), props(NEW, tags=after))
    assert result.outs["tags"] == after
    assert script.provider.diff(NAME, props(NEW, tags=before), props(NEW, tags=after)).changes


def test_an_endpoint_from_before_tags_gets_them_at_the_next_up(script):
    """State written by provider version 5 or older has no tags: all are added."""
    old_state = {key: value for key, value in props(NEW).items() if key != "tags"}
    script.described("InService", NEW)
    script.tagged(TAGS, [])
    script.listed(NEW)
    script.provider.update(NAME, old_state, props(NEW))


def test_update_that_sagemaker_rolls_back_fails_loudly_and_keeps_the_old_config(script):
    reason = "ClientError: the container did not pass the ping health check"
    script.described("InService", OLD)
    script.update()
    script.described("Updating", OLD)
    script.described("InService", OLD, reason=reason, modified=T0 + timedelta(minutes=9))
    with pytest.raises(RolloutError) as failure:
        script.provider.update(NAME, props(OLD), props(NEW))
    message = str(failure.value)
    assert reason in message
    assert f"still serves {OLD}" in message
    assert NEW in message
    # No delete_endpoint_config / delete_model was scripted: the Stubber would have
    # refused them, so the old config and model are untouched.


def test_retiring_a_model_leaves_its_archive_in_the_registry(script):
    """The archive may be read by another variant's model, or served again later from the
    registry (config `model` set to a version): a rollout retires the old config and model only."""
    script.described("InService", OLD)
    script.update()
    script.described("InService", NEW, modified=T0 + timedelta(minutes=5))
    script.retire_old()
    script.provider.update(NAME, props(OLD), props(NEW))
    assert any(f"retired endpoint config {OLD} and models ['{OLD_MODEL}']" in x for x in script.log)
    # No delete_object was scripted: the S3 Stubber would have refused one.


def test_a_failed_update_deletes_nothing(script):
    script.described("InService", OLD)
    script.update()
    script.described("InService", OLD, reason="boom", modified=T0 + timedelta(minutes=2))
    with pytest.raises(RolloutError):
        script.provider.update(NAME, props(OLD), props(NEW))
    # Neither SageMaker nor S3 was asked to delete anything (the Stubbers would refuse).


def test_update_not_yet_visible_is_waited_for(script):
    script.described("InService", OLD)
    script.update()
    script.described("InService", OLD)  # DescribeEndpoint has not caught up yet
    script.described("Updating", OLD, modified=T0 + timedelta(seconds=1))
    script.described("InService", NEW, modified=T0 + timedelta(minutes=5))
    script.retire_old()
    result = script.provider.update(NAME, props(OLD), props(NEW))
    assert result.outs["endpoint_config_name"] == NEW


def test_creation_that_fails_is_deleted_and_recreated_once(script):
    script.missing()
    script.create()
    script.described("Creating", NEW)
    script.described("Failed", NEW, reason="Image size exceeds the serverless limit")
    script.delete()
    script.described("Deleting", NEW)
    script.missing()
    script.create()
    script.described("Creating", NEW)
    script.described("InService", NEW)
    script.listed(NEW)
    result = script.provider.create(props())
    assert result.outs["endpoint_status"] == "InService"
    assert any("recreate it once" in line for line in script.log)


def test_creation_that_fails_twice_gives_up_with_the_reason(script):
    script.missing()
    script.create()
    script.described("Failed", NEW, reason="first failure")
    script.delete()
    script.missing()
    script.create()
    script.described("Creating", NEW)
    script.described("Failed", NEW, reason="second failure")
    with pytest.raises(RolloutError, match="failed again after being recreated: second failure"):
        script.provider.create(props())


def test_timeout_fails_with_what_to_do(script):
    script.missing()
    script.create()
    for _ in range(5):  # t = 0, 15, 30, 45, 60: the deadline is reached at 60
        script.described("Creating", NEW)
    with pytest.raises(RolloutTimeoutError, match=r"still Creating after 60 s.*pulumi up"):
        script.provider.create(props(timeout=60))
    assert script.clock.now == 60


def test_endpoint_missing_on_update_is_created_again(script):
    script.missing()
    script.create()
    script.described("Creating", NEW)
    script.described("InService", NEW)
    script.retire_old()
    result = script.provider.update(NAME, props(OLD), props(NEW))
    assert result.outs["endpoint_config_name"] == NEW
    assert any("missing" in line and "creating it again" in line for line in script.log)


def test_delete_waits_for_an_update_in_progress(script):
    script.described("Updating", NEW)
    script.described("InService", NEW)
    script.delete()
    script.described("Deleting", NEW)
    script.missing()
    script.retire(NEW, NEW_MODEL)
    script.provider.delete(NAME, props())
    assert script.clock.sleeps == [POLL, POLL]


# -- moto scenarios ------------------------------------------------------------------------


@pytest.fixture
def s3():
    """The artifact bucket, versioned as `PrivateBucket` makes it, with both archives."""
    client = boto3.client("s3", region_name=REGION)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    for model in (OLD_MODEL, NEW_MODEL):
        client.put_object(Bucket=BUCKET, Key=key_of(model), Body=b"archive")
    return client


def archives(s3) -> dict[str, dict[str, int]]:
    """Each key: how many versions it has, and whether its latest is a delete marker."""
    listed = s3.list_object_versions(Bucket=BUCKET)
    found: dict[str, dict[str, int]] = {}
    for version in listed.get("Versions", []):
        found.setdefault(version["Key"], {"versions": 0, "deleted": 0})["versions"] += 1
    for marker in listed.get("DeleteMarkers", []):
        if marker["IsLatest"]:
            found[marker["Key"]]["deleted"] = 1
    return found


def key_of(model: str) -> str:
    return ARCHIVE[model].split("/", 3)[3]


@pytest.fixture
def sagemaker(monkeypatch):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(variable, "testing")
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        for config, model in ((OLD, OLD_MODEL), (NEW, NEW_MODEL)):
            client.create_model(
                ModelName=model,
                ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker-execution",
                PrimaryContainer={
                    "Image": IMAGE,
                    "ModelDataUrl": ARCHIVE[model],
                },
            )
            client.create_endpoint_config(
                EndpointConfigName=config,
                ProductionVariants=[
                    {
                        "VariantName": "AllTraffic",
                        "ModelName": model,
                        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2},
                    }
                ],
            )
        yield client


def _real_provider(clock: FakeClock, log: list[str]) -> EndpointRolloutProvider:
    return EndpointRolloutProvider(sleep=clock.sleep, clock=clock, log=log.append)


def test_create_against_moto(sagemaker):
    clock, log = FakeClock(), []
    result = _real_provider(clock, log).create(props())
    described = sagemaker.describe_endpoint(EndpointName=NAME)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == NEW
    assert result.outs["endpoint_arn"] == described["EndpointArn"]
    assert clock.sleeps == []
    # Created with the stack's tags, so cost allocation sees the endpoint.
    tags = sagemaker.list_tags(ResourceArn=described["EndpointArn"])["Tags"]
    assert {tag["Key"]: tag["Value"] for tag in tags} == TAGS


def test_create_adopts_an_endpoint_already_on_the_config(sagemaker):
    sagemaker.create_endpoint(EndpointName=NAME, EndpointConfigName=NEW)
    result = _real_provider(FakeClock(), []).create(props())
    assert result.outs["endpoint_config_name"] == NEW
    assert len(sagemaker.list_endpoints()["Endpoints"]) == 1
    tags = sagemaker.list_tags(ResourceArn=result.outs["endpoint_arn"])["Tags"]
    assert {tag["Key"]: tag["Value"] for tag in tags} == TAGS


def test_the_stacks_endpoint_and_config_carry_the_stacks_tags(dev_stack):
    """Under Pulumi's mocks: the rollout creates the endpoint with the tags every other
    resource of the stack has; the config (pulumi-aws) has them besides its own."""
    stack_tags = dev_stack.one("aws:ecr/repository:Repository").inputs["tags"]
    assert stack_tags == {"project": "image-classifier", "stack": "dev", "managed-by": "pulumi"}
    rollout = dev_stack.one("pulumi-python:dynamic/endpoint_rollout:EndpointRollout")
    assert rollout.inputs["tags"] == stack_tags
    config = dev_stack.one("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
    assert stack_tags.items() <= config.inputs["tags"].items()


def test_delete_against_moto_retires_the_config_and_model_and_keeps_the_archive(sagemaker, s3):
    provider = _real_provider(FakeClock(), [])
    provider.create(props())
    provider.delete(NAME, props())
    assert sagemaker.list_endpoints()["Endpoints"] == []
    configs = {
        c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]
    }
    assert configs == {OLD}
    models = {m["ModelName"] for m in sagemaker.list_models()["Models"]}
    assert models == {OLD_MODEL}
    # Both archives stay in the registry, for a later `model: <version>` or another variant.
    assert archives(s3) == {
        key_of(NEW_MODEL): {"versions": 1, "deleted": 0},
        key_of(OLD_MODEL): {"versions": 1, "deleted": 0},
    }


def test_delete_never_removes_a_config_another_endpoint_uses(sagemaker, s3):
    # Another of the stack's endpoints (a variant's name starts with the same 20 characters).
    sagemaker.create_endpoint(EndpointName=f"{NAME}-canary", EndpointConfigName=NEW)
    provider = _real_provider(FakeClock(), [])
    provider.create(props())
    provider.delete(NAME, props())
    configs = {
        c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]
    }
    assert NEW in configs
    models = {m["ModelName"] for m in sagemaker.list_models()["Models"]}
    assert NEW_MODEL in models
    assert archives(s3)[key_of(NEW_MODEL)] == {"versions": 1, "deleted": 0}


class RecordedDescribes:
    """moto's SageMaker client, remembering the name of every endpoint described."""

    def __init__(self, client) -> None:
        self._client = client
        self.described: list[str] = []

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def describe_endpoint(self, **kwargs):
        self.described.append(kwargs["EndpointName"])
        return self._client.describe_endpoint(**kwargs)


def test_only_the_stacks_endpoints_are_described_when_retiring(sagemaker, s3):
    """Not every endpoint of the region: ListEndpoints with NameContains, then only those."""
    # Another team's endpoint may contain the stack's name too: listed, never described.
    for other in ("someone-else", f"their-{NAME}"):
        sagemaker.create_endpoint(EndpointName=other, EndpointConfigName=OLD)
    sagemaker.create_endpoint(EndpointName=f"{NAME}-canary", EndpointConfigName=OLD)
    recorded = RecordedDescribes(sagemaker)
    provider = _played_provider(EndpointRolloutProvider, recorded, s3, FakeClock())
    provider.create(props())
    provider.delete(NAME, props())
    assert set(recorded.described) == {NAME, f"{NAME}-canary"}
    assert NEW not in configs_left(sagemaker)


def test_delete_of_a_missing_endpoint_is_a_no_op(sagemaker):
    _real_provider(FakeClock(), []).delete(NAME, props())
    assert len(sagemaker.list_endpoint_configs()["EndpointConfigs"]) == 2


def test_refresh_reads_drift_and_a_deleted_endpoint(sagemaker):
    provider = _real_provider(FakeClock(), [])
    created = provider.create(props(NEW))
    sagemaker.delete_endpoint(EndpointName=NAME)
    sagemaker.create_endpoint(EndpointName=NAME, EndpointConfigName=OLD)  # changed by hand
    read = provider.read(NAME, created.outs)
    assert read.id == NAME
    assert read.outs["endpoint_config_name"] == OLD
    assert provider.diff(NAME, read.outs, props(NEW)).changes
    sagemaker.delete_endpoint(EndpointName=NAME)
    assert provider.read(NAME, created.outs).id == ""


# -- what failed rollouts leave behind ------------------------------------------------------

MID, MID_MODEL = f"{PREFIX}cccccccccccc-333333", "model-mid"
THEIRS, THEIR_MODEL = f"{PREFIX}dddddddddddd-444444", "model-theirs"
ARCHIVE |= {
    MID_MODEL: f"s3://{BUCKET}/models/cccccccccccc/model.tar.gz",
    THEIR_MODEL: f"s3://{BUCKET}/models/dddddddddddd/model.tar.gz",
}


def made_for(sagemaker, s3, config: str, model: str, endpoint: str = NAME) -> None:
    """A config, model and archive as `InferenceEndpoint` makes them for `endpoint`."""
    tags = [{"Key": ENDPOINT_TAG, "Value": endpoint}]
    s3.put_object(Bucket=BUCKET, Key=key_of(model), Body=b"archive")
    sagemaker.create_model(
        ModelName=model,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker-execution",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": ARCHIVE[model]},
        Tags=tags,
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 2},
            }
        ],
        Tags=tags,
    )


class PlayedStatuses:
    """moto's SageMaker client, except that DescribeEndpoint reports the scripted statuses
    in turn (moto's endpoints are InService at once), the last one until the endpoint is
    deleted, with a FailureReason when Failed."""

    def __init__(self, client, statuses: list[str]) -> None:
        self._client = client
        self._statuses = list(statuses)
        self._current: str | None = None

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def describe_endpoint(self, **kwargs):
        described = self._client.describe_endpoint(**kwargs)
        if self._statuses:
            self._current = self._statuses.pop(0)
        if self._current is None:
            return described
        played = {**described, "EndpointStatus": self._current}
        if self._current == "Failed":
            played["FailureReason"] = "The primary container did not pass the ping health check"
        return played

    def delete_endpoint(self, **kwargs):
        self._current = None
        return self._client.delete_endpoint(**kwargs)


def cleanup_props() -> dict:
    return {key: value for key, value in props().items() if key != "endpoint_config_name"}


def configs_left(sagemaker) -> set[str]:
    return {c["EndpointConfigName"] for c in sagemaker.list_endpoint_configs()["EndpointConfigs"]}


def models_left(sagemaker) -> set[str]:
    return {m["ModelName"] for m in sagemaker.list_models()["Models"]}


def test_a_rollout_retires_what_a_failed_rollout_left_behind(sagemaker, s3):
    made_for(sagemaker, s3, MID, MID_MODEL)  # a failed rollout's config, model and archive
    # Another endpoint whose name shares the first 20 characters: the tag tells them apart.
    made_for(sagemaker, s3, THEIRS, THEIR_MODEL, endpoint=f"{NAME}2")
    log: list[str] = []
    _real_provider(FakeClock(), log).create(props(NEW))
    assert configs_left(sagemaker) == {OLD, NEW, THEIRS}  # OLD carries no tag: not ours to judge
    assert models_left(sagemaker) == {OLD_MODEL, NEW_MODEL, THEIR_MODEL}
    assert archives(s3)[key_of(MID_MODEL)]["deleted"] == 0
    assert archives(s3)[key_of(THEIR_MODEL)]["deleted"] == 0
    assert archives(s3)[key_of(NEW_MODEL)]["deleted"] == 0
    assert any(f"retired endpoint config {MID}" in line for line in log)


def _played_provider(provider_type, played, s3, clock: FakeClock):
    return provider_type(
        session_factory=lambda aws: FakeSession(sagemaker=played, s3=s3),
        sleep=clock.sleep,
        clock=clock,
        log=lambda _: None,
    )


def test_destroy_after_a_failed_create_removes_what_it_made(sagemaker, s3):
    """Pulumi records nothing for a create that raised, so only `EndpointCleanup`, which
    exists before the first attempt, can remove the endpoint on destroy."""
    made_for(sagemaker, s3, MID, MID_MODEL)  # the config the stack made for this endpoint
    played = PlayedStatuses(sagemaker, ["Creating", "Failed", "Creating", "Failed"])
    clock = FakeClock()
    with pytest.raises(RolloutError, match="failed again"):
        _played_provider(EndpointRolloutProvider, played, s3, clock).create(props(MID))
    assert [e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]] == [NAME]

    _played_provider(EndpointCleanupProvider, played, s3, clock).delete(NAME, cleanup_props())
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert configs_left(sagemaker) == {OLD, NEW}
    assert models_left(sagemaker) == {OLD_MODEL, NEW_MODEL}
    assert archives(s3)[key_of(MID_MODEL)] == {"versions": 1, "deleted": 0}


def test_destroy_after_a_timed_out_create_waits_for_it_then_removes_it(sagemaker, s3):
    made_for(sagemaker, s3, MID, MID_MODEL)
    played = PlayedStatuses(sagemaker, ["Creating"] * 6 + ["InService"])
    clock = FakeClock()
    with pytest.raises(RolloutTimeoutError):
        _played_provider(EndpointRolloutProvider, played, s3, clock).create(props(MID, 60))
    _played_provider(EndpointCleanupProvider, played, s3, clock).delete(NAME, cleanup_props())
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert MID not in configs_left(sagemaker)
    assert MID_MODEL not in models_left(sagemaker)


def test_cleanup_checks_the_account_on_every_up_and_deletes_nothing_then(sagemaker):
    provider = EndpointCleanupProvider()
    created = provider.create(cleanup_props())
    assert created.id == NAME
    assert provider.update(NAME, created.outs, cleanup_props()).outs["endpoint_name"] == NAME
    wrong = {**cleanup_props(), "aws": aws_input(REGION, "999999999999")}
    with pytest.raises(WrongAccountError):
        provider.create(wrong)
    with pytest.raises(WrongAccountError):
        provider.update(NAME, created.outs, wrong)
    assert configs_left(sagemaker) == {OLD, NEW}
    renamed = provider.diff(NAME, cleanup_props(), {**cleanup_props(), "endpoint_name": "x"})
    assert renamed.replaces == ["endpoint_name"]


def test_cleanup_of_an_endpoint_that_never_existed_only_retires_leftovers(sagemaker, s3):
    made_for(sagemaker, s3, MID, MID_MODEL)
    EndpointCleanupProvider().delete(NAME, cleanup_props())
    assert configs_left(sagemaker) == {OLD, NEW}


# -- diff and serialisation ----------------------------------------------------------------


def test_diff():
    provider = EndpointRolloutProvider()
    same = provider.diff(NAME, props(), props())
    assert not same.changes
    new_config = provider.diff(NAME, props(OLD), props(NEW))
    assert new_config.changes
    assert not new_config.replaces
    renamed = provider.diff(NAME, props(), {**props(), "endpoint_name": "other"})
    assert renamed.replaces == ["endpoint_name"]
    new_code = provider.diff(NAME, props(), {**props(), "version": "next"})
    assert new_code.changes
    assert not new_code.replaces


def test_provider_survives_the_pickle_round_trip_pulumi_uses(sagemaker):
    restored = dill.loads(base64.b64decode(serialize_provider(EndpointRolloutProvider())))
    assert type(restored) is EndpointRolloutProvider
    result = restored.create(props())
    assert result.outs["endpoint_status"] == "InService"


def test_the_cleanup_provider_survives_the_pickle_round_trip_too(sagemaker):
    restored = dill.loads(base64.b64decode(serialize_provider(EndpointCleanupProvider())))
    assert type(restored) is EndpointCleanupProvider
    restored.create(cleanup_props())
    restored.delete(NAME, cleanup_props())
    assert configs_left(sagemaker) == {OLD, NEW}
