"""The ingest log (``meta/ingest_log``): one row per file or window and outcome, append-only.

It makes ingest idempotent: a source hash with a ``landed`` row is not landed again, and the db
high-water mark is the largest ``watermark_hi`` landed, parsed (so a mark written in another format
by an older version is read correctly). Its database windows say which bronze batches a new read
must be compared with (``History.db_batches``). Before a batch is written a ``landing`` row
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

from govlake import contracts, storage
from govlake.config import Settings
from govlake.ingest._watermark import canonical, parse_watermark

S = pa.string()
SCHEMA = contracts.INGEST_LOG
LANDING = "landing"
UNLANDED = "unlanded"


def log_path(settings: Settings) -> Path:
    return storage.table_path(settings, "meta", "ingest_log")


def append(settings: Settings, rows: list[dict], *, run_id: str) -> None:
    """Append log rows (dicts keyed by the SCHEMA names; missing keys are null) as one commit."""
    table = pa.Table.from_pylist([{f: r.get(f) for f in SCHEMA.names} for r in rows], schema=SCHEMA)
    storage.write_table(log_path(settings), table, mode="append", run_id=run_id)


@dataclass(frozen=True)
class DbWindow:
    """A landed database window: its bronze batch, its parsed high-water mark (None when the log's
    is absent or unreadable) and whether it landed rows without a usable watermark (None: logged
    before that was recorded)."""

    batch_id: str
    hi: dt.datetime | None
    unwatermarked: bool | None


@dataclass
class History:
    """What the log says has landed for one resource."""

    hashes: set[str] = field(default_factory=set)
    high_water: dt.datetime | None = None
    """The largest parsed ``watermark_hi`` of a landed window; unreadable marks are ignored."""
    files: dict[tuple[str, int, int], str] = field(default_factory=dict)
    """(path, size, mtime_ns) of landed files → their sha256: unchanged files need no re-reading."""
    windows: list[DbWindow] = field(default_factory=list)

    @property
    def watermark_hi(self) -> str | None:
        """The high-water mark, canonical (``YYYY-MM-DD HH:MM:SS[.ffffff]``)."""
        return None if self.high_water is None else canonical(self.high_water)

    def add(self, source_hash: str, watermark_hi: str | None, *, batch_id: str | None = None,
            source: str | None = None, unwatermarked_rows: int | None = None) -> None:
        """Record a landed file or window (a window when ``source`` starts with ``db:``)."""
        self.hashes.add(source_hash)
        hi = _parsed(watermark_hi)
        if hi is not None and (self.high_water is None or hi > self.high_water):
            self.high_water = hi
        if batch_id and source and source.startswith("db:"):
            unwatermarked = None if unwatermarked_rows is None else unwatermarked_rows > 0
            self.windows.append(DbWindow(batch_id, hi, unwatermarked))

    def db_batches(self, *, since: dt.datetime | None) -> list[str]:
        """Batch ids of the landed windows that may hold rows a read from ``since`` fetches again: every
        window when ``since`` is None; else those whose mark is at or above ``since`` or unknown, and
        those with rows without a usable watermark (every read fetches those again)."""
        return [w.batch_id for w in self.windows
                if since is None or w.hi is None or w.hi >= since or w.unwatermarked]


def _parsed(mark: str | None) -> dt.datetime | None:
    if mark is None:
        return None
    try:
        return parse_watermark(mark)
    except ValueError:
        return None


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
            _add(found, r)
        elif r["status"] == LANDING and r["batch_id"] not in outcomes:
            landed = _bronze_rows(bronze, r["batch_id"])
            repair = dict(r, run_id=run_id, rows=landed, received_at=dt.datetime.now(dt.UTC))
            if landed:
                repairs.append(dict(repair, status="landed", error="outcome recovered from bronze"))
                _add(found, r)
            else:
                repairs.append(dict(repair, status="rejected", error="interrupted before the bronze commit"))
    if repairs:
        append(settings, repairs, run_id=run_id)
    for r in rows:
        if r["source_hash"] in found.hashes and r.get("size") is not None and r.get("mtime_ns") is not None:
            found.files[(r["source"], r["size"], r["mtime_ns"])] = r["source_hash"]
    return found


def _add(found: History, row: dict) -> None:
    found.add(row["source_hash"], row["watermark_hi"], batch_id=row["batch_id"], source=row["source"],
              unwatermarked_rows=row.get("unwatermarked_rows"))


def _bronze_rows(bronze: Path, batch_id: str) -> int:
    table = storage.open_table(bronze)
    if table is None:
        return 0
    return table.to_pyarrow_dataset().count_rows(filter=pc.field("_batch_id") == batch_id)
