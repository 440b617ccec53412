"""The silver layer as the models read it: every resource's silver table as a view of a session."""

from __future__ import annotations

import duckdb

from govlake import steps, storage
from govlake.catalog import Catalog
from govlake.config import Settings
from govlake.contracts import silver_schema
from govlake.transform import ModelError


def register_silver(con: duckdb.DuckDBPyConnection, settings: Settings, catalog: Catalog, *,
                    intent: steps.Intent | None = None) -> None:
    """Register every resource's silver table as view ``silver_<slug>`` (empty when absent); with
    ``intent``, at the versions it pinned (govlake.steps). ``con``: a govlake.compute session or a DuckDB
    connection."""
    from govlake.compute import as_compute

    con = as_compute(con)
    for res in catalog.resources.values():
        view = f"silver_{res.slug}"
        schema = silver_schema(res)
        if intent is not None:
            intent.register(con, view, f"silver/{res.slug}", empty_schema=schema)
        else:
            con.register_delta(view, storage.table_path(settings, "silver", res.slug), empty_schema=schema)
        present = set(con.columns(view))
        missing = [n for n in schema.names if n not in present]
        if missing:
            raise ModelError(f"silver/{res.slug} lacks contract columns {missing} (docs/architecture.md)")
