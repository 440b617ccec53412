"""Copying files safely: checksummed while copied, written under a temporary name, fsync'd, renamed.

A copy killed half-way leaves only ``.<name>.<pid>.part`` beside the target, never a half file under
the final name; :func:`remove_leftovers` clears such leftovers.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

from govlake.objectstore import PART

CHUNK = 1 << 20
FULL = (errno.ENOSPC, errno.EDQUOT)
"""errno values of a full disk (or quota)."""


class BackupError(RuntimeError):
    """A backup, restore, drill or vacuum that cannot be carried out; the message says why and what to do."""


class CopyProblem(BackupError):
    """A file of a backup is missing, has the wrong size or the wrong checksum."""

    def __init__(self, message: str, *, path: str):
        super().__init__(message)
        self.path = path


def sha256_file(path: Path) -> str:
    """The hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_file(src: Path, dst: Path, *, size: int | None = None, sha256: str | None = None) -> tuple[int, str]:
    """Copy ``src`` to ``dst`` (via a temporary name, fsync'd); returns (size, sha256) of what was copied.

    With ``size``/``sha256`` the copy is checked against them and :class:`CopyProblem` raised (nothing
    left behind) on a difference; a missing ``src`` raises :class:`CopyProblem` too. Other OS errors
    (a full disk) propagate after the temporary file is removed.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}{PART}")
    digest, copied = hashlib.sha256(), 0
    if not src.is_file():
        raise CopyProblem(f"{src}: missing", path=str(src))
    try:
        with open(src, "rb") as source, open(tmp, "wb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                copied += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        found = digest.hexdigest()
        if size is not None and copied != size:
            raise CopyProblem(f"{src}: {copied} bytes, the manifest says {size}", path=str(src))
        if sha256 is not None and found != sha256:
            raise CopyProblem(f"{src}: checksum mismatch (sha256 {found[:12]}…, the manifest says "
                              f"{sha256[:12]}…)", path=str(src))
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return copied, found


def remove_leftovers(root: Path) -> int:
    """Delete ``.*.part`` files (copies a killed process left) under ``root``; returns how many."""
    removed = 0
    if root.is_dir():
        for path in root.rglob(f".*{PART}"):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def describe_os_error(exc: OSError, where: Path) -> str:
    """A one-line account of ``exc`` naming the file, saying "disk full" plainly."""
    if exc.errno in FULL:
        return f"{where}: no space left on the device ({exc.strerror})"
    name = exc.filename or where
    return f"{name}: {exc.strerror or exc}"
