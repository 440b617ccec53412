"""``govlake restore --from DIR --table T``: T and everything downstream of it back to a backup's cut.

The tables to restore follow the dependency map (govlake.backup._deps). Each is copied from the
backup into a staging folder and checked, then swapped in for the live one (which goes to
``var/lake.before-restore-<time>/<layer>/<name>``); a table of the closure the backup does not
have is set aside (it did not exist at the cut). The other tables stay as they are. The shared
meta tables are not replaced; rows are appended that put the affected steps back to the backup's
state:

- ``meta/consumption``: the backup's latest version of every table each affected consumer had
  consumed (``null`` where it had consumed none), so its next run reads again what came after;
- ``meta/reconciliation``: the backup's latest published row of each affected resource, so the
  next process run's totals start from it;
- ``meta/batches``: a batch published since the cut whose rows the restored silver lacks is
  ``released`` again (the next run publishes it); a batch released since the cut that arrived
  after it is ``held`` again (its rows are read anew, and an operator releases it again);
- ``meta/ingest_log`` (a restored bronze table): an ``unlanded`` row for every landed batch the
  restored bronze no longer holds, so the next ingest lands its file again.

The affected steps' intent files come back as the backup had them (an open one in the backup is
refused: restore the whole lake then), and the backup's extract is put back.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path

import pyarrow.compute as pc

from govlake import locks, steps, storage
from govlake._faults import crash_point
from govlake.backup._common import (
    ASIDE_PREFIX,
    COMPLETE,
    RestoreResult,
    append_once,
    begin_event,
    clean_staging,
    close_open_intents,
    finish,
    materialize,
    move_aside,
    new_record,
    new_staging,
    put_extract,
    raise_fence,
    refuse_if_fenced,
    stamp,
    step_file,
)
from govlake.backup._deps import EXTRACT, closure, pipeline_steps
from govlake.backup._files import BackupError, CopyProblem
from govlake.backup._lake import delta_tables
from govlake.backup._manifest import Manifest, find
from govlake.config import Settings
from govlake.objectstore import RESTORE, fsync, refuse_on_s3, write_atomic

BACKUP = "_backup"
"""Inside the staging folder: the backup's meta tables and intent files, read to reset the live ones."""
META = ("meta/consumption", "meta/reconciliation", "meta/batches")


def _check(manifest: Manifest, requested: list[str], lake_tables: list[str]) -> None:
    for table in requested:
        layer = table.split("/", 1)[0]
        if layer == "meta":
            raise BackupError(f"{table}: a meta table is shared history and is not restored on its own; restore the "
                              "tables whose steps it records, or the whole lake (`govlake restore --from DIR`)")
        if table not in manifest.tables:
            known = ", ".join(t for t in sorted(manifest.tables) if not t.startswith("meta/"))
            raise BackupError(f"{table}: not in backup {manifest.backup_id} (cut {manifest.cut}); it holds {known}")


def restore_tables(settings: Settings, *, source: Path, tables: list[str], backup_id: str | None = None
                   ) -> RestoreResult:
    """Restore ``tables`` and everything downstream of them from backup ``backup_id`` (default the latest)."""
    from govlake.extract import EXTRACT_NAME

    refuse_on_s3(settings, "govlake restore --from --table (it moves tables' folders aside)", RESTORE)
    started = time.perf_counter()
    root = source.resolve()
    manifest = find(root, backup_id)
    requested = [t.strip().strip("/") for t in tables]
    with locks.hold(settings, locks.LAKE):
        refuse_if_fenced(settings)
        lake = settings.lake
        live_tables = delta_tables(lake)
        if not live_tables:
            raise BackupError(f"{lake}: no lake here to restore tables into; restore the whole lake with "
                              f"`govlake restore --from {root}`")
        _check(manifest, requested, live_tables)
        plan = closure(pipeline_steps(settings, tables=set(manifest.tables) | set(live_tables)), requested)
        restore = sorted(t for t in plan.tables if t in manifest.tables)
        aside_only = sorted(t for t in plan.tables if t != EXTRACT and t not in manifest.tables and t in live_tables)
        _refuse_open_in_backup(manifest, root, plan.consumers)
        clean_staging(settings.var)
        name = stamp()
        staging = new_staging(settings.var, name)
        pending = settings.extracts / f".{EXTRACT_NAME}.restore-{name}" if manifest.extract else None
        try:
            wanted = [f for t in restore for f in manifest.tables[t].files]
            files, size = materialize(manifest, root, wanted, lambda f: staging / f.path.removeprefix("lake/"))
            meta = [f for t in META if t in manifest.tables for f in manifest.tables[t].files]
            meta += [f for f in manifest.steps if f.path.endswith(".json")]
            materialize(manifest, root, meta, lambda f: staging / BACKUP / f.path.removeprefix("lake/"))
            if manifest.extract is not None:
                materialize(manifest, root, [manifest.extract], lambda f: pending)
        except (CopyProblem, BackupError) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if pending is not None:
                pending.unlink(missing_ok=True)
            raise BackupError(f"{exc}; nothing was restored: the lake is as it was") from None
        (staging / COMPLETE).write_text("", encoding="utf-8")
        record = raise_fence(settings, new_record(
            "table", **{"from": str(root)}, backup_id=manifest.backup_id, cut=manifest.cut, staging=str(staging),
            aside=str(settings.var / f"{ASIDE_PREFIX}{name}"), extract=str(pending) if pending else None,
            requested=requested, tables=restore, aside_only=aside_only, consumers=plan.consumers))
        begin_event(settings, record)
        result = finish_tables(settings, record)
    result.files, result.bytes, result.seconds = files, size, time.perf_counter() - started
    return result


def _refuse_open_in_backup(manifest: Manifest, root: Path, consumers: list[str]) -> None:
    by_name = {Path(f.path).name: f for f in manifest.steps}
    for consumer in consumers:
        entry = by_name.get(step_file(Path("."), consumer).name)
        if entry is None:
            continue
        try:
            state = json.loads((root / entry.stored).read_text(encoding="utf-8")).get("state")
        except (OSError, ValueError) as exc:
            raise BackupError(f"{root / entry.stored}: unreadable intent file in the backup ({exc})") from None
        if state == "open":
            raise BackupError(f"backup {manifest.backup_id} caught step {consumer} interrupted; its tables cannot be "
                              "restored on their own. Restore the whole lake from it, or use another backup")


def finish_tables(settings: Settings, record: dict) -> RestoreResult:
    """Swap the staged tables in, set the others aside, reset the meta tables and intents; idempotent."""
    lake, staging, aside = settings.lake, Path(record["staging"]), Path(record["aside"])
    backup = staging / BACKUP
    cut = dt.datetime.fromisoformat(record["cut"])
    result = RestoreResult("table", cut, record["backup_id"], list(record["tables"]))
    if staging.exists() and not (staging / COMPLETE).exists():
        raise BackupError(f"{staging}: the interrupted restore had not finished copying; the lake was not changed. "
                          "Delete that folder and var/locks/fence.json, then restore again")
    for table in record["tables"]:
        staged = staging / table
        if staged.exists():
            move_aside(lake / table, aside / table)
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.rename(lake / table)
            result.set_aside.append(table)
    for table in record["aside_only"]:
        if move_aside(lake / table, aside / table):
            result.set_aside.append(table)
    if lake.exists():
        fsync(lake)
    crash_point("restore:swap")
    _reset_meta(settings, record, backup)
    _reset_intents(settings, record, backup)
    note = put_extract(settings, Path(record["extract"]) if record.get("extract") else None, aside)
    if note:
        result.notes.append(note)
    result.aside_dir = aside if aside.exists() else None
    finish(settings, record, tables=record["tables"], set_aside=record["aside_only"],
           note=f"{', '.join(record['requested'])} and downstream from backup {record['backup_id']}")
    shutil.rmtree(staging, ignore_errors=True)
    return result


def _rows(path: Path) -> list[dict]:
    table = storage.open_table(path)
    return [] if table is None else table.to_pyarrow_table().to_pylist()


def _latest(rows: list[dict], key, order: str) -> dict:
    out: dict = {}
    for r in sorted(rows, key=lambda r: (r[order] is None, r[order])):
        out[key(r)] = r
    return out


def _reset_meta(settings: Settings, record: dict, backup: Path) -> None:
    from govlake.consumption import SCHEMA as CONSUMPTION
    from govlake.contracts import INGEST_LOG
    from govlake.contracts import RECONCILIATION as RECONCILIATION_SCHEMA
    from govlake.ingest import UNLANDED
    from govlake.quality import _batches

    now, run_id, why = dt.datetime.now(dt.UTC), record["run_id"], f"restored from backup {record['backup_id']}"
    consumers = set(record["consumers"])
    resources = {c.removeprefix("process:") for c in consumers if c.startswith("process:")}
    # consumption: each affected consumer back to what it had consumed at the cut
    key = lambda r: (r["consumer"], r["table_path"])  # noqa: E731
    then = {k: r["version"] for k, r in _latest(_rows(backup / "meta/consumption"), key, "recorded_at").items()
            if k[0] in consumers}
    live = {k: r["version"] for k, r in _latest(_rows(settings.lake / "meta/consumption"), key, "recorded_at").items()
            if k[0] in consumers}
    rows = [{"consumer": c, "table_path": t, "version": then.get((c, t)), "run_id": run_id, "recorded_at": now}
            for c, t in sorted(set(then) | set(live)) if live.get((c, t), "absent") != then.get((c, t))]
    append_once(settings, "meta/consumption", rows, CONSUMPTION, record, tag="consumption")
    # reconciliation: each affected resource's totals as the backup's last published run left them
    recon = _latest([r for r in _rows(backup / "meta/reconciliation") if r["published"] and r["resource"] in resources],
                    lambda r: r["resource"], "checked_at")
    rows = [dict(r, run_id=run_id, checked_at=now, note=f"{why} (cut {record['cut']})") for r in recon.values()]
    append_once(settings, "meta/reconciliation", rows, RECONCILIATION_SCHEMA, record, tag="reconciliation")
    # batches: what the restored silver lacks is published again; a release after the cut is asked again
    then_b = _latest(_rows(backup / _batches.TABLE), lambda r: r["batch_id"], "at")
    rows = []
    for batch_id, r in _latest(_rows(settings.lake / _batches.TABLE), lambda r: r["batch_id"], "at").items():
        if r["resource"] not in resources:
            continue
        before = then_b.get(batch_id)
        if r["status"] == _batches.PUBLISHED and before is not None and before["status"] != _batches.PUBLISHED:
            rows.append(dict(r, status=_batches.RELEASED, at=now, actor="govlake", run_id=run_id,
                             reason=f"{why}: silver went back to before it was published; the next run publishes it"))
        elif r["status"] == _batches.RELEASED and before is None:
            rows.append(dict(r, status=_batches.HELD, at=now, actor="govlake", run_id=run_id,
                             reason=f"{why}: it arrived after the cut and is read again; release it again"))
    append_once(settings, _batches.TABLE, rows, _batches.SCHEMA, record, tag="batches")
    # ingest log: batches the restored bronze no longer holds are landed again by the next ingest
    from govlake.catalog import get_catalog

    catalog = get_catalog(settings.catalog_dir)
    rows = []
    for table in (t for t in record["tables"] if t.startswith("bronze/")):
        res = next((r for r in catalog.resources.values() if f"bronze/{r.slug}" == table), None)
        if res is None:
            continue
        bronze = storage.open_table(settings.lake / table)
        held = set() if bronze is None else set(pc.unique(bronze.to_pyarrow_table(columns=["_batch_id"])
                                                          .column("_batch_id")).to_pylist())
        log = [r for r in _rows(settings.lake / "meta/ingest_log") if r["resource"] == res.code]
        gone = {r["batch_id"] for r in log if r["status"] == UNLANDED}
        rows += [dict(r, status=UNLANDED, run_id=run_id, received_at=now, error=f"{why}: no longer in bronze")
                 for r in log if r["status"] == "landed" and r["batch_id"] not in held and r["batch_id"] not in gone]
    append_once(settings, "meta/ingest_log", rows, INGEST_LOG, record, tag="ingest_log")


def _reset_intents(settings: Settings, record: dict, backup: Path) -> None:
    """The affected steps' intent files as the backup had them (their live open intents closed first)."""
    consumers = record["consumers"]
    close_open_intents(settings, consumers, f"tables restored from backup {record['backup_id']}")
    live_dir = settings.lake / steps.STEPS_DIR
    for consumer in consumers:
        then, live = step_file(backup / steps.STEPS_DIR, consumer), step_file(live_dir, consumer)
        if then.exists():
            write_atomic(live, then.read_bytes())
        else:
            live.unlink(missing_ok=True)
