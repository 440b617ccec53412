"""Build tiny bronze tables in code for tests (3–20 rows)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from govlake import storage
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.contracts import bronze_schema


def write_bronze(settings: Settings, code: str, rows: list[dict], *, batch: str = "b1",
                 source: str = "test.csv") -> None:
    """Write ``rows`` (item column → raw text) as one bronze batch of ``code``."""
    res = get_catalog(settings.catalog_dir).resource(code)
    meta = {"_resource": code, "_batch_id": batch, "_source": source, "_source_hash": batch,
            "_received_at": dt.datetime(2026, 11, 20, tzinfo=dt.UTC)}
    records = [{**meta, **row, "_row_number": n} for n, row in enumerate(rows, 1)]
    table = pa.Table.from_pylist(records, schema=bronze_schema(res))
    storage.write_table(storage.table_path(settings, "bronze", res.slug), table,
                        mode="append", run_id="test")
