"""Lineage with OpenLineage: every job run emits START and COMPLETE or FAIL events.

A pipeline function wraps its work in :func:`job_run` with the job's :class:`JobPlan` (what it
reads and writes); the plans of govlake's jobs are :func:`ingest_plan`, :func:`process_plan`,
:func:`gold_plan` and :func:`extract_plan`, and :func:`table_job_plan` describes any other job over
lake tables. Events go to ``var/lineage/govlake.jsonl`` (and to ``GOVLAKE_LINEAGE_URL`` when set);
:func:`capture` collects them in memory instead. :func:`validate_event` checks an event against the
OpenLineage 2-0-2 schemas offline; :mod:`govlake.lineage._graph` reads the events back for the
catalog (upstream and downstream of a table or a column). See docs/lineage.md.
"""

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
from govlake.lineage._graph import LineageGraph, load_graph
from govlake.lineage._jobs import (
    conflicts_plan,
    credit_plan,
    extract_plan,
    gold_plan,
    ingest_plan,
    process_plan,
    table_job_plan,
)
from govlake.lineage._naming import DatasetRef, db_table, file_dataset, lake_table
from govlake.lineage._validate import validate_event, validate_file

__all__ = [
    "NAMESPACE", "Assertion", "Dataset", "DatasetRef", "JobPlan", "LineageGraph", "MemoryTransport", "capture",
    "conflicts_plan", "credit_plan", "db_table",
    "extract_plan", "file_dataset", "gold_plan", "ingest_plan", "job_run", "lake_table", "load_graph", "process_plan",
    "table_job_plan", "transport_for", "validate_event", "validate_file",
]
