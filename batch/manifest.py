"""Which images of an S3 prefix a transform job gets: those without an outcome yet.

The inputs are the objects under `s3://BUCKET/PREFIX/`, except "folders" and hidden names
(a path segment starting with a dot), as `python -m batch run DIR` skips hidden files;
an image's *name* is its key without the prefix, which names its outcome under `--out`.
What `run DIR` decides from a folder, this decides from a listing: an image is done when
its outcome records its current ETag (`pipeline.tasks.existing_outcome`), except
retryable failures and too-large refusals a higher `--max-image-bytes` takes; outcomes of
another model version stop the run unless `--reclassify` (`batch.runner.sort_seen`,
`check_version`). Only the outcome files the listing shows are read.

Each image left is judged by its first bytes (a ranged GET, `HEAD_BYTES`) as the API
judges an upload (`pipeline.tasks.check_image`): empty, too large, not an image or of an
unsupported format, it is `failed/` at once with the API's code, never sent to the job.
The rest, with the media type sniffed from those bytes, make the manifest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from batch.runner import Scan, Seen, sort_seen, too_large_advice
from pipeline.storage import Blob, ObjectInfo, S3Storage, Storage, StorageError
from pipeline.tasks import (
    ImageRefused,
    Job,
    TaskError,
    caught,
    check_image,
    existing_outcome,
    record_failure,
    storage_failed,
)

HEAD_BYTES = 4096
"""Enough for every signature `proxy.request` sniffs, and for markup after white space."""
S3_WORKERS = 32
"""Requests to S3 in flight: a million small GETs take minutes, not hours."""
T = TypeVar("T")


class S3UrlError(ValueError):
    """Not an `s3://BUCKET/PREFIX/` URL; the message says so."""


@dataclass(frozen=True)
class S3Folder:
    """`s3://bucket/prefix/` (prefix "" for the whole bucket)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, text: str) -> S3Folder:
        bucket, _slash, prefix = text.removeprefix("s3://").partition("/")
        if not text.startswith("s3://") or not bucket or "//" in prefix:
            raise S3UrlError(f"{text}: not s3://BUCKET/PREFIX/")
        return cls(bucket, prefix if not prefix or prefix.endswith("/") else f"{prefix}/")

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def holds(self, other: S3Folder) -> bool:
        return self.bucket == other.bucket and other.prefix.startswith(self.prefix)


class Listed:
    """A store whose outcome files were listed once (`present`): reading or deleting one
    that is not there costs no request. What a million images' look-up needs."""

    def __init__(self, inner: Storage, present: set[str]) -> None:
        self.inner = inner
        self.present = present

    def describe(self) -> str:
        return self.inner.describe()

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        return self.inner.iter_keys(prefix)

    def info(self, key: str) -> ObjectInfo | None:
        return self.inner.info(key) if key in self.present else None

    def read(self, key: str, limit: int) -> Blob:
        return self.inner.read(key, limit)

    def read_json(self, key: str) -> dict[str, Any] | None:
        return self.inner.read_json(key) if key in self.present else None

    def write_json(self, key: str, document: dict[str, Any]) -> None:
        self.inner.write_json(key, document)
        self.present.add(key)

    def delete(self, key: str) -> None:
        if key in self.present:
            self.inner.delete(key)
            self.present.discard(key)


@dataclass(frozen=True)
class Image:
    """An input image as the listing shows it."""

    job: Job
    info: ObjectInfo


def list_images(s3: Any, folder: S3Folder, out: Storage) -> list[Image]:
    """Every input under `folder`, its outcomes in `out`."""
    source = S3Storage(folder.bucket, client=s3)
    found = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=folder.bucket, Prefix=folder.prefix)
    for page in pages:
        for item in page.get("Contents", []):
            key = item["Key"]
            name = key.removeprefix(folder.prefix)
            if not name or key.endswith("/") or any(p.startswith(".") for p in name.split("/")):
                continue
            info = ObjectInfo(int(item["Size"]), str(item.get("ETag", "")).strip('"'))
            found.append(Image(Job(source, key, out, name), info))
    return found


def each(
    items: Iterable[T],
    work: Callable[[T], None],
    *,
    should_stop: Callable[[], bool],
    workers: int = S3_WORKERS,
) -> None:
    """`work` on every item, `workers` at a time, until `should_stop()`; the first
    exception of a `work` is raised once every thread has ended."""
    iterator = iter(items)
    lock = threading.Lock()
    raised: list[BaseException] = []

    def run() -> None:
        while not should_stop() and not raised:
            with lock:
                item = next(iterator, None)
            if item is None:
                return
            try:
                work(item)
            except BaseException as error:  # re-raised in the caller's thread
                raised.append(error)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():  # a timed join lets the main thread take its signals
            thread.join(0.2)
    if raised:
        raise raised[0]


def look(images: list[Image], *, max_image_bytes: int, should_stop: Callable[[], bool]) -> Scan:
    """The images sorted by what a run must do with them (`batch.runner.sort_seen`)."""
    seen: dict[str, Seen] = {}

    def one(image: Image) -> None:
        try:
            outcome = existing_outcome(image.job, image.info.etag)
        except TaskError:
            outcome = None  # its outcome cannot be read: done again, and written anew
        seen[image.job.key] = Seen(image.job, image.info, outcome)

    each(images, one, should_stop=should_stop)
    return sort_seen(
        (seen.get(image.job.key) or Seen(image.job, image.info) for image in images),
        max_image_bytes=max_image_bytes,
    )


@dataclass
class Checked:
    """The images to send, each with the media type of its first bytes; the count of those
    refused (their outcomes written to `failed/`)."""

    accepted: list[tuple[Image, str]]
    refused: int = 0


def check(
    images: list[Image],
    *,
    max_image_bytes: int,
    should_stop: Callable[[], bool],
    progress: Callable[[], None] = lambda: None,
) -> Checked:
    """Judge each image by its first bytes; write the refused ones' failures."""
    accepted: dict[str, str] = {}
    refused: list[str] = []

    def one(image: Image) -> None:
        try:
            accepted[image.job.key] = media_type(image, max_image_bytes)
        except TaskError as error:
            record_failure(image.job, caught(error))
            refused.append(image.job.key)
        progress()

    each(images, one, should_stop=should_stop)
    return Checked(
        [(image, accepted[image.job.key]) for image in images if image.job.key in accepted],
        len(refused),
    )


def media_type(image: Image, max_image_bytes: int) -> str:
    """The media type of an image's first bytes, or the `TaskError` `run DIR` would record:
    an `ImageRefused` with the API's code (too large: `batch run`'s advice)."""
    size = image.info.size
    if size > max_image_bytes:
        raise ImageRefused(413, "payload_too_large", too_large_advice(size, max_image_bytes))
    head = b""
    if size:  # S3 refuses a range of an empty object
        source = image.job.source
        assert isinstance(source, S3Storage)
        try:
            head = source.first_bytes(image.job.key, HEAD_BYTES)
        except StorageError as error:
            raise storage_failed(error) from None
    return check_image(Blob(head, size, image.info.etag), max_image_bytes).media_type
