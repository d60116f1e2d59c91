"""`python -m admin.api_keys`: create, list and revoke keys, in SSM (moto) and in a local
file, as the proxy then reads them."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from moto import mock_aws

from admin.api_keys import (
    EXIT_EXISTS,
    EXIT_NOT_FOUND,
    EXIT_STORE,
    EXIT_USAGE,
    main,
    new_key,
    store_from_args,
)
from machine.api_keys_file import DEFAULT_LOCAL_FILE, FileKeyStore
from proxy.api_keys import KeyVerifier, SsmKeyStore, is_well_formed, key_hash
from tests.proxy.conftest import PATH, REGION
from tests.proxy.support import FakeClock

ROOT = Path(__file__).resolve().parents[2]


def test_a_key_is_the_prefix_and_256_random_bits():
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    for key in keys:
        assert key.startswith("ick_")
        assert len(key) == 4 + 43
        assert is_well_formed(key)
    assert len(key_hash(key)) == 64


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


def test_python_m_admin_api_keys_round_trip(tmp_path):
    """The module as a command, in a fresh interpreter: the exit statuses and streams."""
    file = tmp_path / "api-keys.json"

    def run(*argv):
        return subprocess.run(
            [sys.executable, "-m", "admin.api_keys", *argv, "--local", str(file)],
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
    shown = subprocess.run(
        [sys.executable, "-m", "admin.api_keys", "create", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    choice = shown.split("where the keys are (one of):")[1].split("\n\n")[0]
    assert "--ssm-path" in choice
    assert "--local" in choice
    assert "--region" not in choice
    assert "with --ssm-path:\n  --region REGION" in shown
