"""Byte-reproducible ``model.tar.gz`` files and their safe extraction."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path


def write_reproducible_tar_gz(files: Mapping[str, bytes], out: Path) -> None:
    """Write ``files`` so that the same contents always give the same bytes.

    Entries are sorted, owned by root, mode 0644, dated 1970; gzip carries no name and
    mtime 0. The file is written next to ``out`` and renamed, so a reader never sees a
    half-written archive.
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
    # A name of its own per process: concurrent builds of one path never mix bytes.
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    with partial.open("wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as gz:
        gz.write(tar_bytes.getvalue())
    partial.replace(out)


def extract(archive: Path, destination: Path) -> None:
    """Extract as SageMaker does into /opt/ml/model, refusing links and paths outside."""
    with tarfile.open(archive, mode="r:gz") as tar:
        tar.extractall(destination, filter="data")
