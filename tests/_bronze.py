"""Build tiny bronze tables in code for tests (3–20 rows)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from govlake import storage
from govlake.catalog import get_catalog
from govlake.config import Settings


def write_bronze(settings: Settings, code: str, rows: list[dict], *, batch: str = "b1",
                 source: str = "test.csv") -> None:
    """Write ``rows`` (item column → raw text) as one bronze batch of ``code``."""
    res = get_catalog(settings.catalog_dir).resource(code)
    cols = {i.column: pa.array([r.get(i.column) for r in rows], pa.string()) for i in res.items}
    n = len(rows)
    cols["_extra"] = pa.array([None] * n, pa.string())
    cols["_parse_error"] = pa.array([r.get("_parse_error") for r in rows], pa.string())
    cols["_resource"] = pa.array([code] * n, pa.string())
    cols["_batch_id"] = pa.array([batch] * n, pa.string())
    cols["_source"] = pa.array([source] * n, pa.string())
    cols["_source_hash"] = pa.array([batch] * n, pa.string())
    cols["_received_at"] = pa.array([dt.datetime(2026, 11, 20, tzinfo=dt.UTC)] * n, pa.timestamp("us", tz="UTC"))
    cols["_row_number"] = pa.array(range(1, n + 1), pa.int64())
    storage.write_table(storage.table_path(settings, "bronze", res.slug), pa.table(cols),
                        mode="append", run_id="test")
