"""Output files of the model CLIs (and output folders of `batch`): the path checked before
the work starts, and the file written whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


class OutputPathError(ValueError):
    """A file cannot be written at the path; the message names the flag and why."""


def check_output_path(out: Path, flag: str = "--out") -> None:
    """Raise `OutputPathError` unless a file can be written at ``out``: it is not a folder
    (or another special file), and its folder exists (it is created here if missing) and
    takes a new file. A build or a training run takes minutes; a typo should cost nothing."""
    where = f"{flag} {out}"
    if out.is_dir():
        raise OutputPathError(f"{where}: is a folder; give the path of a file in it")
    if out.exists() and not out.is_file():
        raise OutputPathError(f"{where}: is not a regular file; give the path of a file")
    _writable_folder(out.parent, where)


def check_output_folder(out: Path, flag: str = "--out") -> None:
    """Raise `OutputPathError` unless files can be written in the folder ``out``: it is not
    a file, and it exists (it is created here if missing) and takes a new file."""
    where = f"{flag} {out}"
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"{where}: is a file, not a folder; give a folder")
    _writable_folder(out, where)


def _writable_folder(folder: Path, where: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputPathError(f"{where}: {folder} is a file, not a folder") from None
    except OSError as error:
        raise OutputPathError(
            f"{where}: cannot create its folder {folder} ({error.strerror})"
        ) from None
    try:
        # What the real write does: a new file in that folder (access() says yes to root
        # on read-only file systems and in /proc).
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise OutputPathError(f"{where}: cannot write in {folder} ({error.strerror})") from None


def write_whole(out: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write`` on a file beside ``out``, then rename it to ``out``: a reader never
    sees a half-written file, and a failure (or Ctrl-C) midway leaves nothing behind."""
    # A name of its own per process: concurrent writes of one path never mix bytes.
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as file:
            write(file)
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
