"""Department files, found and opened without leaving the inbox or following a symbolic link.

:func:`matching` walks the inbox for a catalog pattern without following links; a link (to a file
or a folder) where the pattern would look is listed all the same, so that ingest records it as
rejected. :func:`open_source` opens a file once: under the inbox one folder at a time from the
inbox down, every step with ``O_NOFOLLOW`` (a folder swapped for a link after the walk is refused,
not followed); elsewhere (an explicit ``--file``) the file itself with ``O_NOFOLLOW``. Only
regular files are read. Every reader then reads that one open file through :meth:`Source.reader`,
so the file that was hashed is the file that is read, and :meth:`Source.unchanged` rejects a file
whose size or modification time changed while it was read (nothing of it lands).
"""

from __future__ import annotations

import errno
import fnmatch
import io
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from govlake.ingest._results import IngestError

_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = _FLAGS | getattr(os, "O_DIRECTORY", 0)
LINK = "a symbolic link; links in the inbox or named with --file are not followed (copy the file in)"


def matching(root: Path, pattern: str) -> Iterator[Path]:
    """Entries under ``root`` whose relative path matches ``pattern`` (``*``, ``?``, ``[…]`` within a
    name, ``**`` for any folders), folders entered only when they are real folders; symbolic links
    and other non-folders on the way or at the end are yielded (the caller rejects them)."""
    yield from _walk(root, PurePosixPath(pattern).parts)


def _walk(folder: Path, parts: tuple[str, ...]) -> Iterator[Path]:
    if not parts:
        return
    head, rest = parts[0], parts[1:]
    if head == "**":
        yield from _walk(folder, rest)
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise IngestError(f"{folder}: cannot list the folder: {exc.strerror}", path=folder) from None
    for entry in entries:
        path = folder / entry.name
        is_dir = entry.is_dir(follow_symlinks=False)
        if head == "**":
            if is_dir:
                yield from _walk(path, parts)
            continue
        if not fnmatch.fnmatchcase(entry.name, head):
            continue
        if rest and is_dir:
            yield from _walk(path, rest)
        elif not is_dir:
            yield path  # a file, or a link / special file to be rejected


def _link_error(path: Path, what: str = "") -> IngestError:
    return IngestError(f"{path}: {what}{LINK}", path=path)


def _refuse(path: Path, exc: OSError) -> IngestError:
    if exc.errno in (errno.ELOOP, errno.EMLINK) or (exc.errno == errno.ENOTDIR and path.is_symlink()):
        return _link_error(path)
    if exc.errno == errno.ENOENT:
        return IngestError(f"{path}: no such file", path=path)
    return IngestError(f"{path}: cannot open the file: {exc.strerror}", path=path)


class Source:
    """One department file, open: its path (for messages and lineage), descriptor and stat at opening."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd
        self.stat = os.fstat(fd)

    def reader(self) -> io.BufferedReader:
        """A new binary reader of the file from its start (its own position; the file is not reopened)."""
        return io.BufferedReader(_Pread(self.fd), buffer_size=1 << 20)

    def changed(self) -> str | None:
        """How the file changed since it was opened (size, modification time), or None."""
        now = os.fstat(self.fd)
        if (now.st_size, now.st_mtime_ns) == (self.stat.st_size, self.stat.st_mtime_ns):
            return None
        return (f"the file changed while it was being read (size {self.stat.st_size:,} → {now.st_size:,} bytes, "
                f"modified again); nothing of it landed: send it again once it is complete")

    def unchanged(self, batches: Iterable) -> Iterator:
        """``batches``, then IngestError when the file changed meanwhile (so the landing is not committed)."""
        yield from batches
        problem = self.changed()
        if problem:
            raise IngestError(f"{self.path}: {problem}", path=self.path)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __str__(self) -> str:
        return str(self.path)


class _Pread(io.RawIOBase):
    """A read-only view of a descriptor with its own offset (``os.pread``)."""

    def __init__(self, fd: int):
        self.fd, self.pos = fd, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = os.pread(self.fd, len(buffer), self.pos)
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: os.fstat(self.fd).st_size}[whence]
        self.pos = base + offset
        return self.pos

    def tell(self) -> int:
        return self.pos


def open_source(path: Path, *, inbox: Path | None) -> Source:
    """Open ``path`` for reading without following a symbolic link; IngestError naming the path when it
    is a link (or reached through one, under ``inbox``), missing, unreadable or not a regular file."""
    path = Path(os.path.abspath(path))
    root = Path(os.path.abspath(inbox)) if inbox is not None else None
    parts = path.relative_to(root).parts if root and path.is_relative_to(root) and path != root else None
    try:
        fd = _open_under(root, parts, path) if root and parts else os.open(path, _FLAGS)
    except OSError as exc:
        raise _refuse(path, exc) from None
    source = Source(path, fd)
    mode = source.stat.st_mode
    if not stat.S_ISREG(mode):
        source.close()
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a pipe, socket or device)"
        raise IngestError(f"{path}: {what}; only regular files are read", path=path)
    return source


def _open_under(root: Path, parts: tuple[str, ...], path: Path) -> int:
    """Open ``root/parts…`` one component at a time, refusing a link at every step."""
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        for i, name in enumerate(parts[:-1]):
            try:
                nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                folder = root.joinpath(*parts[:i + 1])
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK) and folder.is_symlink():
                    raise _link_error(path, f"reached through {folder}, ") from None
                raise
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], _FLAGS, dir_fd=fd)
    finally:
        os.close(fd)
