"""History tables under lake/meta: validation results, reconciliation, runs."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from govlake import contracts, storage
from govlake.config import Settings

VALIDATION_SCHEMA = contracts.VALIDATION_RESULTS
RECONCILIATION_SCHEMA = contracts.RECONCILIATION


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def append(settings: Settings, name: str, rows: list[dict], schema: pa.Schema, run_id: str) -> None:
    if not rows:
        return
    table = pa.Table.from_pylist(rows, schema=schema)
    storage.write_table(storage.table_path(settings, "meta", name), table, mode="append", run_id=run_id)
