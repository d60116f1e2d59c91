"""API keys: one contract for both stores (the local runtime's file, and SSM through moto),
and the proxy's cached view of them. The CLI that manages them: tests/admin/test_api_keys.py."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from botocore.stub import Stubber

from admin.api_keys import issued, new_key
from machine.api_keys_file import FileKeyStore
from proxy.api_keys import (
    RETRY_SECONDS,
    KeyExists,
    KeyNotFound,
    KeyVerifier,
    SsmKeyStore,
    StoreError,
    is_well_formed,
    key_hash,
)
from tests.proxy.conftest import PATH, REGION
from tests.proxy.support import FakeClock


class FileBackend:
    def __init__(self, tmp_path: Path) -> None:
        self.file = tmp_path / "data" / "api-keys.json"
        self.store = FileKeyStore(self.file)

    def raw(self) -> str:
        return self.file.read_text() if self.file.exists() else ""

    def put_raw(self, name: str, record: object) -> None:
        document = json.loads(self.raw() or '{"version": 1, "keys": {}}')
        document["keys"][name] = record
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.file.write_text(json.dumps(document))


class SsmBackend:
    def __init__(self, client) -> None:
        self.client = client
        self.store = SsmKeyStore(PATH, client=client)

    def raw(self) -> str:
        pages = self.client.get_paginator("get_parameters_by_path").paginate(
            Path="/", Recursive=True, WithDecryption=True
        )
        return json.dumps([p for page in pages for p in page["Parameters"]], default=str)

    def put_raw(self, name: str, record: object) -> None:
        value = record if isinstance(record, str) else json.dumps(record)
        self.client.put_parameter(Name=f"{PATH}/{name}", Value=value, Type="SecureString")


@pytest.fixture(params=["file", "ssm"])
def backend(request, tmp_path):
    if request.param == "file":
        return FileBackend(tmp_path)
    return SsmBackend(request.getfixturevalue("ssm"))


def issue(store, name: str) -> str:
    key = new_key()
    store.add(issued(name, key))
    return key


# -- the key format -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "candidate",
    ["", "ick_", "ick_short", new_key() + "x", new_key()[:-1], "ick-" + new_key()[4:],
     new_key()[:-1] + "=", new_key()[:-1] + "é", " " + new_key()],
)  # fmt: skip
def test_anything_else_is_not_well_formed(candidate):
    assert not is_well_formed(candidate)


# -- the store contract, for both stores -----------------------------------------------------


def test_an_empty_store_has_no_keys(backend):
    assert backend.store.load().keys == ()


def test_a_stored_key_is_its_hash_its_time_and_its_prefix(backend):
    key = issue(backend.store, "ci-bot")
    (stored,) = backend.store.load().keys
    assert stored.name == "ci-bot"
    assert stored.sha256 == key_hash(key)
    assert stored.prefix == key[:12]
    assert stored.created.endswith("Z")
    assert stored.created[:2] == "20"


def test_the_store_never_holds_the_key(backend):
    key = issue(backend.store, "ci-bot")
    raw = backend.raw()
    assert key_hash(key) in raw
    assert key not in raw
    assert key[12:] not in raw
    assert key[12:30] not in raw


def test_a_taken_name_is_refused_and_the_first_key_kept(backend):
    first = issue(backend.store, "ci-bot")
    with pytest.raises(KeyExists):
        issue(backend.store, "ci-bot")
    (stored,) = backend.store.load().keys
    assert stored.sha256 == key_hash(first)


def test_a_removed_key_is_gone_and_cannot_be_removed_twice(backend):
    issue(backend.store, "ci-bot")
    issue(backend.store, "nightly")
    backend.store.remove("ci-bot")
    assert [k.name for k in backend.store.load().keys] == ["nightly"]
    with pytest.raises(KeyNotFound):
        backend.store.remove("ci-bot")


def test_every_key_is_loaded_however_many(backend):
    """SSM answers 10 parameters a page: this takes three."""
    names = {f"bot-{i:02}" for i in range(25)}
    for name in names:
        issue(backend.store, name)
    assert {k.name for k in backend.store.load().keys} == names


def test_an_unreadable_record_is_named_and_the_others_still_load(backend):
    issue(backend.store, "good")
    backend.put_raw("bad-json", "{not json")
    backend.put_raw("no-hash", {"created": "2026-01-01T00:00:00Z"})
    backend.put_raw("short-hash", {"sha256": "abc"})
    backend.put_raw("deep", "[" * 3000)
    keys = backend.store.load()
    assert [k.name for k in keys.keys] == ["good"]
    assert sorted(keys.unreadable) == ["bad-json", "deep", "no-hash", "short-hash"]


def test_the_verifier_knows_a_key_by_its_name_and_nothing_else(backend):
    key = issue(backend.store, "ci-bot")
    verifier = KeyVerifier(backend.store, ttl=30, clock=FakeClock())
    assert verifier.name_of(key) == "ci-bot"
    assert verifier.name_of(new_key()) is None


def test_a_revoked_key_works_until_the_cache_expires_then_never(backend):
    key = issue(backend.store, "ci-bot")
    clock = FakeClock()
    verifier = KeyVerifier(backend.store, ttl=30, clock=clock)
    assert verifier.name_of(key) == "ci-bot"
    backend.store.remove("ci-bot")
    clock.now += 29.9
    assert verifier.name_of(key) == "ci-bot"
    clock.now += 0.1
    assert verifier.name_of(key) is None


def test_a_new_key_works_once_the_cache_expires(backend):
    clock = FakeClock()
    verifier = KeyVerifier(backend.store, ttl=10, clock=clock)
    assert verifier.name_of(new_key()) is None
    key = issue(backend.store, "late")
    assert verifier.name_of(key) is None
    clock.now += 10
    assert verifier.name_of(key) == "late"


# -- SSM specifics -------------------------------------------------------------------------


def test_ssm_holds_one_securestring_per_key_with_the_json_record(ssm):
    key = issue(SsmKeyStore(PATH, client=ssm), "ci-bot")
    parameter = ssm.get_parameter(Name=f"{PATH}/ci-bot", WithDecryption=True)["Parameter"]
    assert parameter["Type"] == "SecureString"
    value = json.loads(parameter["Value"])
    assert value == {
        "version": 1,
        "sha256": key_hash(key),
        "created": value["created"],
        "prefix": key[:12],
    }
    (described,) = ssm.describe_parameters()["Parameters"]
    assert described["Tier"] == "Standard"
    assert "never the key" in described["Description"]


def test_ssm_reads_its_path_only(ssm):
    issue(SsmKeyStore(PATH, client=ssm), "mine")
    issue(SsmKeyStore("/image-classifier-prod/api-keys", client=ssm), "other-stack")
    issue(SsmKeyStore(f"{PATH}/nested", client=ssm), "below")
    assert [k.name for k in SsmKeyStore(PATH, client=ssm).load().keys] == ["mine"]


def test_the_store_makes_its_own_client_from_the_environment(ssm):
    """As in the Lambda: the region from AWS_REGION or AWS_DEFAULT_REGION, moto behind it."""
    issue(SsmKeyStore(PATH, client=ssm), "ci-bot")
    assert [k.name for k in SsmKeyStore(PATH).load().keys] == ["ci-bot"]


def test_an_ssm_refusal_is_a_store_error_naming_the_code(aws_env, session):
    client = session.create_client("ssm", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "get_parameters_by_path", "AccessDeniedException", "not authorized", 400
        )
        with pytest.raises(StoreError, match="AccessDeniedException: not authorized"):
            SsmKeyStore(PATH, client=client).load()


def test_an_unreachable_ssm_is_a_store_error(aws_env):
    aws_env.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:9")
    with pytest.raises(StoreError, match="get_parameters_by_path"):
        SsmKeyStore(PATH).load()


def test_no_region_is_a_store_error_that_says_what_to_set(aws_env):
    aws_env.delenv("AWS_DEFAULT_REGION")
    aws_env.delenv("AWS_REGION", raising=False)
    with pytest.raises(StoreError, match="set AWS_REGION"):
        SsmKeyStore(PATH).load()


# -- file specifics ------------------------------------------------------------------------


def test_the_file_is_private_json_written_whole(tmp_path):
    file = tmp_path / "new" / "dir" / "api-keys.json"
    key = issue(FileKeyStore(file), "ci-bot")
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    document = json.loads(file.read_text())
    assert document == {
        "version": 1,
        "keys": {
            "ci-bot": {
                "sha256": key_hash(key),
                "created": document["keys"]["ci-bot"]["created"],
                "prefix": key[:12],
            }
        },
    }
    assert os.listdir(file.parent) == ["api-keys.json"]


@pytest.mark.parametrize(
    "text", ["", "{", "[]", '{"keys": {}}', '{"version": 2, "keys": {}}', '{"version": 1}']
)
def test_a_file_that_is_not_a_key_file_is_a_store_error(tmp_path, text):
    file = tmp_path / "api-keys.json"
    file.write_text(text)
    with pytest.raises(StoreError, match="is not an API key file"):
        FileKeyStore(file).load()
    with pytest.raises(StoreError):
        issue(FileKeyStore(file), "x")
    assert file.read_text() == text


def test_a_directory_in_place_of_the_file_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="cannot read"):
        FileKeyStore(tmp_path).load()


# -- the verifier's cache ------------------------------------------------------------------


class FlakyStore:
    """A store that counts its loads and fails while `down`."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.loads = 0
        self.down = False

    def load(self):
        self.loads += 1
        if self.down:
            raise StoreError("SSM get_parameters_by_path on /x: ThrottlingException: slow down")
        return self.inner.load()


def test_the_store_is_read_once_per_ttl_not_per_request(tmp_path):
    store = FlakyStore(FileKeyStore(tmp_path / "keys.json"))
    key = issue(store.inner, "ci-bot")
    clock = FakeClock()
    verifier = KeyVerifier(store, ttl=30, clock=clock)
    for _ in range(100):
        assert verifier.name_of(key) == "ci-bot"
        clock.now += 0.25
    assert store.loads == 1
    clock.now += 5
    verifier.name_of(key)
    assert store.loads == 2


def test_with_the_store_down_the_last_copy_serves_for_one_more_ttl_then_none(tmp_path):
    store = FlakyStore(FileKeyStore(tmp_path / "keys.json"))
    key = issue(store.inner, "ci-bot")
    clock = FakeClock()
    verifier = KeyVerifier(store, ttl=30, clock=clock)
    assert verifier.name_of(key) == "ci-bot"
    store.down = True
    clock.now += 30
    assert verifier.name_of(key) == "ci-bot"
    assert store.loads == 2
    # Not asked again before RETRY_SECONDS, whatever the traffic.
    clock.now += RETRY_SECONDS / 2
    verifier.name_of(key)
    assert store.loads == 2
    clock.now += 29.9 - RETRY_SECONDS / 2
    assert verifier.name_of(key) == "ci-bot"
    assert store.loads == 3
    clock.now += 0.1  # 60 s after the last good load: a revoked key must not live longer
    with pytest.raises(StoreError, match="ThrottlingException"):
        verifier.name_of(key)
    store.down = False
    clock.now += RETRY_SECONDS
    assert verifier.name_of(key) == "ci-bot"


def test_with_the_store_down_from_the_start_every_lookup_fails(tmp_path):
    store = FlakyStore(FileKeyStore(tmp_path / "keys.json"))
    store.down = True
    clock = FakeClock()
    verifier = KeyVerifier(store, ttl=30, clock=clock)
    for _ in range(3):
        with pytest.raises(StoreError):
            verifier.name_of(new_key())
    assert store.loads == 1
