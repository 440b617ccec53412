"""What a Delta table says about itself: schema, version, and what one run wrote.

Every govlake write stamps ``govlake.run_id`` in the commit (storage.write_table), so the rows,
bytes and files a run wrote are the ``add`` actions of its commits, read from ``_delta_log``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import pyarrow as pa

from govlake import objectstore, storage
from govlake.objectstore import Location

HISTORY_DEPTH = 50
"""Commits looked at for a run's writes (a run writes a table a handful of times at most)."""


@dataclass(frozen=True)
class Written:
    rows: int
    bytes: int
    files: int
    version: int


def delta_schema(path: Location) -> list[tuple[str, str | None]] | None:
    """(column, Arrow type) of the current version, None when there is no table."""
    found = delta_state(path)
    return None if found is None else found[0]


def delta_state(path: Location) -> tuple[list[tuple[str, str | None]], int] | None:
    """(the columns as :func:`delta_schema` gives them, the version) of the current version, from one opening of
    the table (an event's facets need both), None when there is no table."""
    table = storage.open_table(path)
    if table is None:
        return None
    # through pyarrow: delta-rs returns arro3's schema, whose types print as "arro3.core.DataType<Utf8>"
    return [(f.name, str(f.type)) for f in pa.schema(table.schema().to_arrow())], table.version()


def written_by_run(path: Location, run_id: str, *, since: dt.datetime | None = None) -> Written | None:
    """Rows, bytes and files added by the commits stamped ``run_id`` (at or after ``since``), or None."""
    table = storage.open_table(path)
    if table is None:
        return None
    floor = since.timestamp() * 1000 - 1000 if since is not None else None
    rows = size = files = 0
    found = None
    for commit in table.history(HISTORY_DEPTH):
        if storage.commit_run_id(commit) != run_id or (floor is not None and commit.get("timestamp", 0) < floor):
            continue
        version = commit["version"]
        found = version if found is None else max(found, version)
        text = objectstore.read_text(objectstore.join(path, "_delta_log", f"{version:020d}.json"))
        if text is None:
            rows += int((commit.get("operationMetrics") or {}).get("num_added_rows", 0))
            continue
        for line in text.splitlines():
            add = json.loads(line).get("add") if line.strip() else None
            if add:
                files += 1
                size += int(add.get("size") or 0)
                stats = json.loads(add["stats"]) if add.get("stats") else {}
                rows += int(stats.get("numRecords") or 0)
    return None if found is None else Written(rows, size, files, found)
