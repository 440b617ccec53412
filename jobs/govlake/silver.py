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
    ``intent``, at the versions it pinned (govlake.steps)."""
    for res in catalog.resources.values():
        view = f"silver_{res.slug}"
        schema = silver_schema(res)
        if intent is not None:
            intent.register(con, view, f"silver/{res.slug}", empty_schema=schema)
        else:
            storage.register(con, view, storage.table_path(settings, "silver", res.slug), empty_schema=schema)
        missing = [n for n in schema.names if n not in con.sql(f"select * from {view}").columns]
        if missing:
            raise ModelError(f"silver/{res.slug} lacks contract columns {missing} (docs/architecture.md)")
