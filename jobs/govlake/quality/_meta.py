"""History tables under lake/meta: validation results, reconciliation, runs."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from govlake import storage
from govlake.config import Settings

VALIDATION_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("resource", pa.string()), ("rule_id", pa.string()),
    ("severity", pa.string()), ("description_zh", pa.string()), ("description_en", pa.string()),
    ("rows_checked", pa.int64()), ("failed", pa.int64()), ("gx_unexpected", pa.int64()),
    ("gx_success", pa.bool_()), ("success", pa.bool_()), ("validated_at", pa.timestamp("us", tz="UTC")),
])

RECONCILIATION_SCHEMA = pa.schema([
    ("run_id", pa.string()), ("resource", pa.string()), ("rows_read", pa.int64()),
    ("silver", pa.int64()), ("quarantined", pa.int64()), ("duplicates", pa.int64()),
    ("new_rows", pa.int64()), ("new_silver", pa.int64()), ("new_quarantined", pa.int64()),
    ("new_duplicates", pa.int64()), ("bronze_version", pa.int64()),
    ("held", pa.int64()), ("rejected", pa.int64()), ("new_held", pa.int64()),
    ("balanced", pa.bool_()), ("published", pa.bool_()), ("note", pa.string()),
    ("checked_at", pa.timestamp("us", tz="UTC")),
])


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def append(settings: Settings, name: str, rows: list[dict], schema: pa.Schema, run_id: str) -> None:
    if not rows:
        return
    table = pa.Table.from_pylist(rows, schema=schema)
    storage.write_table(storage.table_path(settings, "meta", name), table, mode="append", run_id=run_id)
