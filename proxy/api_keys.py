"""API keys for programs: the key format, the two stores, the proxy's cached view, the CLI.

    python -m proxy.api_keys create NAME  (--ssm-path PATH --region REGION | --local FILE)
    python -m proxy.api_keys list         (--ssm-path PATH --region REGION | --local FILE)
    python -m proxy.api_keys revoke NAME  (--ssm-path PATH --region REGION | --local FILE)

With `--ssm-path` the keys live in the stack's region: `--region`, else `AWS_REGION`, else
the CLI refuses (exit 2) rather than write to the AWS config's default region, which is the
operator's, not necessarily the stack's.

A key is `ick_` and 43 URL-safe base64 characters: 256 random bits from `secrets`. `create`
prints it once, on stdout, and stores only its SHA-256, the time it was created and its first
12 characters (`ick_` and 8 more, so `list` can tell keys apart; 208 random bits stay
unknown). A plain SHA-256 is enough: slow, salted password hashes (bcrypt, scrypt, Argon2)
exist because passwords are guessable, and a stolen hash lets an attacker try billions of
likely passwords offline. A 256-bit random key has no likely values: finding a preimage is
2^256 work whatever the hash costs. SHA-256 costs a microsecond per request where a slow
hash would cost the proxy tens of milliseconds and make it easy to overload, and an unsalted
hash lets the proxy look a key up by its hash instead of trying each stored one.

The stores (the `KeyStore` protocol), one record per key name:

- `SsmKeyStore(path)`: SSM Parameter Store, the cloud's. One SecureString parameter per key,
  `<path>/<name>` (e.g. `/image-classifier-dev/api-keys/ci-bot`), encrypted with the
  AWS-managed key `alias/aws/ssm`, Standard tier (free), its value the JSON
  `{"version": 1, "sha256": "<64 hex>", "created": "<UTC ISO 8601>", "prefix": "ick_xxxxxxxx"}`.
  The proxy reads them all with `GetParametersByPath` (decrypted, paginated).
- `FileKeyStore(file)`: a JSON file for the local runtime, by convention `build/api-keys.json`
  (`DEFAULT_LOCAL_FILE`), mode 0600, written atomically:
  `{"version": 1, "keys": {"<name>": {"sha256": ..., "created": ..., "prefix": ...}}}`.

`KeyVerifier` is the proxy's view: key hash -> name, reloaded from the store at most every
`API_KEYS_CACHE_SECONDS`, so the store is never read per request. If a reload fails, the
copy it would have replaced is used for up to the same time again, and the store is tried
again `RETRY_SECONDS` later. What that means for a revoked key: docs/api.md#revocation-delay.

CLI exit status: 0 done, 1 the store failed (AWS error, credentials, permissions, an
unreadable file), 2 bad usage (a flag, a name, a path), 3 `create` of a name that exists,
4 `revoke` of a name that does not. Errors are one line, `error: ...`, on stderr.

Standard library and botocore only, like the rest of `proxy/`: the Lambda imports this
module at the first request that carries a key; the CLI needs nothing more.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from proxy.config import DEFAULT_API_KEYS_CACHE_SECONDS, ssm_path_problem
from proxy.logs import append_keys

KEY_PREFIX = "ick_"
KEY_RANDOM_BYTES = 32
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 8
FORMAT_VERSION = 1
DEFAULT_LOCAL_FILE = Path("build") / "api-keys.json"
"""Where the local runtime keeps its keys, relative to the repository root (build/ is ignored
by git)."""
RETRY_SECONDS = 2.0
"""After a failed reload, how long the proxy waits before asking the store again."""

EXIT_STORE = 1
EXIT_USAGE = 2
EXIT_EXISTS = 3
EXIT_NOT_FOUND = 4

_KEY = re.compile(r"^ick_[A-Za-z0-9_-]{43}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_USER_AGENT = "image-classifier-api-keys"


class StoreError(Exception):
    """The store could not be reached, refused us, or holds something unreadable."""


class KeyExists(Exception):
    """`add` of a name the store already holds."""


class KeyNotFound(Exception):
    """`remove` of a name the store does not hold."""


def new_key() -> str:
    """A fresh key: `ick_` and 256 random bits in URL-safe base64 (43 characters)."""
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def is_well_formed(key: str) -> bool:
    """Whether `key` has the shape of a key (not whether any store holds it)."""
    return _KEY.match(key) is not None


def key_hash(key: str) -> str:
    """The SHA-256 of a well-formed key, as 64 lower-case hex digits: what the stores hold."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a key, or None."""
    if _NAME.match(name):
        return None
    return (
        f"{name!r} is not a key name: 1 to 64 letters, digits, '.', '_' and '-', "
        "starting with a letter or digit"
    )


@dataclass(frozen=True)
class StoredKey:
    """What a store holds for one key: never the key itself."""

    name: str
    sha256: str
    created: str
    prefix: str

    @classmethod
    def issue(cls, name: str, key: str, now: datetime | None = None) -> StoredKey:
        created = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(name, key_hash(key), created, key[:SHOWN_PREFIX_LENGTH])

    def record(self) -> dict[str, str]:
        return {"sha256": self.sha256, "created": self.created, "prefix": self.prefix}

    @classmethod
    def from_record(cls, name: str, record: Any) -> StoredKey:
        """The key a stored record describes; ValueError when it is not one."""
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        sha256, created, prefix = (record.get(k) for k in ("sha256", "created", "prefix"))
        if not isinstance(sha256, str) or not _SHA256.match(sha256):
            raise ValueError("no sha256 of 64 hex digits")
        return cls(
            name,
            sha256,
            created if isinstance(created, str) else "",
            prefix if isinstance(prefix, str) else "",
        )


@dataclass(frozen=True)
class KeySet:
    """Everything a store holds: the readable keys, and the names of unreadable records."""

    keys: tuple[StoredKey, ...]
    unreadable: tuple[str, ...] = ()


class KeyStore(Protocol):
    def load(self) -> KeySet:
        """Every key; `StoreError` when the store cannot be read."""
        ...

    def add(self, key: StoredKey) -> None:
        """Store a new key; `KeyExists` if its name is taken, `StoreError` on failure."""
        ...

    def remove(self, name: str) -> None:
        """Delete a key; `KeyNotFound` if no key has that name, `StoreError` on failure."""
        ...

    def describe(self) -> str:
        """Where the keys are, for messages."""
        ...


class _Refused(StoreError):
    """An AWS error response, with its code (some mean KeyExists or KeyNotFound)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SsmKeyStore:
    """One SecureString parameter per key under an SSM Parameter Store path."""

    def __init__(
        self, path: str, *, region: str | None = None, client: Any = None, session: Any = None
    ) -> None:
        """`client` is an SSM client to use; else one is made from `session` (a botocore
        session; a new one by default) when first needed."""
        self.path = path
        self._region = region
        self._client = client
        self._session = session

    def describe(self) -> str:
        return f"SSM {self.path}" + (f" ({self._region})" if self._region else "")

    def load(self) -> KeySet:
        keys: list[StoredKey] = []
        unreadable: list[str] = []
        request: dict[str, Any] = {
            "Path": self.path,
            "Recursive": False,
            "WithDecryption": True,
            "MaxResults": 10,
        }
        while True:
            page = self._call("get_parameters_by_path", **request)
            for parameter in page.get("Parameters", []):
                name = str(parameter.get("Name", "")).rsplit("/", 1)[-1]
                try:
                    document = json.loads(parameter.get("Value", ""))
                    keys.append(StoredKey.from_record(name, document))
                except (TypeError, ValueError, RecursionError):
                    unreadable.append(name)
            token = page.get("NextToken")
            if not token:
                return KeySet(tuple(keys), tuple(unreadable))
            request["NextToken"] = token

    def add(self, key: StoredKey) -> None:
        value = json.dumps({"version": FORMAT_VERSION, **key.record()}, separators=(",", ":"))
        try:
            self._call(
                "put_parameter",
                Name=f"{self.path}/{key.name}",
                Value=value,
                Type="SecureString",
                Overwrite=False,
                Tier="Standard",
                Description=f"API key {key.name}: its SHA-256, never the key",
            )
        except _Refused as refused:
            if refused.code == "ParameterAlreadyExists":
                raise KeyExists(key.name) from None
            raise StoreError(refused.message) from None

    def remove(self, name: str) -> None:
        try:
            self._call("delete_parameter", Name=f"{self.path}/{name}")
        except _Refused as refused:
            if refused.code == "ParameterNotFound":
                raise KeyNotFound(name) from None
            raise StoreError(refused.message) from None

    def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        try:
            return getattr(self._ssm(), operation)(**request)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "Unknown")
            message = error.response.get("Error", {}).get("Message", "")
            raise _Refused(code, f"SSM {operation} on {self.path}: {code}: {message}") from None
        except BotoCoreError as error:
            raise StoreError(f"SSM {operation} on {self.path}: {error}") from None

    def _ssm(self) -> Any:
        if self._client is None:
            try:
                session = self._session or botocore.session.get_session()
                self._client = session.create_client(
                    "ssm",
                    region_name=self._region,
                    config=Config(
                        connect_timeout=1.0,
                        read_timeout=3.0,
                        retries={"mode": "standard", "total_max_attempts": 2},
                        user_agent_extra=_USER_AGENT,
                    ),
                )
            except NoRegionError:
                raise StoreError("no AWS region for SSM: pass --region or set AWS_REGION") from None
            except BotoCoreError as error:
                raise StoreError(f"SSM: {error}") from None
        return self._client


class FileKeyStore:
    """A JSON file of key records, for the local runtime and tests."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def describe(self) -> str:
        return str(self.path)

    def load(self) -> KeySet:
        keys: list[StoredKey] = []
        unreadable: list[str] = []
        for name, record in self._read()["keys"].items():
            try:
                keys.append(StoredKey.from_record(name, record))
            except ValueError:
                unreadable.append(name)
        return KeySet(tuple(keys), tuple(unreadable))

    def add(self, key: StoredKey) -> None:
        document = self._read()
        if key.name in document["keys"]:
            raise KeyExists(key.name)
        document["keys"][key.name] = key.record()
        self._write(document)

    def remove(self, name: str) -> None:
        document = self._read()
        if name not in document["keys"]:
            raise KeyNotFound(name)
        del document["keys"][name]
        self._write(document)

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"version": FORMAT_VERSION, "keys": {}}
        except (OSError, UnicodeDecodeError) as error:
            raise StoreError(f"cannot read {self.path}: {error}") from None
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            document = None
        if (
            not isinstance(document, dict)
            or document.get("version") != FORMAT_VERSION
            or not isinstance(document.get("keys"), dict)
        ):
            raise StoreError(
                f'{self.path} is not an API key file (expected {{"version": {FORMAT_VERSION}, '
                '"keys": {...}})'
            )
        return document

    def _write(self, document: dict[str, Any]) -> None:
        import tempfile

        text = json.dumps(document, indent=2, sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # mkstemp creates the file readable by its owner only; replace is atomic.
            handle, scratch = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
            )
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    out.write(text)
                os.replace(scratch, self.path)
            except BaseException:
                Path(scratch).unlink(missing_ok=True)
                raise
        except OSError as error:
            raise StoreError(f"cannot write {self.path}: {error}") from None


class KeyVerifier:
    """The proxy's copy of the store: key hash -> name, reloaded at most every `ttl` seconds.

    One per Lambda container, kept in module memory across invocations. Thread-safe: the
    local runtime serves requests in threads.
    """

    def __init__(
        self,
        store: KeyStore,
        ttl: float = DEFAULT_API_KEYS_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._names: dict[str, str] = {}
        self._loaded_at: float | None = None
        self._retry_at = float("-inf")
        self._error: StoreError | None = None
        self._lock = threading.Lock()

    def name_of(self, key: str) -> str | None:
        """The name of a well-formed `key`, or None if the store does not hold it."""
        return self._current().get(key_hash(key))

    def _current(self) -> dict[str, str]:
        loaded_at = self._loaded_at
        if loaded_at is not None and self._clock() - loaded_at < self._ttl:
            return self._names
        with self._lock:
            now = self._clock()
            if self._loaded_at is not None and now - self._loaded_at < self._ttl:
                return self._names  # another thread reloaded while this one waited
            if now >= self._retry_at:
                try:
                    keys = self._store.load()
                except StoreError as error:
                    self._error = error
                    self._retry_at = now + RETRY_SECONDS
                else:
                    self._names = {key.sha256: key.name for key in keys.keys}
                    self._loaded_at = now
                    self._error = None
                    append_keys(api_keys_loaded=len(keys.keys))
                    if keys.unreadable:
                        append_keys(api_keys_unreadable=list(keys.unreadable))
                    return self._names
            if self._loaded_at is not None and now - self._loaded_at < 2 * self._ttl:
                append_keys(api_keys_stale_s=round(now - self._loaded_at, 1))
                if self._error is not None:
                    append_keys(api_keys_error=str(self._error))
                return self._names
            raise self._error or StoreError("the API keys could not be loaded")


def store_from_args(args: Any) -> KeyStore:
    if args.ssm_path is not None:
        return SsmKeyStore(args.ssm_path, region=args.region)
    return FileKeyStore(args.local)


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    make_store: Callable[[Any], KeyStore] = store_from_args,
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
            stored = StoredKey.issue(name, key)
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


def _where(command: Any) -> None:
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


def _parser() -> Any:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m proxy.api_keys",
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
