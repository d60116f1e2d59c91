"""`python -m batch export`: the reviewed images, back to training.

    python -m batch export --out DIR (--from OUT | --bucket B) [--images SOURCE]

Writes every reviewed image (`results/` items with `"reviewed"`) as `DIR/<label>/<file>`,
the layout torchvision's `ImageFolder` reads, hence `python -m model.finetune --data DIR`.
Folder names are the labels made safe for any file system (no `/ \\ : * ? " < > |`,
control characters, leading dots, trailing dots or spaces, reserved Windows names; at most
100 characters) and unique, also where case is ignored: labels that would share a folder
get a short hash of the label each. Each image keeps its file name, with the extension of
its real format (`.jpg`, `.png`, `.webp`), and a hash of its name when two would collide.
GIFs are skipped: ImageFolder does not read `.gif`.

The images are read where the batch read them (each outcome's `source`), or under
`--images` (a folder, or `s3://bucket`) when they have moved. `DIR/batch-export.json`
maps each folder to its label and lists every file with the item it came from. DIR must
be new, empty, or an earlier export (whose files are then replaced).

Exit status: 0 done; 1 an image or outcome could not be read (the others are exported);
2 bad usage (DIR holds other files, no `--from` folder).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shlex
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

from artifact.output import OutputPathError, check_output_folder
from batch.review import ReviewError, open_outcomes
from pipeline.storage import RESULTS, LocalStorage, Storage, StorageError, open_location
from pipeline.tasks import READ_CAP

MANIFEST = "batch-export.json"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_NAME = 100
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
"""The formats ImageFolder reads, by the media type the batch sniffed."""
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{n}" for n in range(1, 10)}
    | {f"lpt{n}" for n in range(1, 10)}
)


TRAINED = "build/finetuned/weights.pt"
"""Where the printed training command writes its weights (model.finetune's example)."""


class ExportError(Exception):
    """DIR cannot be exported to (exit status 2)."""


@dataclass
class Export:
    folders: dict[str, str] = field(default_factory=dict)
    """Folder name -> label."""
    files: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    """Items not exported and why (a GIF, an image gone)."""
    unreadable: int = 0


def safe_name(text: str) -> str:
    """`text` as one path segment any file system takes (not yet unique)."""
    name = _UNSAFE.sub("_", unicodedata.normalize("NFC", text)).strip()
    name = name.lstrip(".").rstrip(" .")
    if not name or name.split(".")[0].lower() in _RESERVED:
        name = f"_{name}"
    while len(name.encode("utf-8")) > MAX_NAME:
        name = name[:-1]
    return name.rstrip(" .") or "_"


def label_folders(labels: Iterable[str]) -> dict[str, str]:
    """A unique, safe folder name for each label: label -> folder."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    for label in sorted(set(labels)):
        by_folder[safe_name(label).casefold()].append(label)
    folders = {}
    for group in by_folder.values():
        for label in group:
            name = safe_name(label)
            if len(group) > 1:
                name = f"{safe_name(label)[: MAX_NAME - 9]}-{_short_hash(label)}"
            folders[label] = name
    return folders


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def reviewed_items(out: Storage) -> list[dict[str, Any]]:
    items = []
    for key in out.iter_keys(RESULTS):
        document = out.read_json(key) if key.endswith(".json") else None
        if document is not None and isinstance(document.get("reviewed"), dict):
            items.append(document)
    return sorted(items, key=lambda item: str(item.get("name")))


def prepare(target: Path) -> None:
    """Make DIR ready: new, empty, or an earlier export whose files go."""
    if not target.exists():
        target.mkdir(parents=True)
        return
    if not target.is_dir():
        raise ExportError(f"{target} is not a folder")
    manifest = target / MANIFEST
    if not any(target.iterdir()):
        return
    if not manifest.is_file():
        raise ExportError(
            f"{target} holds files that are not an export of ours; give a new or empty folder"
        )
    try:
        earlier = json.loads(manifest.read_text(encoding="utf-8"))
        paths = [entry["path"] for entry in earlier.get("files", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ExportError(f"{manifest}: unreadable ({error})") from None
    for relative in paths:
        path = target / PurePosixPath(relative)
        if path.resolve().parent.parent != target.resolve():
            raise ExportError(f"{manifest}: {relative!r} is not a file of the export")
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for folder in target.iterdir():
        if folder.is_dir():
            with contextlib.suppress(OSError):
                folder.rmdir()  # only the ones left empty
    manifest.unlink()


def export(out: Storage, target: Path, images: Storage | None = None) -> Export:
    """Write the reviewed images of `out` to `target` (see the module's docstring)."""
    prepare(target)
    items = reviewed_items(out)
    folders = label_folders(str(item["reviewed"]["label"]) for item in items)
    done = Export()
    taken: set[str] = set()
    sources: dict[str, Storage] = {}
    for item in items:
        name = str(item.get("name"))
        label = str(item["reviewed"]["label"])
        source = item.get("source") or {}
        extension = EXTENSIONS.get(str(source.get("media_type")))
        if extension is None:
            done.skipped.append(
                {"name": name, "why": f"{source.get('media_type')} is not read by ImageFolder"}
            )
            continue
        location = str(source.get("location"))
        try:
            store = images or sources.setdefault(location, open_location(location))
            blob = store.read(str(source.get("key")), READ_CAP)
        except StorageError as error:
            done.skipped.append({"name": name, "why": str(error)})
            done.unreadable += 1
            continue
        if blob.data is None:
            done.skipped.append({"name": name, "why": "larger than any image the batch reads"})
            continue
        folder = folders[label]
        stem = safe_name(PurePosixPath(name).stem)[: MAX_NAME - 13]
        relative = f"{folder}/{stem}{extension}"
        if relative.casefold() in taken:
            relative = f"{folder}/{stem}-{_short_hash(name)}{extension}"
        taken.add(relative.casefold())
        path = target / folder / PurePosixPath(relative).name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(blob.data)
        done.folders[folder] = label
        done.files.append(
            {
                "path": relative,
                "label": label,
                "name": name,
                "request_id": item.get("request_id"),
                "model_version": (item.get("model") or {}).get("version"),
                "reviewed_by": item["reviewed"].get("by"),
                "verdict": item["reviewed"].get("verdict"),
            }
        )
    manifest = {
        "folders": dict(sorted(done.folders.items())),
        "files": done.files,
        "skipped": done.skipped,
    }
    temporary = target / f".{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", "utf-8")
    os.replace(temporary, target / MANIFEST)
    return done


def next_step(args: argparse.Namespace) -> Callable[[int], str]:
    """What to do with an export of so many class folders: the training command, whole
    and quoted as a shell reads it, or (fewer than model.finetune's 2) more decisions."""
    where = (
        f"--bucket {shlex.quote(args.bucket)}"
        if args.bucket
        else (f"--out {shlex.quote(str(args.outcomes))}")
    )

    def said(classes: int) -> str:
        if classes < 2:
            return (
                f"{classes} class; model.finetune needs at least 2: resolve items of another "
                f"label (python -m batch review list {where}; python -m batch review "
                f"resolve NAME --label LABEL {where}) and export again"
            )
        return (
            f"train with: python -m model.finetune --data {shlex.quote(str(args.out))} "
            f"--out {TRAINED}"
        )

    return said


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="the ImageFolder to write"
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--from", dest="outcomes", metavar="OUT", help="the folder `batch run` wrote"
    )
    where.add_argument("--bucket", metavar="B", help="the pipeline's inbox bucket")
    parser.add_argument("--region", help="AWS region of the bucket")
    parser.add_argument(
        "--images", metavar="SOURCE", help="where the images are now: a folder or s3://bucket"
    )


def command(
    args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    try:
        outcomes = open_outcomes(
            argparse.Namespace(bucket=args.bucket, out=args.outcomes, region=args.region),
            "--from",
        )
    except ReviewError as error:
        print(f"error: {error}", file=stderr)
        return error.status
    try:
        check_output_folder(args.out)
    except OutputPathError as error:
        print(f"error: {error}", file=stderr)
        return EXIT_USAGE
    images = open_location(args.images) if args.images else None
    if isinstance(images, LocalStorage) and not images.root.is_dir():
        print(f"error: --images {args.images}: no such folder", file=stderr)
        return EXIT_USAGE
    try:
        done = export(outcomes, args.out, images)
    except ExportError as error:
        print(f"error: {error}", file=stderr)
        return EXIT_USAGE
    except (StorageError, OSError) as error:
        print(f"error: {error}", file=stderr)
        return EXIT_FAILED
    for skipped in done.skipped:
        print(f"skipped {skipped['name']}: {skipped['why']}", file=stderr)
    print(
        f"{len(done.files)} image(s) in {len(done.folders)} class folder(s) in {args.out}; "
        f"{next_step(args)(len(done.folders))}",
        file=stdout,
    )
    return EXIT_FAILED if done.unreadable else EXIT_OK
