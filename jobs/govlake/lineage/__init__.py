"""Lineage with OpenLineage: every job run emits START and COMPLETE or FAIL events.

A pipeline function wraps its work in :func:`job_run` with the job's :class:`JobPlan` (what it
reads and writes). Each step declares its plan next to itself (``lineage_plan`` of govlake.ingest,
govlake.quality, govlake.gold, govlake.credit, govlake.governance and govlake.extract), built from
the pieces here (:class:`Dataset`, :func:`column_lineage`, :func:`table_job_plan` for any job over
lake tables); this package imports no step. Events go to ``var/lineage/govlake.jsonl`` (and to
``GOVLAKE_LINEAGE_URL`` when set);
:func:`capture` collects them in memory instead. :func:`validate_event` checks an event against the
OpenLineage 2-0-2 schemas offline; :mod:`govlake.lineage._graph` reads the events back for the
catalog (upstream and downstream of a table or a column). See docs/lineage.md.
"""

from govlake.lineage._columns import column_sources, compose, tables_read
from govlake.lineage._emit import (
    NAMESPACE,
    Assertion,
    Dataset,
    JobPlan,
    MemoryTransport,
    capture,
    job_run,
    transport_for,
)
from govlake.lineage._jobs import (
    CONDITIONAL,
    DIRECT,
    MASKED,
    TRANSFORMED,
    column_lineage,
    describe,
    lake_view,
    table_job_plan,
)
from govlake.lineage._naming import DatasetRef, db_table, file_dataset, lake_table
from govlake.lineage._stats import delta_schema
from govlake.lineage._validate import validate_event, validate_file

__all__ = [
    "CONDITIONAL", "DIRECT", "MASKED", "NAMESPACE", "TRANSFORMED", "Assertion", "Dataset", "DatasetRef", "JobPlan",
    "MemoryTransport", "capture", "column_lineage", "column_sources", "compose", "db_table", "delta_schema",
    "describe", "file_dataset", "job_run", "lake_table", "lake_view", "table_job_plan", "tables_read",
    "transport_for", "validate_event", "validate_file",
]
