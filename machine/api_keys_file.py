"""The local runtime's API key store: a JSON file, `API_KEYS_FILE`.

It keeps the contract of `proxy.api_keys.KeyStore` (the suite in tests/proxy/test_api_keys.py
runs against it and SSM alike). By convention the file is `build/api-keys.json`
(`DEFAULT_LOCAL_FILE`), mode 0600, written atomically:
`{"version": 1, "keys": {"<name>": {"sha256": ..., "created": ..., "prefix": ...}}}`.

Outside the Lambda's zip: the local runtime supplies it to the proxy (`proxy.local_stores`),
and `python -m admin.api_keys --local FILE` manages the keys in it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from proxy.api_keys import FORMAT_VERSION, KeyExists, KeyNotFound, KeySet, StoredKey, StoreError

DEFAULT_LOCAL_FILE = Path("build") / "api-keys.json"
"""Where the local runtime keeps its keys, relative to the repository root (build/ is ignored
by git)."""


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
