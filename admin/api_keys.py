"""Create, list and revoke the API keys programs call the API with.

    python -m admin.api_keys create NAME  (--ssm-path PATH --region REGION | --local FILE)
    python -m admin.api_keys list         (--ssm-path PATH --region REGION | --local FILE)
    python -m admin.api_keys revoke NAME  (--ssm-path PATH --region REGION | --local FILE)

With `--ssm-path` the keys live in the stack's region: `--region`, else `AWS_REGION`, else
the CLI refuses (exit 2) rather than write to the AWS config's default region, which is the
operator's, not necessarily the stack's. With `--local` they live in the local runtime's
file (`machine.api_keys_file`). What the stores hold, and how the proxy reads them:
`proxy.api_keys`.

A key is `ick_` and 43 URL-safe base64 characters: 256 random bits from `secrets`. `create`
prints it once, on stdout, and stores only its SHA-256, the time it was created and its first
12 characters (`ick_` and 8 more, so `list` can tell keys apart; 208 random bits stay
unknown). A plain SHA-256 is enough: slow, salted password hashes (bcrypt, scrypt, Argon2)
exist because passwords are guessable, and a stolen hash lets an attacker try billions of
likely passwords offline. A 256-bit random key has no likely values: finding a preimage is
2^256 work whatever the hash costs. SHA-256 costs a microsecond per request where a slow
hash would cost the proxy tens of milliseconds and make it easy to overload, and an unsalted
hash lets the proxy look a key up by its hash instead of trying each stored one.

Exit status: 0 done, 1 the store failed (AWS error, credentials, permissions, an
unreadable file), 2 bad usage (a flag, a name, a path), 3 `create` of a name that exists,
4 `revoke` of a name that does not. Errors are one line, `error: ...`, on stderr.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

from machine.api_keys_file import DEFAULT_LOCAL_FILE, FileKeyStore
from proxy.api_keys import (
    KEY_PREFIX,
    KeyExists,
    KeyNotFound,
    KeySet,
    KeyStore,
    SsmKeyStore,
    StoredKey,
    StoreError,
    key_hash,
)
from proxy.config import ssm_path_problem

KEY_RANDOM_BYTES = 32
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 8

EXIT_STORE = 1
EXIT_USAGE = 2
EXIT_EXISTS = 3
EXIT_NOT_FOUND = 4

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def new_key() -> str:
    """A fresh key: `ick_` and 256 random bits in URL-safe base64 (43 characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def issued(name: str, key: str, now: datetime | None = None) -> StoredKey:
    """What a store keeps of `key`, named `name`: its hash, the time (`now` by default) and
    its first 12 characters."""
    created = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return StoredKey(name, key_hash(key), created, key[:SHOWN_PREFIX_LENGTH])


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a key, or None."""
    if _NAME.match(name):
        return None
    return (
        f"{name!r} is not a key name: 1 to 64 letters, digits, '.', '_' and '-', "
        "starting with a letter or digit"
    )


def store_from_args(args: argparse.Namespace) -> KeyStore:
    if args.ssm_path is not None:
        return SsmKeyStore(args.ssm_path, region=args.region)
    return FileKeyStore(args.local)


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    make_store: Callable[[argparse.Namespace], KeyStore] = store_from_args,
) -> int:
    """The CLI; returns its exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = _parser().parse_args(argv)
    if args.ssm_path is not None:
        problem = ssm_path_problem(args.ssm_path)
        if problem:
            print(f"error: --ssm-path {args.ssm_path} {problem}", file=err)
            return EXIT_USAGE
        args.region = args.region or os.environ.get("AWS_REGION", "").strip() or None
        if args.region is None:
            print(
                "error: --ssm-path needs the stack's region, not the AWS config's default: pass "
                '--region (in the stack\'s directory: --region "$(pulumi config get aws:region)") '
                "or set AWS_REGION",
                file=err,
            )
            return EXIT_USAGE
    elif args.region is not None:
        print("error: --region goes with --ssm-path, not --local", file=err)
        return EXIT_USAGE
    name: str = getattr(args, "name", "")
    if args.command != "list" and (problem := name_problem(name)):
        print(f"error: {problem}", file=err)
        return EXIT_USAGE
    store = make_store(args)
    where = store.describe()
    try:
        if args.command == "create":
            key = new_key()
            stored = issued(name, key)
            store.add(stored)
            print(key, file=out)
            print(
                f"Created API key {name!r} ({stored.prefix}...) in {where}. The key is printed "
                "once, above: keep it now. Only its SHA-256 is stored. Programs send it as "
                "the x-api-key header.",
                file=err,
            )
        elif args.command == "list":
            _print_list(store.load(), where, out, err)
        else:
            store.remove(name)
            print(
                f"Revoked API key {name!r} in {where}. The proxy refuses it once its copy of "
                "the keys is renewed (docs/api.md#revocation-delay).",
                file=err,
            )
    except KeyExists:
        print(f"error: {where} already has a key named {name!r}; revoke it first", file=err)
        return EXIT_EXISTS
    except KeyNotFound:
        print(f"error: {where} has no key named {name!r}", file=err)
        return EXIT_NOT_FOUND
    except StoreError as error:
        print(f"error: {error}", file=err)
        return EXIT_STORE
    return 0


def _print_list(keys: KeySet, where: str, out: TextIO, err: TextIO) -> None:
    rows = [(key.name, key.created, f"{key.prefix}...") for key in keys.keys]
    rows += [(name, "(unreadable record)", "") for name in keys.unreadable]
    if not rows:
        print(f"No API keys in {where}.", file=err)
        return
    rows.sort()
    header = ("NAME", "CREATED", "KEY")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(2)]
    for row in [header, *rows]:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}".rstrip(), file=out)


def _where(command: argparse.ArgumentParser) -> None:
    """Where the keys are, on each command (argparse's `parents` would list a mutually
    exclusive group's flags under "options", away from its title)."""
    where = command.add_argument_group("where the keys are (one of)")
    choice = where.add_mutually_exclusive_group(required=True)
    choice.add_argument(
        "--ssm-path",
        metavar="PATH",
        help="SSM Parameter Store path of the stack's keys, e.g. /image-classifier-dev/api-keys",
    )
    choice.add_argument(
        "--local",
        metavar="FILE",
        help=f"a local key file, as the local runtime reads (by convention {DEFAULT_LOCAL_FILE})",
    )
    command.add_argument_group("with --ssm-path").add_argument(
        "--region",
        help="the stack's AWS region, where --ssm-path is (default: AWS_REGION; never the AWS "
        "config's default region)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m admin.api_keys",
        description="Create, list and revoke the API keys programs call the API with.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    create = commands.add_parser("create", help="create a key and print it, once")
    create.add_argument("name", metavar="NAME", help="who or what the key is for, e.g. ci-bot")
    listing = commands.add_parser(
        "list", help="names, creation times and key prefixes (never keys)"
    )
    revoke = commands.add_parser("revoke", help="delete a key")
    revoke.add_argument("name", metavar="NAME")
    for command in (create, listing, revoke):
        _where(command)
    return parser


if __name__ == "__main__":
    sys.exit(main())
