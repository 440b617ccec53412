"""What govlake derives from a model's SQL by parsing it, kept on disk from one process to the next.

Parsing a model with sqlglot is pure Python and slow on the generated ones (the staging model of a 32-item
resource: ~0.3 s), and every job parses the models it runs: for the relations each reads (the runner's input
check) and for their column lineage. Within a process :func:`functools.lru_cache` keeps the answers; but the CLI
and every Airflow task are new processes, and a fresh ``govlake run`` spent 1.3 s of a day's 13 s deriving the
same answers from the same SQL as the day before. :func:`on_disk` keeps them in files named by a hash of the
function, its arguments (the SQL itself among them), the source of the function's module and sqlglot's version,
so a changed model, a date bound into one, a change to the code that derives the answer or another sqlglot is a
new entry, never a stale one.

The folder is ``GOVLAKE_SQL_CACHE`` if set (empty: no disk cache), else the user's cache folder
(``~/.cache/govlake/sql``). An entry is written to a temporary file and renamed into place (two processes
writing one entry write the same answer); one that cannot be read or decoded is derived again and rewritten;
a folder that cannot be written (read-only, full disk) only costs the parse. Entries not written for
:data:`KEEP_DAYS` are removed when another is written, so the date-bound SQL of past days does not pile up.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlglot

KEEP_DAYS = 30
T = TypeVar("T")


def cache_dir() -> Path | None:
    """The folder of the entries, or None when the disk cache is off (``GOVLAKE_SQL_CACHE=``)."""
    configured = os.environ.get("GOVLAKE_SQL_CACHE")
    if configured is not None:
        return Path(configured) if configured else None
    import platformdirs

    return Path(platformdirs.user_cache_dir("govlake")) / "sql"


def _code(fn: Callable) -> str:
    """A hash of the source of ``fn``'s module: what derives the answer (a module without a readable source: its
    name, with sqlglot's version)."""
    try:
        return hashlib.sha256(Path(inspect.getsourcefile(fn) or "").read_bytes()).hexdigest()[:16]
    except (OSError, TypeError):
        return fn.__module__


def _entry(folder: Path, name: str, code: str, args: tuple) -> Path:
    key = json.dumps([code, sqlglot.__version__, name, args], ensure_ascii=False)
    return folder / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"


def _write(path: Path, value: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(value, f, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _prune(path.parent)
    except OSError:
        pass  # no cache here: the answer is derived again next time


def _prune(folder: Path) -> None:
    old = time.time() - KEEP_DAYS * 86400
    for entry in folder.iterdir():
        try:
            if entry.stat().st_mtime < old:
                entry.unlink()
        except OSError:
            pass


def on_disk(name: str, *, encode: Callable[[T], Any] = lambda v: v,
            decode: Callable[[Any], T] = lambda v: v) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Keep the answers of a pure function of JSON-able arguments on disk (``encode``/``decode``: the answer
    to and from JSON)."""

    def wrap(fn: Callable[..., T]) -> Callable[..., T]:
        code = _code(fn)

        @functools.wraps(fn)
        def cached(*args):
            folder = cache_dir()
            if folder is None:
                return fn(*args)
            path = _entry(folder, name, code, args)
            try:
                return decode(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError, KeyError, IndexError):
                pass  # absent, or unreadable: derived again below
            value = fn(*args)
            _write(path, encode(value))
            return value

        return cached

    return wrap
