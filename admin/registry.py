"""The model versions a stack's artifact bucket holds, and which stacks serve them.

    python -m admin.registry list [--bucket BUCKET] [--region REGION]
                                  [--serving OUTPUTS.json ...] [--json]

Every archive the stack uploads is `s3://<artifact bucket>/models/<version>/model.tar.gz`
(`components/inference_endpoint.py`), and stays after a newer one replaces it, which is
what makes a rollback to it possible. `list` shows each with its `metadata.json`: the
model's name and architecture, weights, precision, number of classes, and when it was
uploaded. It reads the sidecar `models/<version>/metadata.json` (the archive's own
`metadata.json`, uploaded beside it by the stack) when there is one; otherwise it streams the
archive only as far as its `metadata.json`, which `model.package` writes before
`model.onnx`, so it reads a few tens of kilobytes, not the model.

`--serving` takes the outputs of one or more stacks (`pulumi stack output --json >
prod.json`), each named by its file name (`prod`), and shows which of their variants serve
each version, with the share of requests each gets. The outputs used:

- `variants`: `[{"name": "main", "weight": 95, "model_version": "3f9a1c2b4d5e",
  "endpoint_name": "image-classifier-prod"}, ...]`, one per variant;
- or, from a stack without variants, `model_version` and `endpoint_name`: one variant
  `main` with every request;
- `artifact_bucket`: the bucket to list when `--bucket` is not given (the first file's).

A version served but absent from the bucket is listed too: its archive is elsewhere (the
other stack's bucket) or gone.

Exit status: 0 done (also for an empty bucket), 1 S3 failed (no such bucket, credentials,
permissions), 2 bad usage (flags, an outputs file that cannot be read or lacks what is
needed). Errors are one line, `error: ...`, on stderr.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

PREFIX = "models/"
ARCHIVE = "model.tar.gz"
SIDECAR = "metadata.json"
DEFAULT_VARIANT = "main"

EXIT_S3 = 1
EXIT_USAGE = 2

_USER_AGENT = "image-classifier-registry"


class RegistryError(Exception):
    """S3 could not be listed or read; the message says what failed."""


class OutputsError(ValueError):
    """A stack outputs file that cannot be read or lacks what is needed."""


@dataclass(frozen=True)
class Serving:
    """One variant of one stack that serves a version."""

    stack: str
    variant: str
    model_version: str
    weight: float
    share: float
    """Its weight over the sum of its stack's weights: the share of requests it gets."""
    endpoint_name: str


@dataclass(frozen=True)
class ModelVersion:
    """One archive in the bucket (or, with `uploaded` None, one only a stack names)."""

    key: str
    """`models/<version>`, the prefix of the archive and its sidecar."""
    version: str
    uploaded: datetime | None = None
    size: int | None = None
    metadata: dict[str, Any] | None = None
    metadata_source: str | None = None
    """`sidecar`, `archive`, or why the metadata could not be read."""
    serving: list[Serving] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        meta = self.metadata or {}
        return {
            "version": self.version,
            "archive": None if self.uploaded is None else f"{self.key}/{ARCHIVE}",
            "uploaded": None if self.uploaded is None else _iso(self.uploaded),
            "size": self.size,
            "name": meta.get("name"),
            "architecture": meta.get("architecture"),
            "weights": meta.get("weights"),
            "precision": meta.get("precision"),
            "num_classes": _classes(meta),
            "memory_mb_min": meta.get("memory_mb_min"),
            "metadata": self.metadata_source,
            "serving": [
                {
                    "stack": s.stack,
                    "variant": s.variant,
                    "weight": s.weight,
                    "share": round(s.share, 4),
                    "endpoint_name": s.endpoint_name,
                }
                for s in self.serving
            ],
        }


def version_slug(version: str) -> str:
    """The key segment of a version: as `artifact/registry.py`'s `version_slug`
    makes it (lowercase letters, digits and dashes, at most 12)."""
    return (re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-") or "v")[:12]


def read_serving(path: Path) -> tuple[str | None, list[Serving]]:
    """A stack outputs file: its `artifact_bucket` (or None) and its variants.
    `OutputsError` names the file and the problem."""
    stack = path.stem
    try:
        outputs = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        raise OutputsError(f"{path}: cannot read stack outputs ({error})") from None
    if not isinstance(outputs, dict):
        raise OutputsError(f"{path}: not the JSON object `pulumi stack output --json` prints")
    bucket = outputs.get("artifact_bucket")
    variants = outputs.get("variants")
    if variants is None:
        version, endpoint = outputs.get("model_version"), outputs.get("endpoint_name")
        if not isinstance(version, str) or not isinstance(endpoint, str):
            raise OutputsError(
                f"{path}: has neither the output variants nor model_version and endpoint_name"
            )
        variants = [
            {
                "name": DEFAULT_VARIANT,
                "weight": 1,
                "model_version": version,
                "endpoint_name": endpoint,
            }
        ]
    if not isinstance(variants, list) or not variants:
        raise OutputsError(f"{path}: the output variants is not a non-empty list")
    for variant in variants:
        if (
            not isinstance(variant, dict)
            or not all(isinstance(variant.get(k), str) for k in ("name", "model_version"))
            or not isinstance(variant.get("endpoint_name"), str)
            or isinstance(variant.get("weight"), bool)
            or not isinstance(variant.get("weight"), int | float)
            or variant["weight"] < 0
        ):
            raise OutputsError(
                f"{path}: each variant must be "
                '{"name": str, "weight": number >= 0, "model_version": str, "endpoint_name": str}'
                f", not {variant!r}"
            )
    total = sum(variant["weight"] for variant in variants)
    served = [
        Serving(
            stack=stack,
            variant=variant["name"],
            model_version=variant["model_version"],
            weight=variant["weight"],
            share=variant["weight"] / total if total else 0.0,
            endpoint_name=variant["endpoint_name"],
        )
        for variant in variants
    ]
    return (bucket if isinstance(bucket, str) and bucket else None), served


class Registry:
    """The model archives of one artifact bucket."""

    def __init__(self, bucket: str, *, region: str | None = None, client: Any = None) -> None:
        self.bucket = bucket
        self._s3 = client or boto3.client(
            "s3",
            region_name=region,
            config=Config(retries={"mode": "standard"}, user_agent_extra=_USER_AGENT),
        )

    def versions(self) -> list[ModelVersion]:
        """Every archive under `models/`, newest upload first, each with its metadata."""
        objects: dict[str, dict[str, dict[str, Any]]] = {}
        for entry in self._objects():
            prefix, _, name = entry["Key"].rpartition("/")
            if name in (ARCHIVE, SIDECAR) and prefix.count("/") == 1:
                objects.setdefault(prefix, {})[name] = entry
        found: list[tuple[datetime, ModelVersion]] = []
        for prefix, entries in objects.items():
            archive = entries.get(ARCHIVE)
            if archive is None:
                continue  # a sidecar whose archive is gone: nothing to serve
            metadata, source = self._metadata(prefix, SIDECAR in entries)
            version = metadata.get("version") if metadata else None
            uploaded = archive["LastModified"]
            found.append(
                (
                    uploaded,
                    ModelVersion(
                        key=prefix,
                        version=version if isinstance(version, str) else _slug_of(prefix),
                        uploaded=uploaded,
                        size=archive["Size"],
                        metadata=metadata,
                        metadata_source=source,
                    ),
                )
            )
        # S3 times are whole seconds: the key breaks ties, so the order is always the same.
        found.sort(key=lambda pair: (pair[0], pair[1].key), reverse=True)
        return [version for _, version in found]

    def _objects(self) -> Iterator[dict[str, Any]]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=PREFIX
        )
        try:
            for page in pages:
                yield from page.get("Contents", [])
        except (ClientError, BotoCoreError) as error:
            raise _failure("list", f"s3://{self.bucket}/{PREFIX}", error) from None

    def _metadata(self, prefix: str, sidecar: bool) -> tuple[dict[str, Any] | None, str]:
        """The version's metadata and where it came from, or None and why not."""
        try:
            if sidecar:
                with closing(self._get(f"{prefix}/{SIDECAR}")) as body:
                    return _checked(json.loads(body.read())), "sidecar"
            return _checked(self._from_archive(f"{prefix}/{ARCHIVE}")), "archive"
        except (ValueError, tarfile.TarError, OSError, EOFError, BotoCoreError) as error:
            return None, f"unreadable: {error}"

    def _from_archive(self, key: str) -> Any:
        """`metadata.json` of an archive, read as the archive streams in: the rest of the
        body is never downloaded once it is found."""
        with closing(self._get(key)) as body, tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                if member.name.removeprefix("./") == SIDECAR and member.isfile():
                    stream = archive.extractfile(member)
                    if stream is not None:
                        return json.load(stream)
        raise ValueError(f"{key} has no {SIDECAR}")

    def _get(self, key: str) -> Any:
        try:
            return self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        except (ClientError, BotoCoreError) as error:
            raise _failure("read", f"s3://{self.bucket}/{key}", error) from None


def with_serving(versions: list[ModelVersion], served: list[Serving]) -> list[ModelVersion]:
    """`versions` with the variants that serve each, and a row for each version served but
    not in the bucket."""
    in_bucket = {_slug_of(v.key) for v in versions}
    serving: dict[str, list[Serving]] = {}
    missing: dict[str, str] = {}
    for what in served:
        slug = version_slug(what.model_version)
        serving.setdefault(slug, []).append(what)
        if slug not in in_bucket:
            missing[slug] = what.model_version
    result = [replace(v, serving=serving.get(_slug_of(v.key), [])) for v in versions]
    result += [
        ModelVersion(key=f"{PREFIX}{slug}", version=version, serving=serving[slug])
        for slug, version in missing.items()
    ]
    return result


def render_table(versions: Sequence[ModelVersion]) -> str:
    header = ("VERSION", "UPLOADED", "MODEL", "WEIGHTS", "PRECISION", "CLASSES", "SIZE", "SERVING")
    rows = [header]
    for v in versions:
        meta = v.metadata or {}
        rows.append(
            (
                v.version,
                "(not in bucket)"
                if v.uploaded is None
                else v.uploaded.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                str(meta.get("name") or meta.get("architecture") or "-"),
                str(meta.get("weights") or "-"),
                str(meta.get("precision") or "-"),
                str(_classes(meta) or "-"),
                "-" if v.size is None else f"{v.size / 1e6:.1f} MB",
                ", ".join(f"{s.stack}:{s.variant} {s.share:.0%}" for s in v.serving) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    notes = [
        f"{v.version}: metadata {v.metadata_source}"
        for v in versions
        if v.metadata_source and v.metadata_source.startswith("unreadable")
    ]
    return "\n".join([*(line.rstrip() for line in lines), *notes])


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """The CLI; returns its exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = _parser().parse_args(argv)
    served: list[Serving] = []
    bucket = args.bucket
    try:
        for path in args.serving:
            outputs_bucket, variants = read_serving(Path(path))
            bucket = bucket or outputs_bucket
            served += variants
    except OutputsError as error:
        print(f"error: {error}", file=err)
        return EXIT_USAGE
    if bucket is None:
        print(
            "error: name the artifact bucket with --bucket (pulumi stack output "
            "artifact_bucket), or pass --serving with a stack's outputs that have it",
            file=err,
        )
        return EXIT_USAGE
    try:
        versions = with_serving(Registry(bucket, region=args.region).versions(), served)
    except RegistryError as error:
        print(f"error: {error}", file=err)
        return EXIT_S3
    if args.json:
        document = {"bucket": bucket, "versions": [v.as_json() for v in versions]}
        print(json.dumps(document, indent=2), file=out)
    elif versions:
        print(render_table(versions), file=out)
    else:
        print(f"No model archives in s3://{bucket}/{PREFIX}.", file=err)
    return 0


def _slug_of(prefix: str) -> str:
    """The version segment of `models/<version>`."""
    return prefix.removeprefix(PREFIX)


def _failure(what: str, where: str, error: Exception) -> RegistryError:
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "Unknown")
        message = error.response.get("Error", {}).get("Message", "")
        return RegistryError(f"cannot {what} {where}: {code}: {message}")
    return RegistryError(f"cannot {what} {where}: {error}")


def _classes(meta: dict[str, Any]) -> int | None:
    classes = meta.get("num_classes")
    if isinstance(classes, int) and not isinstance(classes, bool):
        return classes
    labels = meta.get("labels")
    return len(labels) if isinstance(labels, list) else None


def _checked(metadata: Any) -> dict[str, Any]:
    if not isinstance(metadata, dict):
        raise ValueError(f"{SIDECAR} is not a JSON object")
    return metadata


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m admin.registry",
        description="The model versions in a stack's artifact bucket, and what serves them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    listing = commands.add_parser(
        "list", help="every archive with its metadata and the variants that serve it"
    )
    listing.add_argument(
        "--bucket", help="the artifact bucket (pulumi stack output artifact_bucket)"
    )
    listing.add_argument("--region", help="the bucket's AWS region (default: the AWS config's)")
    listing.add_argument(
        "--serving",
        nargs="+",
        default=[],
        metavar="OUTPUTS.json",
        help="stack outputs (pulumi stack output --json > prod.json), named by file name",
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


if __name__ == "__main__":
    sys.exit(main())
