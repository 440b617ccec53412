"""Crash-consistent steps: an intent written ahead, inputs read at pinned versions, outputs stamped.

A step (process of one resource, credit, the extract, …) writes several Delta tables, one commit
each; Delta has no transaction across tables. So every step runs as one **intent**:

1. Under the step's lock (govlake.locks) it writes its intent, ``lake/_steps/<consumer>.json``:
   an id (increasing, never reused), the run id, its parameters (business date, rebuild) and the
   version of every table it will read (its *cut*).
2. It reads its inputs at those versions only (``Intent.version``), so running the same intent
   again computes the same rows, whatever was committed since.
3. Each output commit carries the Delta transaction identifier ``txn(appId=<consumer>,
   version=<intent id>)`` (:meth:`Intent.write_table`, :meth:`Intent.merge_table`); a table whose
   ``transaction_version(<consumer>)`` has reached the intent id already holds that commit, and the
   write is skipped.
4. When every output is written the intent is marked done.

A process killed between two commits leaves its intent open. The next invocation of the same step
finds it and runs it again first (``replay``): the commits that happened are skipped by their
txn, the others are made, with the same rows, and only then does the new run start. No
``--rebuild``, no manual step, no row written twice. Steps that rebuild their outputs from
scratch anyway (gold, conflicts) set ``replay=False``: an open intent of theirs is superseded by
the next run.

Why this and not more: the txn identifier is Delta's own idempotent-write mechanism and lives in
the same commit as the data, so "written" and "marked written" cannot disagree; the intent file
only has to say what to redo, and it is replaced atomically (write, fsync, rename; on S3 one put,
which S3 makes visible whole: govlake.objectstore).

Every intent's begin (before its file is written) and close (after) is also appended to
``lake/_steps/history.jsonl`` (:func:`record_event`, one fsync'd JSON line each; on S3, which cannot
append, one object each under ``lake/_steps/history/``): the moments no intent was open are the quiet
cuts ``govlake restore --as-of`` may go back to (govlake.backup).

Fault injection (``GOVLAKE_CRASH_AT``, govlake._faults) kills a step at any of these commit boundaries.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from govlake import deltafiles, locks, objectstore, storage
from govlake._faults import crash_point
from govlake.config import Settings
from govlake.layout import gold_layer
from govlake.objectstore import Location

log = logging.getLogger(__name__)
T = TypeVar("T")
STEPS_DIR = "_steps"
HISTORY = "history.jsonl"
HISTORY_OBJECTS = "history"
"""On S3: the folder of history events, one object each (S3 cannot append to an object)."""


class StepAbandoned(RuntimeError):
    """Raised by a step body that decided to publish nothing; its intent is closed, not replayed."""


@dataclass
class Intent:
    """One run of a step: what it reads (at which versions) and how it stamps what it writes."""

    settings: Settings
    consumer: str
    id: int
    run_id: str
    params: dict[str, Any]
    versions: dict[str, int | None]
    """Lake-relative table path (``silver/credit_penalty``) → the version this intent reads (None: absent)."""
    replay: bool = False
    written: list[str] = field(default_factory=list)

    # ---- reading ----------------------------------------------------------------------------

    def version(self, table: str) -> int | None:
        """The version of ``table`` (lake-relative) this intent reads; KeyError if not declared."""
        try:
            return self.versions[table]
        except KeyError:
            raise KeyError(f"step {self.consumer}: table {table} was not declared as an input") from None

    def path(self, table: str) -> Location:
        return self.settings.lake_location(table)

    def register(self, con, name: str, table: str, *, empty_schema: pa.Schema | None = None) -> bool:
        """``table`` at this intent's version of it as view ``name`` of ``con`` (a govlake.compute session
        or a DuckDB connection); absent at the cut: like absent (empty ``empty_schema`` view, or False)."""
        from govlake.compute import as_compute

        compute, version = as_compute(con), self.version(table)
        if version is None:
            if empty_schema is None:
                return False
            compute.register_arrow(name, empty_schema.empty_table())
            return True
        return compute.register_delta(name, self.path(table), empty_schema=empty_schema, version=version)

    def files_since(self, table: str, since: int | None) -> list[str]:
        """Data files of ``table`` at this intent's version added after version ``since``."""
        version = self.version(table)
        if version is None:
            return []
        return storage.files_since(self.path(table), since, until=version)[1]

    # ---- writing ----------------------------------------------------------------------------

    def done(self, table: str, tag: str = "") -> bool:
        """Whether ``table`` already holds this intent's commit (its txn version reached our id)."""
        dt_ = storage.open_table(self.path(table))
        if dt_ is None:
            return False
        reached = dt_.transaction_version(self._app(tag))
        return reached is not None and reached >= self.id

    def _app(self, tag: str) -> str:
        return f"{self.consumer}#{tag}" if tag else self.consumer

    def _stamp(self, table: str, tag: str) -> tuple[str, int] | None:
        if self.done(table, tag):
            log.info("%s: %s already holds run %s's commit; skipped", self.consumer, table, self.run_id)
            return None
        return (self._app(tag), self.id)

    def write_table(self, table: str, data, *, mode: storage.WriteMode, schema: pa.Schema | None = None,
                    tag: str = "", cluster_by: str | None = None) -> bool:
        """storage.write_table stamped with this intent; False when it had been written already."""
        txn = self._stamp(table, tag)
        if txn is None:
            return False
        storage.write_table(self.path(table), data, mode=mode, run_id=self.run_id, schema=schema, txn=txn,
                            label=f"{self.consumer}:{table}", cluster_by=cluster_by)
        self.written.append(table)
        return True

    def replace_with(self, table: str, con, relation: str) -> int:
        """Overwrite ``table`` with the rows of ``relation`` of ``con`` (a govlake.compute session), stamped
        like :meth:`write_table`; the rows the table holds now."""
        self.write_table(table, con.data(f"select * from {relation}"), mode="overwrite")
        return storage.row_count(self.path(table))

    def merge_table(self, table: str, source, *, key: Sequence[str], delete_flag: str | None = None,
                    tag: str = "", cluster_by: str | None = None, keys: pa.Table | None = None) -> dict | None:
        """storage.merge_table stamped with this intent; None when it had been merged already. ``keys``: the
        key columns of every source row, so that a stream ``source`` is streamed (storage.merge_table).

        ``cluster_by``: the table is clustered on that date column (storage.split_matched): the rows whose key
        it holds replace theirs in the files the lookup found them in (storage.replace_span), then the new rows
        are appended — two commits, each stamped (a crash between them leaves the append to the next run), so
        that new rows, whatever their dates, never widen the files a later merge rewrites. With ``keys`` as well
        (too many rows to hold: a stream sorted by ``cluster_by``) they are merged as one streamed commit instead
        (storage.merge_table)."""
        if cluster_by is None or storage.is_spark(source) or keys is not None:
            txn = self._stamp(table, tag)
            if txn is None:
                return None
            metrics = storage.merge_table(self.path(table), source, key=key, run_id=self.run_id,
                                          delete_flag=delete_flag, txn=txn, label=f"{self.consumer}:{table}",
                                          keys=keys, cluster_by=cluster_by)
            self.written.append(table)
            return metrics
        merge_txn, append_txn = self._stamp(table, tag), self._stamp(table, f"{tag}+new")
        if merge_txn is None and append_txn is None:
            return None
        source = source.reader() if isinstance(source, deltafiles.Rows) else source
        source = source.read_all() if isinstance(source, pa.RecordBatchReader) else source
        split = storage.split_matched(self.path(table), source, key=key, cluster_by=cluster_by,
                                      delete_flag=delete_flag)
        metrics = {"num_source_rows": source.num_rows, "num_target_rows_inserted": 0}
        if merge_txn is not None and split.matched.num_rows:
            metrics |= storage.replace_span(self.path(table), split.matched, key=key, span=split.span,
                                            run_id=self.run_id, delete_flag=delete_flag, txn=merge_txn,
                                            label=f"{self.consumer}:{table}", cluster_by=cluster_by,
                                            files=split.files, version=split.version)
        if append_txn is not None and split.new.num_rows:
            storage.write_table(self.path(table), split.new, mode="append", run_id=self.run_id, txn=append_txn,
                                label=f"{self.consumer}:{table}+new")
            metrics["num_target_rows_inserted"] += split.new.num_rows
        self.written.append(table)
        return metrics

    def append_rows(self, table: str, rows: list[dict], schema: pa.Schema, *, tag: str = "") -> bool:
        """Append ``rows`` (dicts keyed by ``schema``'s names) as one stamped commit; nothing when empty."""
        if not rows:
            return False
        data = pa.Table.from_pylist([{f: r.get(f) for f in schema.names} for r in rows], schema=schema)
        return self.write_table(table, data, mode="append", tag=tag)


# ---- the intent file --------------------------------------------------------------------------


def _steps_dir(settings: Settings) -> Location:
    return settings.lake_location(STEPS_DIR)


def _file(settings: Settings, consumer: str) -> Location:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in consumer)
    return objectstore.join(_steps_dir(settings), f"{safe}.json")


def _write_json(path: Location, record: dict) -> None:
    objectstore.write_text(path, json.dumps(record, ensure_ascii=False, default=str))


def read_record(settings: Settings, consumer: str) -> dict | None:
    path = _file(settings, consumer)
    text = objectstore.read_text(path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:  # only a torn write could do this, and writes are atomic
        raise RuntimeError(f"{path}: unreadable step record ({exc}); delete it and run `govlake run --rebuild`")\
            from None


def _records(settings: Settings) -> list[tuple[Location, dict | None]]:
    """Every intent file (``<consumer>.json``) with its record (None when unreadable)."""
    directory = _steps_dir(settings)
    found: list[tuple[Location, dict | None]] = []
    for entry in objectstore.children(directory):
        if not entry.endswith(".json") or entry.startswith("."):
            continue
        path = objectstore.join(directory, entry)
        try:
            found.append((path, json.loads(objectstore.read_text(path) or "")))
        except ValueError:
            found.append((path, None))
    return found


def open_intents(settings: Settings) -> list[dict]:
    """Every intent left open by an interrupted step (what ``govlake status`` shows)."""
    return [record for _, record in _records(settings) if record and record.get("state") == "open"]


def clear_intents(settings: Settings) -> None:
    """Forget every intent (after a restore: the lake went back to a cut where none was open)."""
    for path, _ in _records(settings):
        objectstore.delete(path)


def record_event(settings: Settings, event: dict) -> None:
    """Append ``event`` (with its time, ``at``) to ``lake/_steps/history.jsonl`` and fsync it (on S3: put
    it as an object of its own under ``lake/_steps/history/``)."""
    event = {"at": dt.datetime.now(dt.UTC).isoformat(), **event}
    if settings.lake_on_s3:
        objectstore.append_event(objectstore.join(_steps_dir(settings), HISTORY_OBJECTS), event)
        return
    path = _steps_dir(settings) / HISTORY
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(event, ensure_ascii=False, default=str)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"  # a crash mid-line: start a new one
        os.write(fd, (("\n" if torn else "") + line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def history(settings: Settings) -> list[dict]:
    """Every event of ``lake/_steps/history.jsonl``, oldest first (a line torn by a crash is skipped)."""
    if settings.lake_on_s3:
        return objectstore.read_events(objectstore.join(_steps_dir(settings), HISTORY_OBJECTS))
    try:
        text = (_steps_dir(settings) / HISTORY).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def table_versions(settings: Settings, tables: Iterable[str]) -> dict[str, int | None]:
    """The current version of each lake-relative table (None when it does not exist yet)."""
    out = {}
    for table in tables:
        dt_ = storage.open_table(settings.lake_location(table))
        out[table] = None if dt_ is None else dt_.version()
    return out


def _begin(settings: Settings, consumer: str, run_id: str, params: dict, reads: Iterable[str],
           previous: dict | None) -> Intent:
    last = previous.get("id", 0) if previous else 0
    intent_id = max(time.time_ns(), last + 1)
    versions = table_versions(settings, dict.fromkeys(reads))
    record = {"consumer": consumer, "id": intent_id, "run_id": run_id, "state": "open", "params": params,
              "versions": versions, "started_at": dt.datetime.now(dt.UTC).isoformat(), "pid": os.getpid()}
    record_event(settings, {"event": "begin", "consumer": consumer, "id": intent_id, "run_id": run_id,
                            "versions": versions})
    _write_json(_file(settings, consumer), record)
    crash_point(f"{consumer}:begin")
    return Intent(settings, consumer, intent_id, run_id, params, versions)


def _close(settings: Settings, intent: Intent, state: str) -> None:
    _write_json(_file(settings, intent.consumer), {
        "consumer": intent.consumer, "id": intent.id, "run_id": intent.run_id, "state": state,
        "closed_at": dt.datetime.now(dt.UTC).isoformat()})
    record_event(settings, {"event": "close", "consumer": intent.consumer, "id": intent.id, "state": state})
    crash_point(f"{intent.consumer}:done")


def _from_record(settings: Settings, record: dict) -> Intent:
    return Intent(settings, record["consumer"], int(record["id"]), record["run_id"], record.get("params") or {},
                  record.get("versions") or {}, replay=True)


@dataclass
class StepRun:
    """What :func:`run` hands back: the body's result and the run ids it recovered first."""

    result: Any
    recovered: list[str] = field(default_factory=list)


def run(settings: Settings, consumer: str, *, lock: str, run_id: str, params: Callable[[], dict],
        reads: Callable[[dict], Iterable[str]], body: Callable[[Intent], T], replay: bool = True) -> T:
    """Run ``body`` as a new intent of ``consumer`` under ``lock``, after finishing an interrupted one.

    Args:
        lock: the lock to hold (govlake.locks), taken before anything is read.
        params: computes the new intent's parameters (JSON-able) under the lock.
        reads: the lake-relative tables whose versions the intent pins, given its parameters.
        body: does the work through the intent; it runs once per intent (twice in all after a crash).
        replay: False for steps that rebuild their outputs anyway: an open intent is superseded.
    """
    with locks.hold(settings, lock):
        settle_gold_layout(settings)
        previous = read_record(settings, consumer)
        if previous is not None and previous.get("state") == "open":
            stale = _from_record(settings, previous)
            if replay:
                log.warning("%s: finishing run %s, interrupted at %s", consumer, stale.run_id,
                            previous.get("started_at"))
                try:
                    body(stale)
                except StepAbandoned:
                    pass
                except Exception as exc:
                    raise RecoveryError(
                        f"{consumer}: finishing the interrupted run {stale.run_id} failed: {exc}. Fix the cause "
                        "and run again (it is retried each time); `govlake run --rebuild` rebuilds everything "
                        "from bronze instead") from exc
                _close(settings, stale, "done")
            else:
                log.warning("%s: run %s was interrupted; this run replaces its outputs", consumer, stale.run_id)
                _close(settings, stale, "superseded")
        chosen = params()
        intent = _begin(settings, consumer, run_id, chosen, reads(chosen), previous)
        try:
            result = body(intent)
        except StepAbandoned:
            _close(settings, intent, "abandoned")
            raise
        except BaseException:
            if not intent.written:  # nothing committed: nothing to finish
                _close(settings, intent, "failed")
            raise
        _close(settings, intent, "done")
        return result


class RecoveryError(RuntimeError):
    """An interrupted step could not be finished; the message says what to do."""


def settle_gold_layout(settings: Settings) -> None:
    """Move the gold tables of a lake written before gold had libraries (``gold/<table>``) to their place,
    ``gold/base/<table>`` or ``gold/theme/<table>`` (govlake.layout.gold_layer): a folder rename, which a
    Delta table survives (its log names its files relative to the folder). Run by every step before it
    reads anything; of two processes renaming at once one finds the folder gone and goes on.

    Raises:
        RecoveryError: a lake on S3 (no rename there: the message says what to move), or a table that is
            both in the old place and the new.
    """
    gold = settings.layer("gold")
    for name in objectstore.delta_tables(gold):
        layer = gold_layer(name)
        if layer == "gold":
            continue
        old, new = objectstore.join(gold, name), settings.table_path(layer, name)
        if not isinstance(old, Path) or not isinstance(new, Path):
            raise RecoveryError(f"{old} was written before gold had libraries: move its objects to {new}/ (for "
                                f"example `aws s3 mv --recursive {old}/ {new}/`) and run again")
        if (new / "_delta_log").exists():
            raise RecoveryError(f"{old} and {new} both hold a table: gold keeps it at {new}. Keep the newer one "
                                f"(compare `govlake status`), remove the other folder, and run again")
        new.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(old, new)
        except FileNotFoundError:
            continue  # another process moved it first
        log.warning("moved %s to %s (gold keeps base libraries in gold/base/, theme libraries in gold/theme/)",
                    old, new)
