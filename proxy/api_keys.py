"""API keys as the proxy checks them: the key's shape, what a store holds, the SSM store, the
proxy's cached view.

A key is `ick_` and 43 URL-safe base64 characters (256 random bits; `python -m
admin.api_keys` issues them, and says why a plain SHA-256 is enough). A store holds, per key
name, never the key: its SHA-256, the time it was created and its first 12 characters.

The stores (the `KeyStore` protocol), one record per key name:

- `SsmKeyStore(path)`: SSM Parameter Store, the cloud's. One SecureString parameter per key,
  `<path>/<name>` (e.g. `/image-classifier-dev/api-keys/ci-bot`), encrypted with the
  AWS-managed key `alias/aws/ssm`, Standard tier (free), its value the JSON
  `{"version": 1, "sha256": "<64 hex>", "created": "<UTC ISO 8601>", "prefix": "ick_xxxxxxxx"}`.
  The proxy reads them all with `GetParametersByPath` (decrypted, paginated), which is all
  its role allows; `add` and `remove` are for `python -m admin.api_keys`.
- the local runtime's, for `API_KEYS_FILE`: supplied by it (`proxy.local_stores`), never in
  the Lambda's zip.

`KeyVerifier` is the proxy's view: key hash -> name, reloaded from the store at most every
`API_KEYS_CACHE_SECONDS`, so the store is never read per request. If a reload fails, the
copy it would have replaced is used for up to the same time again, and the store is tried
again `RETRY_SECONDS` later. What that means for a revoked key: docs/api.md#revocation-delay.

Standard library and botocore only, like the rest of `proxy/`: the Lambda imports this
module at the first request that carries a key.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from proxy.config import DEFAULT_API_KEYS_CACHE_SECONDS
from proxy.logs import append_keys

KEY_PREFIX = "ick_"
FORMAT_VERSION = 1
RETRY_SECONDS = 2.0
"""After a failed reload, how long the proxy waits before asking the store again."""

_KEY = re.compile(r"^ick_[A-Za-z0-9_-]{43}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_USER_AGENT = "image-classifier-api-keys"


class StoreError(Exception):
    """The store could not be reached, refused us, or holds something unreadable."""


class KeyExists(Exception):
    """`add` of a name the store already holds."""


class KeyNotFound(Exception):
    """`remove` of a name the store does not hold."""


def is_well_formed(key: str) -> bool:
    """Whether `key` has the shape of a key (not whether any store holds it)."""
    return _KEY.match(key) is not None


def key_hash(key: str) -> str:
    """The SHA-256 of a well-formed key, as 64 lower-case hex digits: what the stores hold."""
    return hashlib.sha256(key.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class StoredKey:
    """What a store holds for one key: never the key itself."""

    name: str
    sha256: str
    created: str
    prefix: str

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
                raise StoreError("no AWS region for SSM: set AWS_REGION") from None
            except BotoCoreError as error:
                raise StoreError(f"SSM: {error}") from None
        return self._client


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
