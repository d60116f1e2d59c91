"""Byte-reproducible ``model.tar.gz`` files and their safe extraction."""

from __future__ import annotations

import copy
import gzip
import io
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from artifact.output import write_whole


def write_reproducible_tar_gz(files: Mapping[str, bytes], out: Path) -> None:
    """Write ``files`` so that the same contents always give the same bytes.

    Entries are sorted, owned by root, mode 0644, dated 1970; gzip carries no name and
    mtime 0. Written whole or not at all (`artifact.output.write_whole`).
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))

    def write(raw: BinaryIO) -> None:
        with gzip.GzipFile("", "wb", 9, raw, mtime=0) as gz:
            gz.write(tar_bytes.getvalue())

    write_whole(out, write)


class UnsafeArchiveError(tarfile.TarError):
    """An archive entry that could write outside the destination or is not a plain file."""


def extract(archive: Path, destination: Path) -> None:
    """Extract as SageMaker does into /opt/ml/model, refusing links and paths outside."""
    with tarfile.open(archive, mode="r:gz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(destination, filter="data")
        else:
            # Python before 3.11.4 (Debian bookworm's 3.11.2, a base of the serving image)
            # has no extraction filters: check every entry ourselves, more strictly.
            tar.extractall(destination, members=_checked_members(tar))  # noqa: S202


def _checked_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Every entry, or UnsafeArchiveError: only regular files and directories, with
    relative paths that stay inside the destination. Like the data filter, it drops
    set-id and group/other write bits, and the owner recorded in the archive (extracting
    as root would otherwise hand files to that uid)."""
    checked = []
    for member in tar.getmembers():
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts:
            raise UnsafeArchiveError(f"{member.name!r} points outside the destination")
        if not (member.isreg() or member.isdir()):
            raise UnsafeArchiveError(f"{member.name!r} is a link or a special file")
        safe = copy.copy(member)
        safe.mode = member.mode & 0o755
        safe.uid, safe.gid = os.getuid(), os.getgid()
        safe.uname = safe.gname = ""
        checked.append(safe)
    return checked
