"""What the three restores share: the fence (their journal), staging folders, copying a backup's files
back with their checksums checked, setting things aside, and the record in ``meta/restores``.

Every restore runs under the exclusive lake lock and, before it changes anything in the lake,
writes ``var/locks/fence.json``: what it is doing, with everything needed to finish it. While the
fence stands no step starts (govlake.locks refuses with its message); ``govlake restore --resume``
finishes the restore (every part is idempotent: renames are checked, Delta commits carry the
restore's txn) and takes the fence down.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from govlake import contracts, locks, steps, storage
from govlake.backup._files import BackupError, CopyProblem, copy_file, describe_os_error
from govlake.backup._manifest import FileEntry, Manifest
from govlake.backup._take import actor
from govlake.config import Settings
from govlake.objectstore import write_atomic

STAGING_PREFIX = ".lake.restoring-"
ASIDE_PREFIX = "lake.before-restore-"
MARKER = ".govlake-staging"
"""In a staging folder while it is not (yet) the lake."""
COMPLETE = ".govlake-staging-complete"
"""In a staging folder once every file is copied and checked."""
CONSUMER = "restore"
RESTORES = "meta/restores"
S = pa.string()
RESTORES_SCHEMA = contracts.RESTORES


@dataclass
class RestoreResult:
    """What a restore did."""

    kind: str
    cut: dt.datetime | None
    backup_id: str | None = None
    tables: list[str] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)
    aside_dir: Path | None = None
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def stamp() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}"


def fence_path(settings: Settings) -> Path:
    return settings.var / "locks" / locks.FENCE


def read_fence(settings: Settings) -> dict | None:
    try:
        return json.loads(fence_path(settings).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise BackupError(f"{fence_path(settings)}: unreadable ({exc}); the restore it records cannot be resumed: "
                          "restore the whole lake from a backup, then delete the file") from None


def raise_fence(settings: Settings, record: dict) -> dict:
    """Write the fence: from now on no step starts until the restore is finished."""
    record = dict(record, pid=os.getpid(), host=socket.gethostname(),
                  message=f"a `govlake restore` ({record['kind']}, started {record['started_at']}) was interrupted "
                          "and the lake is half restored: run `govlake restore --resume` to finish it before "
                          "anything else runs")
    write_atomic(fence_path(settings), json.dumps(record, ensure_ascii=False, default=str).encode("utf-8"))
    return record


def lower_fence(settings: Settings) -> None:
    fence_path(settings).unlink(missing_ok=True)


def refuse_if_fenced(settings: Settings) -> None:
    record = read_fence(settings)
    if record is not None:
        raise BackupError(f"a restore ({record.get('kind')}, started {record.get('started_at')}) was interrupted: "
                          "run `govlake restore --resume` to finish it first")


def new_record(kind: str, **fields) -> dict:
    """A fence record: the restore's kind, id (its txn version), run id and start, plus ``fields``."""
    now = dt.datetime.now(dt.UTC)
    return {"kind": kind, "id": time.time_ns(), "run_id": f"restore-{now:%Y%m%dT%H%M%S}-{os.getpid()}",
            "started_at": now.isoformat(), "actor": actor(), **fields}


def clean_staging(var: Path) -> None:
    """Remove staging folders an earlier restore left before it changed anything; a former lake left
    at a staging name (killed mid-swap) is set aside instead, never deleted."""
    if not var.is_dir():
        return
    for path in var.glob(f"{STAGING_PREFIX}*"):
        if (path / MARKER).exists():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.rename(var / f"{ASIDE_PREFIX}{path.name.removeprefix(STAGING_PREFIX)}")


def new_staging(var: Path, name: str) -> Path:
    staging = var / f"{STAGING_PREFIX}{name}"
    staging.mkdir(parents=True)
    (staging / MARKER).write_text("a restore's staging folder, not a lake\n", encoding="utf-8")
    return staging


def materialize(manifest: Manifest, root: Path, entries: Iterable[FileEntry], dest: Callable[[FileEntry], Path], *,
                problems: list[str] | None = None) -> tuple[int, int]:
    """Copy ``entries`` of backup ``manifest`` (folder ``root``) to ``dest(entry)``, each checked against its
    size and sha256; returns (files, bytes). A bad or missing file raises CopyProblem naming it, or with
    ``problems`` is recorded there and skipped."""
    files = size = 0
    for entry in entries:
        try:
            copied, _ = copy_file(root / entry.stored, dest(entry), size=entry.size, sha256=entry.sha256)
        except CopyProblem as exc:
            message = f"{exc} (backup {manifest.backup_id}, lake file {entry.path})"
            if problems is None:
                raise CopyProblem(message, path=exc.path) from None
            problems.append(message)
            continue
        except OSError as exc:
            raise BackupError(describe_os_error(exc, dest(entry))) from None
        files += 1
        size += copied
    return files, size


def move_aside(src: Path, dst: Path) -> bool:
    """Move ``src`` to ``dst`` (never deleting anything); False when there was nothing to move."""
    if not src.exists():
        return False
    if dst.exists():
        raise BackupError(f"cannot set {src} aside: {dst} exists already; move one of them away and run again")
    dst.parent.mkdir(parents=True, exist_ok=True)
    src.rename(dst)
    return True


def put_extract(settings: Settings, pending: Path | None, aside_dir: Path) -> str | None:
    """The restored extract in place (``pending``, copied and checked earlier), the live one set aside
    under ``aside_dir/_extract``; with no pending file the live extract is only set aside."""
    from govlake.extract import EXTRACT_NAME

    live = settings.extracts / EXTRACT_NAME
    note = None
    if pending is not None and pending.exists():
        if live.exists():
            move_aside(live, aside_dir / "_extract" / EXTRACT_NAME)
        os.replace(pending, live)
        note = "the analyst extract is the backup's"
    elif pending is None and live.exists():
        move_aside(live, aside_dir / "_extract" / EXTRACT_NAME)
        note = "the backup had no analyst extract: the next `govlake run` builds one"
    return note


def already(settings: Settings, table: str, record: dict, tag: str = "") -> bool:
    """Whether ``table`` holds this restore's commit (tagged ``tag``) already."""
    delta = storage.open_table(settings.lake / table)
    reached = None if delta is None else delta.transaction_version(f"{CONSUMER}#{tag}" if tag else CONSUMER)
    return reached is not None and reached >= int(record["id"])


def append_once(settings: Settings, table: str, rows: list[dict], schema: pa.Schema, record: dict, *,
                tag: str) -> bool:
    """Append ``rows`` to ``table`` as one commit stamped with the restore's txn (skipped when done)."""
    if not rows or already(settings, table, record, tag):
        return False
    data = pa.Table.from_pylist([{f: r.get(f) for f in schema.names} for r in rows], schema=schema)
    storage.write_table(settings.lake / table, data, mode="append", run_id=record["run_id"],
                        txn=(f"{CONSUMER}#{tag}", int(record["id"])), label=f"restore:{table}")
    return True


def finish(settings: Settings, record: dict, *, tables: list[str], set_aside: list[str], note: str) -> None:
    """The restore's last acts: its row in meta/restores, its close in the step history, the fence down."""
    started = dt.datetime.fromisoformat(record["started_at"])
    now = dt.datetime.now(dt.UTC)
    row = {"restore_id": record["run_id"], "kind": record["kind"], "backup_id": record.get("backup_id"),
           "backup_dir": record.get("from"), "cut": dt.datetime.fromisoformat(record["cut"]),
           "tables": ", ".join(tables), "set_aside": ", ".join(set_aside) or None, "actor": record.get("actor"),
           "host": socket.gethostname(), "at": now, "seconds": (now - started).total_seconds(), "note": note}
    append_once(settings, RESTORES, [row], RESTORES_SCHEMA, record, tag="record")
    steps.record_event(settings, {"event": "close", "consumer": CONSUMER, "id": record["id"], "state": "done",
                                  "kind": record["kind"], "cut": record["cut"], "backup_id": record.get("backup_id")})
    lower_fence(settings)


def begin_event(settings: Settings, record: dict) -> None:
    steps.record_event(settings, {"event": "begin", "consumer": CONSUMER, "id": record["id"],
                                  "run_id": record["run_id"], "kind": record["kind"]})


def step_file(directory: Path, consumer: str) -> Path:
    """The intent file of ``consumer`` in a ``_steps`` folder (govlake.steps' naming)."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in consumer)
    return directory / f"{safe}.json"


def close_open_intents(settings: Settings, consumers: Iterable[str] | None, why: str) -> list[str]:
    """Mark open intents (of ``consumers``, or all) as closed by the restore; returns their consumers.

    Their outputs are now what the restore put back, so replaying them would be wrong."""
    closed = []
    for intent in steps.open_intents(settings):
        consumer = intent.get("consumer")
        if consumer == CONSUMER or (consumers is not None and consumer not in consumers):
            continue
        path = step_file(settings.lake / steps.STEPS_DIR, consumer)
        write_atomic(path, json.dumps(dict(intent, state="superseded", closed_at=dt.datetime.now(dt.UTC).isoformat(),
                                           note=why), ensure_ascii=False, default=str).encode("utf-8"))
        steps.record_event(settings, {"event": "close", "consumer": consumer, "id": intent.get("id"),
                                      "state": "superseded", "note": why})
        closed.append(consumer)
    return closed
