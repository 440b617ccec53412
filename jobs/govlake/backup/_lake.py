"""The lake as files: its Delta tables, the files one version needs, commit times, restorable versions."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from deltalake import DeltaTable
from deltalake.exceptions import DeltaError, TableNotFoundError

from govlake import objectstore
from govlake.objectstore import Location
from govlake.storage import LAYERS

AUDIT = ("meta/drills", "meta/restores")
"""Tables that record backups' drills and restores: a restore by time travel or of single tables
leaves them as they are (they are the record of what happened to the lake, not pipeline data)."""
LOG = "_delta_log"
_ENTRY = re.compile(r"^(\d{20})\.(json|checkpoint(\.\d+\.\d+)?\.parquet)$")


def delta_tables(lake: Location) -> list[str]:
    """Lake-relative paths (``silver/credit_penalty``) of every Delta table under ``lake`` (a folder or an
    S3 prefix)."""
    return [f"{layer}/{name}" for layer in LAYERS for name in objectstore.delta_tables(objectstore.join(lake, layer))]


def open_at(path: Location, version: int | None = None) -> DeltaTable | None:
    """The table at ``path`` (at ``version``), or None when there is none (or that version's log is gone)."""
    try:
        return DeltaTable(str(path), version=version, storage_options=objectstore.delta_options(path))
    except (TableNotFoundError, DeltaError, FileNotFoundError, OSError):
        return None


def log_entries(path: Path, version: int) -> list[str]:
    """The ``_delta_log`` entries (commits and checkpoints) of versions ≤ ``version``, table-relative."""
    folder = path / LOG
    out = []
    for name in sorted(os.listdir(folder)):
        m = _ENTRY.match(name)
        if m and int(m.group(1)) <= version:
            out.append(f"{LOG}/{name}")
    return out


def data_files(table: DeltaTable, path: Path) -> list[str]:
    """The data files live at ``table``'s version, relative to the table folder at ``path``."""
    root = os.path.realpath(path)
    return [os.path.relpath(os.path.realpath(uri), root) for uri in table.file_uris()]


def commit_times(path: Path) -> list[tuple[int, int]]:
    """(version, commit time in ms) of every commit whose log entry is still there, oldest first."""
    table = open_at(path)
    if table is None:
        return []
    return sorted((int(h["version"]), int(h["timestamp"])) for h in table.history() if "version" in h)


def version_at(times: list[tuple[int, int]], cut_ms: float) -> int | None:
    """The last version committed at or before ``cut_ms`` (None: the table did not exist yet)."""
    chosen = None
    for version, ts in times:
        if ts > cut_ms:
            break
        chosen = version
    return chosen


def restorable(path: Path, version: int) -> bool:
    """Whether ``version`` of the table can still be read: its log is there and every file it needs."""
    table = open_at(path, version)
    if table is None:
        return False
    return all(os.path.exists(uri) for uri in table.file_uris())


def oldest_restorable(path: Path, times: list[tuple[int, int]]) -> int | None:
    """The oldest version of the table that can still be read (a later one can too), or None."""
    versions = [v for v, _ in times]
    if not versions or not restorable(path, versions[-1]):
        return None
    lo, hi = 0, len(versions) - 1  # versions[hi] is restorable; find the first restorable
    while lo < hi:
        mid = (lo + hi) // 2
        if restorable(path, versions[mid]):
            hi = mid
        else:
            lo = mid + 1
    return versions[lo]


def ms(moment: dt.datetime) -> float:
    """A timezone-aware moment in ms since the epoch (Delta's commit timestamps)."""
    return moment.timestamp() * 1000


def from_ms(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
