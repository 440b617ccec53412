"""The ingest log (``meta/ingest_log``): one row per file or window and outcome, append-only.

It makes ingest idempotent: a source hash with a ``landed`` row is not landed again, and the db
high-water mark is the largest ``watermark_hi`` landed. Before a batch is written a ``landing`` row
is logged; a ``landing`` row without an outcome (the process died between the bronze commit and
the log commit) is settled on the next ingest by looking for its batch id in bronze. An
``unlanded`` row (written by ``govlake restore --table bronze/…`` for a batch the restored bronze
no longer holds) cancels the ``landed`` row of its batch: the file is landed again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from govlake import storage
from govlake.config import Settings

S = pa.string()
SCHEMA = pa.schema([
    ("run_id", S), ("batch_id", S), ("resource", S), ("source", S), ("source_hash", S), ("encoding", S),
    ("rows", pa.int64()), ("status", S), ("error", S), ("received_at", pa.timestamp("us", tz="UTC")),
    ("watermark_hi", S), ("size", pa.int64()), ("mtime_ns", pa.int64()),
])
LANDING = "landing"
UNLANDED = "unlanded"


def log_path(settings: Settings) -> Path:
    return storage.table_path(settings, "meta", "ingest_log")


def append(settings: Settings, rows: list[dict], *, run_id: str) -> None:
    """Append log rows (dicts keyed by the SCHEMA names; missing keys are null) as one commit."""
    table = pa.Table.from_pylist([{f: r.get(f) for f in SCHEMA.names} for r in rows], schema=SCHEMA)
    storage.write_table(log_path(settings), table, mode="append", run_id=run_id)


@dataclass
class History:
    """What the log says has landed for one resource."""

    hashes: set[str] = field(default_factory=set)
    watermark_hi: str | None = None
    files: dict[tuple[str, int, int], str] = field(default_factory=dict)
    """(path, size, mtime_ns) of landed files → their sha256: unchanged files need no re-reading."""

    def add(self, source_hash: str, watermark_hi: str | None) -> None:
        self.hashes.add(source_hash)
        if watermark_hi is not None and (self.watermark_hi is None or watermark_hi > self.watermark_hi):
            self.watermark_hi = watermark_hi


def history(settings: Settings, resource: str, bronze: Path, *, run_id: str) -> History:
    """Landed hashes and high-water mark of ``resource``, settling interrupted landings first."""
    found = History()
    log = storage.open_table(log_path(settings))
    if log is None:
        return found
    rows = log.to_pyarrow_dataset().to_table(filter=pc.field("resource") == resource).to_pylist()
    outcomes = {r["batch_id"] for r in rows if r["status"] != LANDING and r["batch_id"]}
    unlanded = {r["batch_id"] for r in rows if r["status"] == UNLANDED}
    repairs = []
    for r in rows:
        if r["status"] == "landed" and r["batch_id"] not in unlanded:
            found.add(r["source_hash"], r["watermark_hi"])
        elif r["status"] == LANDING and r["batch_id"] not in outcomes:
            landed = _bronze_rows(bronze, r["batch_id"])
            repair = dict(r, run_id=run_id, rows=landed, received_at=dt.datetime.now(dt.UTC))
            if landed:
                repairs.append(dict(repair, status="landed", error="outcome recovered from bronze"))
                found.add(r["source_hash"], r["watermark_hi"])
            else:
                repairs.append(dict(repair, status="rejected", error="interrupted before the bronze commit"))
    if repairs:
        append(settings, repairs, run_id=run_id)
    for r in rows:
        if r["source_hash"] in found.hashes and r.get("size") is not None and r.get("mtime_ns") is not None:
            found.files[(r["source"], r["size"], r["mtime_ns"])] = r["source_hash"]
    return found


def _bronze_rows(bronze: Path, batch_id: str) -> int:
    table = storage.open_table(bronze)
    if table is None:
        return 0
    return table.to_pyarrow_dataset().count_rows(filter=pc.field("_batch_id") == batch_id)
