"""Ingest: connectors (CSV, XLSX, JSON lines, database) landing raw rows in bronze Delta tables.

``ingest_resource`` lands each new file or database window of a catalogued resource as one
append commit to ``bronze/<slug>`` (raw text, lineage columns; docs/architecture.md), logs it in
``meta/ingest_log`` and skips sources already landed (same sha256; for a database, rows whose content
hash is already in bronze).
"""

from govlake.contracts import bronze_schema, row_hash_sql
from govlake.ingest._ingest import discover, ingest_resource
from govlake.ingest._log import UNLANDED
from govlake.ingest._results import BatchResult, IngestError, IngestResult, Status

__all__ = ["BatchResult", "IngestError", "IngestResult", "Status", "UNLANDED", "bronze_schema", "discover",
           "ingest_resource", "lineage_plan", "row_hash_sql"]


def lineage_plan(settings, code, files):
    """What this step reads and writes, for lineage (see govlake.ingest._lineage); imported on use."""
    from govlake.ingest._lineage import lineage_plan as plan

    return plan(settings, code, files)
