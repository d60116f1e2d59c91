"""API keys: one contract for both stores (a local file, and SSM through moto), the proxy's
cached view of them, and the CLI that creates, lists and revokes them."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from proxy.api_keys import (
    DEFAULT_LOCAL_FILE,
    EXIT_EXISTS,
    EXIT_NOT_FOUND,
    EXIT_STORE,
    EXIT_USAGE,
    RETRY_SECONDS,
    FileKeyStore,
    KeyExists,
    KeyNotFound,
    KeyVerifier,
    SsmKeyStore,
    StoredKey,
    StoreError,
    is_well_formed,
    key_hash,
    main,
    new_key,
    store_from_args,
)
from tests.proxy.support import FakeClock

ROOT = Path(__file__).resolve().parents[2]
PATH = "/image-classifier-dev/api-keys"
REGION = "eu-west-1"


@pytest.fixture(scope="module")
def session():
    """One botocore session for the module: it loads the SSM model once."""
    return botocore.session.get_session()


@pytest.fixture
def ssm(aws_env, session):
    """A moto SSM Parameter Store, and a client on it."""
    with mock_aws():
        yield session.create_client("ssm", region_name=REGION)


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
    store.add(StoredKey.issue(name, key))
    return key


# -- the key format -------------------------------------------------------------------------


def test_a_key_is_the_prefix_and_256_random_bits():
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    for key in keys:
        assert key.startswith("ick_")
        assert len(key) == 4 + 43
        assert is_well_formed(key)
    assert len(key_hash(key)) == 64


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
    with pytest.raises(StoreError, match="pass --region or set AWS_REGION"):
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


# -- the CLI -------------------------------------------------------------------------------


class Cli:
    def __init__(self, *target: str) -> None:
        self.target = list(target)

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        status = main([*argv, *self.target], stdout=out, stderr=err)
        return status, out.getvalue(), err.getvalue()


@pytest.fixture(params=["local", "ssm"])
def cli(request, tmp_path):
    if request.param == "local":
        file = tmp_path / "api-keys.json"
        return Cli("--local", str(file)), FileKeyStore(file)
    client = request.getfixturevalue("ssm")
    return Cli("--ssm-path", PATH, "--region", REGION), SsmKeyStore(PATH, client=client)


def test_create_prints_the_key_once_and_it_verifies(cli):
    run, store = cli
    status, out, err = run("create", "ci-bot")
    assert status == 0
    key = out.strip()
    assert out == key + "\n"
    assert is_well_formed(key)
    assert key not in err
    assert key[:12] in err
    assert "once" in err
    verifier = KeyVerifier(store, clock=FakeClock())
    assert verifier.name_of(key) == "ci-bot"
    assert verifier.name_of(new_key()) is None


def test_create_refuses_a_taken_name(cli):
    run, store = cli
    first = run("create", "ci-bot")[1].strip()
    status, out, err = run("create", "ci-bot")
    assert (status, out) == (EXIT_EXISTS, "")
    assert err.startswith("error: ")
    assert "already has a key named 'ci-bot'" in err
    assert KeyVerifier(store, clock=FakeClock()).name_of(first) == "ci-bot"


def test_list_shows_names_times_and_prefixes_never_keys_or_hashes(cli):
    run, _ = cli
    keys = {name: run("create", name)[1].strip() for name in ("nightly", "ci-bot")}
    status, out, err = run("list")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "CREATED", "KEY"]
    assert [line.split()[0] for line in lines[1:]] == ["ci-bot", "nightly"]
    for line, name in zip(lines[1:], ["ci-bot", "nightly"], strict=True):
        assert line.split()[2] == keys[name][:12] + "..."
        assert line.split()[1].endswith("Z")
    for key in keys.values():
        assert key[12:] not in out
        assert key_hash(key) not in out


def test_list_of_no_keys_says_so(cli):
    run, _ = cli
    status, out, err = run("list")
    assert (status, out) == (0, "")
    assert err.startswith("No API keys in ")


def test_revoke_deletes_the_key_and_refuses_an_unknown_name(cli):
    run, store = cli
    key = run("create", "ci-bot")[1].strip()
    status, _, err = run("revoke", "ci-bot")
    assert status == 0
    assert "docs/api.md#revocation-delay" in err
    assert KeyVerifier(store, clock=FakeClock()).name_of(key) is None
    status, out, err = run("revoke", "ci-bot")
    assert (status, out) == (EXIT_NOT_FOUND, "")
    assert err.strip().endswith("has no key named 'ci-bot'")


@pytest.mark.parametrize(
    "argv",
    [
        ["create", "has space", "--local", "k.json"],
        ["create", "-leading-dash-is-a-flag-anyway", "--local", "k.json"],
        ["revoke", "x" * 65, "--local", "k.json"],
        ["create", "slash/name", "--local", "k.json"],
        ["list", "--ssm-path", "no-leading-slash"],
        ["list", "--ssm-path", "/aws/reserved"],
        ["list", "--local", "k.json", "--region", REGION],
    ],
)
def test_bad_usage_exits_2_with_one_line(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    try:
        status = main(argv, stdout=out, stderr=err)
    except SystemExit as exit_:  # argparse's own refusals
        status = exit_.code
    assert status == EXIT_USAGE
    assert out.getvalue() == ""
    assert not (tmp_path / "k.json").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["create"],
        ["list", "--local", "a.json", "--ssm-path", PATH],
        ["rotate", "x", "--local", "a.json"],
    ],
)
def test_argparse_refusals_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == EXIT_USAGE
    assert capsys.readouterr().out == ""


def test_an_unreadable_store_exits_1_with_one_line(tmp_path):
    file = tmp_path / "api-keys.json"
    file.write_text("not json")
    status, out, err = Cli("--local", str(file))("create", "ci-bot")
    assert (status, out) == (EXIT_STORE, "")
    assert (
        err
        == f'error: {file} is not an API key file (expected {{"version": 1, "keys": {{...}}}})\n'
    )


NO_REGION = (
    "error: --ssm-path needs the stack's region, not the AWS config's default: pass --region "
    '(in the stack\'s directory: --region "$(pulumi config get aws:region)") or set AWS_REGION\n'
)


@pytest.mark.parametrize("command", [("list",), ("create", "ci-bot"), ("revoke", "ci-bot")])
def test_without_the_stacks_region_the_cli_refuses_before_any_call(
    aws_env, tmp_path, session, command
):
    # The operator's default region is set (AWS_DEFAULT_REGION, a profile): never guessed.
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = us-east-1\n")
    aws_env.setenv("AWS_CONFIG_FILE", str(config))
    aws_env.delenv("AWS_REGION", raising=False)
    made = []
    with mock_aws():
        out, err = io.StringIO(), io.StringIO()
        status = main(
            [*command, "--ssm-path", PATH],
            stdout=out,
            stderr=err,
            make_store=lambda args: made.append(args) or store_from_args(args),
        )
        assert (status, out.getvalue(), err.getvalue()) == (EXIT_USAGE, "", NO_REGION)
        assert made == []
        for region in ("us-east-1", "eu-west-1"):
            client = session.create_client("ssm", region_name=region)
            assert client.describe_parameters()["Parameters"] == []


@pytest.mark.parametrize(
    ("flag", "environment", "where"),
    [
        (None, "eu-central-1", "eu-central-1"),
        ("eu-central-1", "us-east-1", "eu-central-1"),
    ],
)
def test_the_keys_go_to_the_stacks_region_from_region_or_aws_region(
    aws_env, session, flag, environment, where
):
    aws_env.setenv("AWS_REGION", environment)
    with mock_aws():
        target = ["--ssm-path", PATH, *(["--region", flag] if flag else [])]
        status, _, err = Cli(*target)("create", "ci-bot")
        assert status == 0, err
        assert f"in SSM {PATH} ({where})" in err
        stored = session.create_client("ssm", region_name=where).describe_parameters()
        assert [p["Name"] for p in stored["Parameters"]] == [f"{PATH}/ci-bot"]
        for other in {"us-east-1", "eu-west-1", "eu-central-1"} - {where}:
            client = session.create_client("ssm", region_name=other)
            assert client.describe_parameters()["Parameters"] == []


def test_python_m_proxy_api_keys_round_trip(tmp_path):
    """The module as a command, in a fresh interpreter: the exit statuses and streams."""
    file = tmp_path / "api-keys.json"

    def run(*argv):
        return subprocess.run(
            [sys.executable, "-m", "proxy.api_keys", *argv, "--local", str(file)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    created = run("create", "ci-bot")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert is_well_formed(key)
    assert run("create", "ci-bot").returncode == EXIT_EXISTS
    listed = run("list")
    assert listed.stdout.splitlines()[1].split()[0] == "ci-bot"
    assert key not in listed.stdout + listed.stderr
    assert run("revoke", "ci-bot").returncode == 0
    assert run("revoke", "ci-bot").returncode == EXIT_NOT_FOUND
    assert "Traceback" not in created.stderr


def test_the_local_runtimes_file_is_under_build():
    assert DEFAULT_LOCAL_FILE.as_posix() == "build/api-keys.json"


def test_help_puts_region_beside_the_choice_not_in_it():
    import subprocess
    import sys

    shown = subprocess.run(
        [sys.executable, "-m", "proxy.api_keys", "create", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    choice = shown.split("where the keys are (one of):")[1].split("\n\n")[0]
    assert "--ssm-path" in choice
    assert "--local" in choice
    assert "--region" not in choice
    assert "with --ssm-path:\n  --region REGION" in shown
