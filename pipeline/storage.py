"""Where the batch pipeline reads images and keeps its outcomes: one interface, two backends.

- `S3Storage(bucket)`: the cloud's inbox bucket. Images arrive under `inbox/`; the tasks
  write `results/`, `review/` and `failed/` beside them in the same bucket. With a
  `prefix`, a folder of a bucket: where a transform job's outcomes go (`batch.transform`).
- `LocalStorage(root)`: a folder, for `python -m batch run DIR --out OUT` (DIR is one
  `LocalStorage` holding the images, OUT another holding the outcomes).

Keys are `/`-separated and relative (`cats/1.jpg`, `results/cats/1.jpg.json`). Every
object has an `etag` that changes when its bytes do: S3's own ETag, or a local file's size
and modification time; an outcome records its image's etag, which is how a task knows an
image is already done.

Standard library and botocore only: this module runs in the batch Lambda.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

INBOX = "inbox/"
"""Where images arrive in the cloud's bucket (the EventBridge rule's prefix)."""
RESULTS = "results/"
REVIEW = "review/"
FAILED = "failed/"
OUTCOME_FOLDERS = (RESULTS, REVIEW, FAILED)
"""Every image ends in exactly one: `<folder><name>.json`."""
TRANSFORM = "transform/"
"""In the cloud's bucket, `transform/<job>/`: a transform job's manifest, record and raw
outputs (`batch.transform`), sorted into the outcome folders by the command."""

_USER_AGENT = "image-classifier-batch"
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class StorageError(Exception):
    """The store could not be read or written; the message says which object and why."""


class ObjectMissing(StorageError):
    """The object does not exist (deleted after its event was sent, or never there)."""


@dataclass(frozen=True)
class Blob:
    """An object's bytes, or None when it is larger than the reader's limit (not read)."""

    data: bytes | None
    size: int
    etag: str


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    etag: str


class Storage(Protocol):
    def describe(self) -> str:
        """Where the objects are: `s3://bucket` or an absolute folder path."""
        ...

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Every object key under `prefix`, sorted."""
        ...

    def info(self, key: str) -> ObjectInfo | None:
        """Size and etag of an object, or None if it does not exist."""
        ...

    def read(self, key: str, limit: int) -> Blob:
        """The object's bytes if it is at most `limit` bytes long; `ObjectMissing`."""
        ...

    def read_json(self, key: str) -> dict[str, Any] | None:
        """The JSON object stored at `key`, or None if there is none (or it is not one)."""
        ...

    def write_json(self, key: str, document: dict[str, Any]) -> None:
        """Store `document` at `key` whole (a reader never sees half of it)."""
        ...

    def delete(self, key: str) -> None:
        """Delete `key`; deleting what is not there is not an error."""
        ...


def dumps(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def _loads(data: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(data)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


class LocalStorage:
    """A folder. Hidden files and folders (a leading dot) are not listed, nor `exclude`
    (the output folder, when it lies inside the input folder)."""

    def __init__(self, root: str | os.PathLike[str], *, exclude: Path | None = None) -> None:
        self.root = Path(root).resolve()
        self._exclude = exclude.resolve() if exclude is not None else None

    def describe(self) -> str:
        return str(self.root)

    def path(self, key: str) -> Path:
        """The file of `key`; a `StorageError` for a key that would leave the folder."""
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts):
            raise StorageError(f"{key!r} is not a relative key inside {self.root}")
        return self.root.joinpath(*parts)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        start = self.root / prefix.rstrip("/") if prefix.strip("/") else self.root
        if not start.is_dir():
            return
        found = []
        for folder, dirs, files in os.walk(start):
            here = Path(folder)
            dirs[:] = [
                d for d in dirs if not d.startswith(".") and (here / d).resolve() != self._exclude
            ]
            for name in files:
                if not name.startswith("."):
                    found.append((here / name).relative_to(self.root).as_posix())
        yield from sorted(key for key in found if key.startswith(prefix))

    def info(self, key: str) -> ObjectInfo | None:
        try:
            stat = self.path(key).stat()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StorageError(f"{self.path(key)}: {error.strerror or error}") from None
        return ObjectInfo(stat.st_size, _local_etag(stat))

    def read(self, key: str, limit: int) -> Blob:
        path = self.path(key)
        try:
            with path.open("rb") as file:
                stat = os.fstat(file.fileno())
                if stat.st_size > limit:
                    return Blob(None, stat.st_size, _local_etag(stat))
                data = file.read(limit + 1)
        except FileNotFoundError:
            raise ObjectMissing(f"{path}: no such file") from None
        except IsADirectoryError:
            raise ObjectMissing(f"{path}: a folder, not a file") from None
        except OSError as error:
            raise StorageError(f"{path}: {error.strerror or error}") from None
        if len(data) > limit:  # it grew since it was opened
            return Blob(None, len(data), _local_etag(stat))
        return Blob(data, len(data), _local_etag(stat))

    def read_json(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        try:
            return _loads(path.read_bytes())
        except (FileNotFoundError, IsADirectoryError):
            return None
        except OSError as error:
            raise StorageError(f"{path}: {error.strerror or error}") from None

    def write_json(self, key: str, document: dict[str, Any]) -> None:
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # A temporary file renamed over the target: a run stopped half-way never
            # leaves half a JSON file behind.
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(dumps(document))
                    # mkstemp's 0600, before the rename: outcomes read as any file written.
                    os.fchmod(file.fileno(), 0o644)
                os.replace(temporary, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as error:
            raise StorageError(f"{path}: {error.strerror or error}") from None

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise StorageError(f"{path}: {error.strerror or error}") from None


def _local_etag(stat: os.stat_result) -> str:
    return f"{stat.st_size}-{stat.st_mtime_ns}"


class S3Storage:
    """A bucket, or the keys under `prefix` in it (a "folder" ending in `/`, whose keys are
    then relative to it), through the low-level botocore client (no boto3 resource layer)."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        client: Any = None,
        session: Any = None,
        region: str | None = None,
    ) -> None:
        """`client` is an S3 client to use; else one is made from `session` (a botocore
        session, e.g. the Lambda's `RuntimeClients.session`) when first needed."""
        if prefix and not prefix.endswith("/"):
            raise ValueError(f"prefix {prefix!r}: a folder, ending in /")
        self.bucket = bucket
        self.prefix = prefix
        self._client = client
        self._session = session
        self._region = region

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".removesuffix("/")

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        while True:
            page = self._call("list_objects_v2", prefix, **request)
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):  # a console "folder", not an object
                    yield item["Key"].removeprefix(self.prefix)
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    def info(self, key: str) -> ObjectInfo | None:
        try:
            head = self._call("head_object", key, Bucket=self.bucket, Key=self.prefix + key)
        except ObjectMissing:
            return None
        return ObjectInfo(int(head["ContentLength"]), _etag(head))

    def read(self, key: str, limit: int) -> Blob:
        answer = self._call("get_object", key, Bucket=self.bucket, Key=self.prefix + key)
        size = int(answer["ContentLength"])
        body = answer["Body"]
        try:
            if size > limit:
                return Blob(None, size, _etag(answer))
            data = body.read()
        except BotoCoreError as error:
            raise StorageError(f"{self.describe()}/{key}: reading failed: {error}") from None
        finally:
            body.close()
        return Blob(data, len(data), _etag(answer))

    def first_bytes(self, key: str, count: int) -> bytes:
        """The object's first `count` bytes (all of a shorter one); `ObjectMissing`."""
        answer = self._call(
            "get_object",
            key,
            Bucket=self.bucket,
            Key=self.prefix + key,
            Range=f"bytes=0-{count - 1}",
        )
        try:
            return answer["Body"].read()
        except BotoCoreError as error:
            raise StorageError(f"{self.describe()}/{key}: reading failed: {error}") from None
        finally:
            answer["Body"].close()

    def read_json(self, key: str) -> dict[str, Any] | None:
        try:
            answer = self._call("get_object", key, Bucket=self.bucket, Key=self.prefix + key)
        except ObjectMissing:
            return None
        try:
            return _loads(answer["Body"].read())
        except BotoCoreError as error:
            raise StorageError(f"{self.describe()}/{key}: reading failed: {error}") from None

    def write_json(self, key: str, document: dict[str, Any]) -> None:
        self._call(
            "put_object",
            key,
            Bucket=self.bucket,
            Key=self.prefix + key,
            Body=dumps(document),
            ContentType="application/json",
        )

    def delete(self, key: str) -> None:
        self._call("delete_object", key, Bucket=self.bucket, Key=self.prefix + key)

    def _call(self, operation: str, key: str, **request: Any) -> dict[str, Any]:
        try:
            return getattr(self._s3(), operation)(**request)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "Unknown"))
            message = error.response.get("Error", {}).get("Message", "")
            where = f"{self.describe()}/{key}"
            if code in _MISSING_CODES:
                raise ObjectMissing(f"{where}: no such object") from None
            raise StorageError(f"{where}: S3 {operation}: {code}: {message}") from None
        except BotoCoreError as error:
            raise StorageError(f"{self.describe()}/{key}: S3 {operation}: {error}") from None

    def _s3(self) -> Any:
        if self._client is None:
            try:
                session = self._session or botocore.session.get_session()
                self._client = session.create_client(
                    "s3",
                    region_name=self._region,
                    config=Config(
                        retries={"mode": "standard", "total_max_attempts": 3},
                        user_agent_extra=_USER_AGENT,
                    ),
                )
            except BotoCoreError as error:
                raise StorageError(f"S3: {error}") from None
        return self._client


def _etag(answer: dict[str, Any]) -> str:
    return str(answer.get("ETag", "")).strip('"')


def open_location(location: str) -> Storage:
    """The storage an outcome's `source.location` names: `s3://bucket` or a folder."""
    if location.startswith("s3://"):
        return S3Storage(location.removeprefix("s3://").split("/", 1)[0])
    return LocalStorage(location)
