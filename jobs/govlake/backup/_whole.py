"""``govlake restore --from DIR``: the whole lake back to a backup's cut.

Every file is copied from the backup into a staging folder beside the lake and checked (size and
sha256); a missing or damaged file stops the restore there, naming it, with the lake untouched.
Then the staging folder and the lake trade places in one atomic rename (``renameat2``
RENAME_EXCHANGE; two renames where the file system cannot), the former lake goes to
``var/lake.before-restore-<time>`` (never deleted) and the backup's extract is put in place.
``lake/_steps`` comes back as it was at the cut, so a step the backup caught interrupted is
replayed by its next run, exactly as it would have been.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import errno
import os
import shutil
import time
from pathlib import Path

import pyarrow as pa

from govlake import locks, storage
from govlake._faults import crash_point
from govlake.backup._common import (
    ASIDE_PREFIX,
    COMPLETE,
    MARKER,
    RestoreResult,
    begin_event,
    clean_staging,
    finish,
    materialize,
    new_record,
    new_staging,
    put_extract,
    raise_fence,
    refuse_if_fenced,
    stamp,
)
from govlake.backup._files import BackupError, CopyProblem
from govlake.backup._lake import AUDIT
from govlake.backup._manifest import find
from govlake.config import Settings
from govlake.objectstore import RESTORE, fsync, refuse_on_s3

_KEYS = {"meta/drills": "drill_id", "meta/restores": "restore_id"}


def _exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(a))


def _swap_in(staging: Path, lake: Path, aside: Path) -> None:
    """Put ``staging`` in place of ``lake``; the former lake ends at ``aside``."""
    if not lake.exists():
        staging.rename(lake)
        return
    try:
        _exchange(staging, lake)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        lake.rename(aside)  # no atomic exchange here: two renames (resume finishes a kill between them)
        staging.rename(lake)
        return
    staging.rename(aside)  # after the exchange the former lake sits at the staging name


def restore_lake(settings: Settings, *, source: Path, backup_id: str | None = None) -> RestoreResult:
    """Rebuild ``var/lake`` from backup ``backup_id`` (default the latest) in folder ``source``."""
    from govlake.extract import EXTRACT_NAME

    refuse_on_s3(settings, "govlake restore --from (it moves the lake's folders aside)", RESTORE)
    started = time.perf_counter()
    root = source.resolve()
    manifest = find(root, backup_id)
    with locks.hold(settings, locks.LAKE):
        refuse_if_fenced(settings)
        var = settings.var
        var.mkdir(parents=True, exist_ok=True)
        clean_staging(var)
        name = stamp()
        staging = new_staging(var, name)
        pending = settings.extracts / f".{EXTRACT_NAME}.restore-{name}" if manifest.extract else None
        try:
            lake_files = [f for f in manifest.files() if f.path.startswith("lake/")]
            files, size = materialize(manifest, root, lake_files, lambda f: staging / f.path.removeprefix("lake/"))
            if manifest.extract is not None:
                more, extra = materialize(manifest, root, [manifest.extract], lambda f: pending)
                files, size = files + more, size + extra
        except (CopyProblem, BackupError) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if pending is not None:
                pending.unlink(missing_ok=True)
            raise BackupError(f"{exc}; nothing was restored: the lake is as it was") from None
        (staging / COMPLETE).write_text("", encoding="utf-8")
        fsync(staging)
        aside = var / f"{ASIDE_PREFIX}{name}"
        record = raise_fence(settings, new_record(
            "whole", **{"from": str(root)}, backup_id=manifest.backup_id, cut=manifest.cut, staging=str(staging),
            aside=str(aside), extract=str(pending) if pending else None, tables=sorted(manifest.tables)))
        result = finish_whole(settings, record)
    result.files, result.bytes, result.seconds = files, size, time.perf_counter() - started
    return result


def finish_whole(settings: Settings, record: dict) -> RestoreResult:
    """Swap the checked staging folder in (unless done), put the extract back, record; idempotent."""
    lake, staging, aside = settings.lake, Path(record["staging"]), Path(record["aside"])
    cut = dt.datetime.fromisoformat(record["cut"])
    result = RestoreResult("whole", cut, record["backup_id"], list(record["tables"]))
    if staging.exists():
        if (staging / MARKER).exists():  # not swapped in yet
            if not (staging / COMPLETE).exists():
                raise BackupError(f"{staging}: the interrupted restore had not finished copying; the lake was not "
                                  "changed. Delete that folder and var/locks/fence.json, then restore again")
            _swap_in(staging, lake, aside)
            crash_point("restore:swap")
        else:  # the former lake, left at the staging name by a kill right after the exchange
            staging.rename(aside)
    fsync(settings.var)
    for name in (MARKER, COMPLETE):
        (lake / name).unlink(missing_ok=True)
    if aside.exists():
        _carry_audit(settings, aside)
    pending = Path(record["extract"]) if record.get("extract") else None
    note = put_extract(settings, pending, aside)
    if note:
        result.notes.append(note)
    result.aside_dir = aside if aside.exists() else None
    begin_event(settings, record)
    finish(settings, record, tables=result.tables, set_aside=[str(aside)] if aside.exists() else [],
           note=f"whole lake from backup {record['backup_id']}")
    return result


def _carry_audit(settings: Settings, aside: Path) -> None:
    """Drills and restores recorded in the former lake after the cut are kept in the restored one."""
    for table in AUDIT:
        old = storage.open_table(aside / table)
        if old is None:
            continue
        key = _KEYS[table]
        new = storage.open_table(settings.lake / table)
        have = set() if new is None else set(new.to_pyarrow_table(columns=[key]).column(key).to_pylist())
        rows = old.to_pyarrow_table()
        keep = rows.filter(pa.array([k not in have for k in rows.column(key).to_pylist()], type=pa.bool_()))
        if keep.num_rows:
            storage.write_table(settings.lake / table, keep, mode="append", run_id="restore-carry-over")
