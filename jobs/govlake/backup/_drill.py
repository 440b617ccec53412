"""``govlake drill``: the restore drill (灾备演练), recorded in ``meta/drills``.

The latest backup (or a chosen one) is restored into a scratch folder (a temporary GOVLAKE_VAR),
through the same copy the real restore uses: every file's size and sha256 is checked against the
manifest, then every table is opened at the manifest's version and its rows counted against the
manifest, and the extract is opened. The drill is timed and recorded in the live lake's
``meta/drills`` (backup, cut, tables, rows, files, bytes, seconds, result, problems, who, when),
which the quality report shows. The drill reads nothing of the live lake; it only writes the record.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from govlake import contracts, locks, storage
from govlake.backup._common import materialize
from govlake.backup._files import BackupError
from govlake.backup._lake import open_at
from govlake.backup._manifest import Manifest, find
from govlake.backup._take import actor
from govlake.config import Settings
from govlake.objectstore import BACKUP, refuse_on_s3

TABLE = "meta/drills"
LOCK = "drills"
PASSED, FAILED = "passed", "failed"
S = pa.string()
SCHEMA = contracts.DRILLS


@dataclass
class DrillResult:
    """One drill: what was restored and checked, how long it took, and what was wrong."""

    drill_id: str
    backup_dir: Path
    manifest: Manifest | None
    tables: int = 0
    rows: int = 0
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    scratch: Path | None = None

    @property
    def passed(self) -> bool:
        return self.manifest is not None and not self.problems


def run_drill(settings: Settings, *, source: Path, backup_id: str | None = None, scratch: Path | None = None,
              keep: bool = False) -> DrillResult:
    """Restore backup ``backup_id`` (default the latest) of folder ``source`` into a scratch folder
    (under ``scratch``, default the system's temporary folder), check it and record the drill.

    ``keep`` leaves the scratch lake in place (its path is in the result)."""
    refuse_on_s3(settings, "govlake drill (it restores a backup of the lake's folders)", BACKUP)
    started = time.perf_counter()
    at = dt.datetime.now(dt.UTC)
    root = source.resolve()
    result = DrillResult(f"drill-{at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}", root, None)
    try:
        result.manifest = find(root, backup_id)
    except BackupError as exc:
        result.problems.append(str(exc))
    if result.manifest is not None:
        workdir = Path(tempfile.mkdtemp(prefix="govlake-drill-", dir=scratch))
        try:
            _check(result, root, workdir / "var")
        except (BackupError, OSError) as exc:
            result.problems.append(str(exc))
        finally:
            if keep:
                result.scratch = workdir / "var"
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    result.seconds = time.perf_counter() - started
    _record(settings, result, at)
    return result


def _check(result: DrillResult, root: Path, var: Path) -> None:
    import duckdb

    manifest = result.manifest
    assert manifest is not None
    result.files, result.bytes = materialize(manifest, root, manifest.files(), lambda f: var / f.path,
                                             problems=result.problems)
    for table, entry in sorted(manifest.tables.items()):
        delta = open_at(var / "lake" / table)
        if delta is None:
            result.problems.append(f"{table}: cannot be opened from the restored files")
            continue
        if delta.version() != entry.version:
            result.problems.append(f"{table}: restored at version {delta.version()}, the manifest says {entry.version}")
        try:
            rows = delta.to_pyarrow_dataset().count_rows()
        except Exception as exc:  # noqa: BLE001 — any failure to read is what the drill is for
            result.problems.append(f"{table}: unreadable ({type(exc).__name__}: {str(exc).splitlines()[0]})")
            continue
        if rows != entry.rows:
            result.problems.append(f"{table}: {rows:,} rows, the manifest says {entry.rows:,}")
        result.tables += 1
        result.rows += rows
    if manifest.extract is not None:
        path = var / manifest.extract.path
        try:
            con = duckdb.connect(str(path), read_only=True)
            try:
                con.execute("select count(*) from duckdb_tables()").fetchone()
            finally:
                con.close()
        except Exception as exc:  # noqa: BLE001
            result.problems.append(f"{manifest.extract.path}: the extract does not open ({type(exc).__name__})")


def _record(settings: Settings, result: DrillResult, at: dt.datetime) -> None:
    m = result.manifest
    row = {"drill_id": result.drill_id, "backup_id": m.backup_id if m else None, "backup_dir": str(result.backup_dir),
           "cut": dt.datetime.fromisoformat(m.cut) if m else None, "tables": result.tables, "rows": result.rows,
           "files": result.files, "bytes": result.bytes, "seconds": round(result.seconds, 3),
           "result": PASSED if result.passed else FAILED, "problems": "\n".join(result.problems) or None,
           "actor": actor(), "host": socket.gethostname(), "at": at}
    with locks.hold(settings, LOCK):
        storage.write_table(settings.lake_location(TABLE), pa.Table.from_pylist([row], schema=SCHEMA), mode="append",
                            run_id=result.drill_id)


def drills(settings: Settings) -> list[dict]:
    """Every recorded drill, latest first."""
    table = storage.open_table(settings.lake_location(TABLE))
    rows = [] if table is None else table.to_pyarrow_table().to_pylist()
    return sorted(rows, key=lambda r: r["at"], reverse=True)
