"""`CloudFrontInvalidation` with real boto3: moto's CloudFront for the calls, botocore's
`Stubber` for an invalidation that stays InProgress, and a fake clock for the waits."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import boto3
import dill
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from components.cloudfront_invalidation import (
    PREVIOUS_TYPE,
    PROVIDER_VERSION,
    CloudFrontInvalidationProvider,
    InvalidationTimeoutError,
)
from tests.infra.conftest import FakeClock, FakeSession, StackRun, aws_input
from tests.infra.stored_providers import stored_provider

INVALIDATION = "pulumi-python:dynamic/cloudfront_invalidation:CloudFrontInvalidation"
PICKLED_BEFORE_THE_RENAME = (
    "gASVcAAAAAAAAACMHmNvbXBvbmVudHMuY29uZmlnX2ludmFsaWRhdGlvbpSMGkNvbmZpZ0ludmFsaWRhdGlvblBy"
    "b3ZpZGVylJOUKYGUfZQojA9fY2xpZW50X2ZhY3RvcnmUTowGX2Nsb2NrlE6MBl9zbGVlcJROdWIu"
)
"""`__provider` as stacks deployed before the rename hold it in their state."""


@pytest.fixture
def cloudfront(monkeypatch):
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(variable, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("cloudfront")
        created = client.create_distribution(
            DistributionConfig={
                "CallerReference": "site",
                "Comment": "site",
                "Enabled": True,
                "Origins": {
                    "Quantity": 1,
                    "Items": [
                        {
                            "Id": "site-bucket",
                            "DomainName": "site.s3.eu-west-1.amazonaws.com",
                            "S3OriginConfig": {"OriginAccessIdentity": ""},
                        }
                    ],
                },
                "DefaultCacheBehavior": {
                    "TargetOriginId": "site-bucket",
                    "ViewerProtocolPolicy": "redirect-to-https",
                    "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
                },
            }
        )
        yield client, created["Distribution"]["Id"]


def props(distribution_id: str, content_hash: str = "a" * 64, wait: bool = False) -> dict:
    return {
        "distribution_id": distribution_id,
        "content_hash": content_hash,
        "paths": ["/config.js"],
        "wait": wait,
        "timeout_seconds": 900.0,
        "poll_seconds": 10.0,
        "version": PROVIDER_VERSION,
        "aws": aws_input("us-east-1"),
    }


def invalidations(client, distribution_id: str) -> list[dict]:
    listed = client.list_invalidations(DistributionId=distribution_id)["InvalidationList"]
    return listed.get("Items", [])


def test_create_invalidates_config_js(cloudfront):
    client, distribution = cloudfront
    result = CloudFrontInvalidationProvider().create(props(distribution))
    (made,) = invalidations(client, distribution)
    assert result.id == made["Id"]
    assert result.outs["invalidation_id"] == made["Id"]
    batch = client.get_invalidation(DistributionId=distribution, Id=made["Id"])
    assert batch["Invalidation"]["InvalidationBatch"]["Paths"]["Items"] == ["/config.js"]


def test_unchanged_config_js_creates_no_invalidation(cloudfront):
    client, distribution = cloudfront
    provider = CloudFrontInvalidationProvider()
    created = provider.create(props(distribution))
    olds = created.outs
    news = {**props(distribution), "wait": True}  # only a setting changed
    assert not provider.diff(created.id, olds, props(distribution)).changes
    updated = provider.update(created.id, olds, news)
    assert updated.outs["invalidation_id"] == created.id
    assert len(invalidations(client, distribution)) == 1


def test_changed_config_js_creates_a_new_invalidation(cloudfront):
    client, distribution = cloudfront
    provider = CloudFrontInvalidationProvider()
    created = provider.create(props(distribution))
    news = props(distribution, content_hash="b" * 64)
    assert provider.diff(created.id, created.outs, news).changes
    updated = provider.update(created.id, created.outs, news)
    assert updated.outs["invalidation_id"] != created.id
    assert len(invalidations(client, distribution)) == 2


def test_changing_back_to_an_earlier_config_js_still_invalidates(cloudfront):
    client, distribution = cloudfront
    provider = CloudFrontInvalidationProvider()
    first = provider.create(props(distribution, content_hash="a" * 64))
    second = provider.update(first.id, first.outs, props(distribution, content_hash="b" * 64))
    provider.update(first.id, second.outs, props(distribution, content_hash="a" * 64))
    assert len({i["Id"] for i in invalidations(client, distribution)}) == 3


def test_wait_polls_until_completed(cloudfront):
    _, distribution = cloudfront
    clock = FakeClock()
    provider = CloudFrontInvalidationProvider(sleep=clock.sleep, clock=clock)
    provider.create(props(distribution, wait=True))
    assert clock.sleeps == []  # moto completes at once


def _stubbed(statuses: list[str], clock: FakeClock):
    client = boto3.client(
        "cloudfront",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stub = Stubber(client)
    invalidation = {
        "Id": "I2J0I21PCUYOIK",
        "Status": "InProgress",
        "CreateTime": datetime(2026, 1, 1, tzinfo=UTC),
        "InvalidationBatch": {
            "Paths": {"Quantity": 1, "Items": ["/config.js"]},
            "CallerReference": "ref",
        },
    }
    stub.add_response(
        "create_invalidation",
        {"Location": "https://cloudfront.amazonaws.com/x", "Invalidation": invalidation},
        {"DistributionId": "E1", "InvalidationBatch": ANY},
    )
    for status in statuses:
        stub.add_response(
            "get_invalidation",
            {"Invalidation": {**invalidation, "Status": status}},
            {"DistributionId": "E1", "Id": "I2J0I21PCUYOIK"},
        )
    provider = CloudFrontInvalidationProvider(
        session_factory=lambda aws: FakeSession(cloudfront=client), sleep=clock.sleep, clock=clock
    )
    return provider, stub


def test_wait_follows_in_progress_to_completed():
    clock = FakeClock()
    provider, stub = _stubbed(["InProgress", "InProgress", "Completed"], clock)
    with stub:
        provider.create(props("E1", wait=True))
        stub.assert_no_pending_responses()
    assert clock.sleeps == [10, 10]


def test_wait_times_out_with_a_clear_message():
    clock = FakeClock()
    provider, stub = _stubbed(["InProgress"] * 4, clock)
    with stub, pytest.raises(InvalidationTimeoutError, match="still InProgress after 30 s"):
        provider.create({**props("E1", wait=True), "timeout_seconds": 30.0})


def test_delete_does_nothing():
    def no_session(aws):
        raise AssertionError("delete must not call AWS")

    CloudFrontInvalidationProvider(session_factory=no_session).delete("I1", props("E1"))


def test_provider_survives_the_pickle_round_trip_pulumi_uses(cloudfront, dev_stack: StackRun):
    client, distribution = cloudfront
    restored = stored_provider(dev_stack, INVALIDATION, "site-files-invalidation")
    assert type(restored) is CloudFrontInvalidationProvider
    restored.create(props(distribution))
    assert len(invalidations(client, distribution)) == 1


def test_state_written_before_the_rename_still_loads_its_provider(cloudfront):
    """`pulumi destroy` and `refresh` unpickle the provider an older deployment stored."""
    client, distribution = cloudfront
    restored = dill.loads(base64.b64decode(PICKLED_BEFORE_THE_RENAME))
    assert type(restored) is CloudFrontInvalidationProvider
    restored.delete("I1", props(distribution))
    assert invalidations(client, distribution) == []


def test_existing_stacks_keep_their_invalidations(dev_stack: StackRun):
    """An alias maps the old type to the new one, and the version bump makes the next
    `pulumi up` update (not replace) each one, storing the provider's new module."""
    assert PREVIOUS_TYPE == "pulumi-python:dynamic/config_invalidation:ConfigInvalidation"
    resources = dev_stack.of_type(INVALIDATION)
    assert {r.name for r in resources} == {"site-config-invalidation", "site-files-invalidation"}
    for resource in resources:
        assert resource.aliases == (PREVIOUS_TYPE,)
        assert resource.inputs["version"] == PROVIDER_VERSION != "1"
