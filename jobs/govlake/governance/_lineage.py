"""What the conflicts step reads and writes, for lineage (table level)."""

from __future__ import annotations

from govlake import storage
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.lineage import JobPlan, table_job_plan


def lineage_plan(settings: Settings) -> JobPlan:
    """一数一源 conflict detection: silver copies and authorities → gold/conflicts."""
    catalog = get_catalog(settings.catalog_dir)
    reads = [("silver", r.slug) for r in sorted(catalog.resources.values(), key=lambda r: r.code)
             if storage.open_table(settings.table_path("silver", r.slug)) is not None]
    return table_job_plan(settings, "conflicts", reads=reads, writes=[("gold", "conflicts")], owner="dsj",
                          overwrite=False, description="Compare every department's copy of an item with the "
                          "authoritative department's value (一数一源) and merge gold/conflicts")
