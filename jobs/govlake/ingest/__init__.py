"""Ingest: connectors (CSV, XLSX, JSON lines, database) landing raw rows in bronze Delta tables.

``ingest_resource`` lands each new file or database window of a catalogued resource as one
append commit to ``bronze/<slug>`` (raw text, lineage columns; docs/architecture.md), logs it in
``meta/ingest_log`` and skips sources already landed (same sha256; for a database, rows whose content
hash is already in bronze).
"""

from govlake.contracts import bronze_schema, row_hash_sql
from govlake.ingest._ingest import discover, ingest_resource
from govlake.ingest._results import BatchResult, IngestError, IngestResult, Status

__all__ = ["BatchResult", "IngestError", "IngestResult", "Status", "bronze_schema", "discover", "ingest_resource",
           "row_hash_sql"]
