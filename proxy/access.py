"""Who may reach the model: CloudFront, by the origin header, or a program, by its API key.

CloudFront adds `x-origin-verify: <ORIGIN_SECRET>` to every request it forwards to the HTTP
API; a request without it came to the `execute-api` URL directly. With API keys on
(`API_KEYS_PATH` or `API_KEYS_FILE`), a valid `x-api-key` admits such a request instead. A key
that is sent is always checked, whichever way the request came: a revoked key is refused on
every path, so its program learns it at once. The rule, refusals first:

| the request | answer |
| --- | --- |
| a malformed `x-api-key` (keys on) | 401 `api_key_invalid` |
| a well-formed key the store does not hold (unknown or revoked) | 403 `api_key_refused` |
| a key while the store cannot be read (and no recent copy) | 503 `api_keys_unavailable` |
| a valid key | admitted, `"access": "api_key"`, `"api_key": <name>` in the log |
| the origin header with the secret, or the previous one (a rotation) | `"access": "origin"` |
| neither, keys on | 401 `api_key_missing` (with `www-authenticate`) |
| neither, keys off | 403 `forbidden` |
| anything else, `ORIGIN_SECRET` unset (local runs, tests) | admitted, `"access": "open"` |

With keys off, `x-api-key` is ignored: it neither admits nor refuses.

Neither the secret nor a key is ever logged or echoed: the log says only which way a request
came in, whether the origin header was missing or wrong, a key's name, and
`"origin_secret": "previous"` for the previous secret of a rotation. Each secret is
compared in constant time (`hmac.compare_digest`), all of them every time; a key is looked
up by its SHA-256.

`ORIGIN_HEADER` is a contract (`shared.api`): the stack sets a custom header of that name on
CloudFront's API origin, and the local runtime adds it to the requests it forwards as
CloudFront does. The key store (`proxy.api_keys`) is imported and read only at the first
request that carries a key, so the cold start does not grow.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from proxy.config import ConfigError, ProxyConfig
from proxy.logs import append_keys
from proxy.responses import ApiError
from shared.api import API_KEY_HEADER, ORIGIN_HEADER

if TYPE_CHECKING:
    from proxy.api_keys import KeyVerifier
    from proxy.local_stores import LocalStores

VIEWER_ADDRESS_HEADER = "cloudfront-viewer-address"
"""The visitor's `ip:port`, which CloudFront adds (its origin request policy forwards it)."""
_MAX_ADDRESS = 64
WWW_AUTHENTICATE = f'ApiKey header="{API_KEY_HEADER}"'
"""The challenge of every 401 (RFC 9110 requires one)."""
RETRY_AFTER_KEYS_UNAVAILABLE = 5


class Access:
    """The check every request passes before anything else, `admit(event)`."""

    def __init__(
        self,
        origin_secret: str | None = None,
        keys: Callable[[], KeyVerifier] | None = None,
        previous_secret: str | None = None,
    ) -> None:
        """`keys` makes the key verifier when first needed; None turns API keys off.
        `previous_secret`, during a rotation, is admitted as well as `origin_secret`."""
        self._secrets = tuple(
            secret.encode("ascii") for secret in (origin_secret, previous_secret) if secret
        )
        self._make_keys = keys
        self._keys: KeyVerifier | None = None

    @classmethod
    def from_config(
        cls,
        config: ProxyConfig,
        clock: Callable[[], float] = time.monotonic,
        session: Any = None,
        local: LocalStores | None = None,
    ) -> Access:
        """The access `config` describes; `session` is the botocore session to make the SSM
        client from (the container's, to save most of a new session's cost). An
        `API_KEYS_FILE` is read with what `local` supplies (`proxy.local_stores`), and is a
        `ConfigError` without it."""
        keys = None
        if config.api_keys_path is not None:
            path = config.api_keys_path

            def keys() -> KeyVerifier:
                from proxy.api_keys import KeyVerifier, SsmKeyStore

                store = SsmKeyStore(path, session=session)
                return KeyVerifier(store, config.api_keys_cache_seconds, clock)

        elif config.api_keys_file is not None:
            if local is None:
                raise ConfigError(
                    f"API_KEYS_FILE={config.api_keys_file!r} is a local file, which only the "
                    "local runtime can read (on AWS the stack sets API_KEYS_PATH)"
                )
            file, open_file = config.api_keys_file, local.api_keys

            def keys() -> KeyVerifier:
                from proxy.api_keys import KeyVerifier

                return KeyVerifier(open_file(file), config.api_keys_cache_seconds, clock)

        return cls(config.origin_secret, keys, config.origin_secret_previous)

    def admit(self, event: Any) -> None:
        """Return if the request may go on (its way in appended to the log), else raise."""
        headers = event.get("headers") if isinstance(event, dict) else None
        presented = _header(headers, ORIGIN_HEADER)
        matched = None if presented is None or not self._secrets else self._match(presented)
        # Behind the secret the connection is CloudFront's edge, and the visitor is the one
        # its header names; anywhere else a header anyone can send is not believed.
        viewer = (
            viewer_ip(_header(headers, VIEWER_ADDRESS_HEADER))
            if matched is not None
            else _source_ip(event)
        )
        if viewer is not None:
            append_keys(viewer_ip=viewer)
        if self._make_keys is not None:
            key = _header(headers, API_KEY_HEADER)
            if key is not None:
                append_keys(access="api_key", api_key=self._name_of(key))
                return
        if not self._secrets:
            append_keys(access="open")
            return
        if matched is not None:
            append_keys(access="origin", **({"origin_secret": "previous"} if matched else {}))
            return
        append_keys(origin_header="missing" if presented is None else "wrong")
        if self._make_keys is None:
            raise ApiError(
                403,
                "forbidden",
                "This API answers only requests made through the site's address (/api/predict).",
            )
        raise ApiError(
            401,
            "api_key_missing",
            f"Send your API key in the {API_KEY_HEADER} header, or call the API through the "
            "site's address (/api/predict).",
            headers={"www-authenticate": WWW_AUTHENTICATE},
        )

    def _match(self, presented: str) -> int | None:
        """Which secret `presented` is (0 the current, 1 the previous), or None. Each is
        compared, in constant time, whichever matches: the time says nothing about which."""
        # Bytes: compare_digest refuses str with non-ASCII characters, which anyone can send.
        sent = presented.encode("utf-8", "surrogatepass")
        matches = [hmac.compare_digest(sent, secret) for secret in self._secrets]
        return matches.index(True) if True in matches else None

    def _name_of(self, key: str) -> str:
        from proxy.api_keys import StoreError, is_well_formed

        if not is_well_formed(key):
            raise ApiError(
                401,
                "api_key_invalid",
                f"The {API_KEY_HEADER} header does not hold an API key "
                "(a key is ick_ followed by 43 letters, digits, '-' and '_').",
                headers={"www-authenticate": WWW_AUTHENTICATE},
            )
        if self._keys is None:
            assert self._make_keys is not None
            self._keys = self._make_keys()
        try:
            name = self._keys.name_of(key)
        except StoreError as error:
            append_keys(detail=str(error))
            raise ApiError(
                503,
                "api_keys_unavailable",
                "API keys cannot be checked right now; try again in a few seconds.",
                retry_after=RETRY_AFTER_KEYS_UNAVAILABLE,
            ) from None
        if name is None:
            raise ApiError(
                403, "api_key_refused", "This API key is not valid: it is unknown or revoked."
            )
        return name


def viewer_ip(address: str | None) -> str | None:
    """The IP address of CloudFront's `ip:port` (IPv6 unbracketed, as CloudFront writes
    it, or bracketed), normalised; None for anything else."""
    if address is None or len(address) > _MAX_ADDRESS:
        return None
    host, colon, port = address.rpartition(":")
    if not colon or not port.isascii() or not port.isdigit() or int(port) > 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    # Imported at the first address to parse, not at init: a refused request never needs it.
    import ipaddress

    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped if mapped is not None else ip)


def _source_ip(event: Any) -> str | None:
    """API Gateway's `requestContext.http.sourceIp`: the connection's address."""
    try:
        source = event["requestContext"]["http"]["sourceIp"]
    except (KeyError, TypeError):
        return None
    return source if isinstance(source, str) and len(source) <= _MAX_ADDRESS else None


def _header(headers: Any, name: str) -> str | None:
    """The stripped value of header `name` (lower-case), or None when absent or empty.

    HTTP API payload 2.0 lower-cases header names (and joins repeated headers with commas);
    other spellings are looked for too, for events built by hand.
    """
    if not isinstance(headers, dict):
        return None
    value = headers.get(name)
    if value is None:
        for other, candidate in headers.items():
            if isinstance(other, str) and other.lower() == name:
                value = candidate
                break
    if not isinstance(value, str):
        return None
    return value.strip() or None
