"""The lake's contracts: every table's schema, in one low module every step uses.

The bronze, silver and quarantine schemas of a resource are derived from its catalog entry; the
meta, gold-log and governance tables have fixed schemas. No step imports another step to learn a
schema: it asks here. docs/architecture.md states the same contracts in words.

| contract | table(s) | written by |
|---|---|---|
| :func:`bronze_schema` | ``bronze/<slug>`` | ingest |
| :func:`silver_schema` | ``silver/<slug>`` | process |
| :func:`quarantine_schema` | ``quarantine/<slug>`` | process |
| ``INGEST_LOG`` … ``OPEN_DATA`` | ``meta/*`` | the step named in each constant's docstring |
| ``WITHDRAWAL_LOG``, ``CONFLICTS`` | ``gold/withdrawal_log``, ``gold/conflicts`` | credit and extract, conflicts |

Where gold keeps each table (``gold/base/``, ``gold/theme/``, ``gold/``) is govlake.layout's.
"""

from __future__ import annotations

import pyarrow as pa

from govlake.catalog import Resource

S = pa.string()
TS = pa.timestamp("us", tz="UTC")
I64 = pa.int64()

# ---- per resource, from the catalog ----------------------------------------------------------

BRONZE_LINEAGE = [
    ("_extra", S), ("_parse_error", S), ("_resource", S), ("_batch_id", S),
    ("_source", S), ("_source_hash", S), ("_received_at", TS), ("_row_number", I64),
]
"""Lineage columns of every bronze row, after the item columns."""

_ARROW_TYPES = {"date": pa.date32(), "timestamp": pa.timestamp("us"), "decimal": pa.decimal128(18, 4),
                "integer": pa.int64()}
DOUBLE_PUBLICITY_ITEM = "source_dept_uscc"


def bronze_schema(resource: Resource) -> pa.Schema:
    """Every item column as a nullable string (raw text as sent), then the lineage columns."""
    return pa.schema([(i.column, S) for i in resource.items] + BRONZE_LINEAGE)


def row_hash_sql(resource: Resource, alias: str | None = None) -> str:
    """SQL (DuckDB and Spark alike) for the content hash of a bronze row: md5 of the JSON array of its
    raw item values in catalog order. Two deliveries of the same row, from a re-sent file or an
    overlapping database window, have the same hash; lineage columns do not take part."""
    prefix = f"{alias}." if alias else ""
    return "md5(to_json(list_value(" + ", ".join(f'{prefix}"{i.column}"' for i in resource.items) + ")))"


def is_double_publicity(resource: Resource) -> bool:
    """双公示 resources carry 数据来源单位统一社会信用代码, resolved to ``_dept`` in silver."""
    return any(i.column == DOUBLE_PUBLICITY_ITEM for i in resource.items)


def silver_schema(resource: Resource) -> pa.Schema:
    """Typed items — string/uscc/id_number/region_code/industry_code/phone → string, date → date32,
    timestamp → timestamp[us], decimal → decimal(18,4), integer → int64 (multi-value items are
    ``;``-joined strings) — then ``_source``, ``_row_number``, ``_batch_id``, ``_received_at`` and,
    for 双公示 resources, ``_dept``."""
    fields = [pa.field(i.column, _ARROW_TYPES.get(i.type, S)) for i in resource.items]
    fields += [pa.field("_source", S), pa.field("_row_number", I64), pa.field("_batch_id", S),
               pa.field("_received_at", TS)]
    if is_double_publicity(resource):
        fields.append(pa.field("_dept", S))
    return pa.schema(fields)


def quarantine_schema(resource: Resource) -> pa.Schema:
    """The bronze row as sent, then ``_failed_rules`` (rule ids), ``_run_id``, ``_dept`` (the
    submitting department when resolved), ``_submitted_at`` (报送时间, else the received time in
    Asia/Shanghai) and ``_row_hash`` (:func:`row_hash_sql`: a re-sent row is quarantined once)."""
    return pa.schema([*bronze_schema(resource), pa.field("_failed_rules", pa.list_(S)), pa.field("_run_id", S),
                      pa.field("_dept", S), pa.field("_submitted_at", pa.timestamp("us")),
                      pa.field("_row_hash", S)])


# ---- meta: history tables, append-only -------------------------------------------------------

INGEST_LOG = pa.schema([
    ("run_id", S), ("batch_id", S), ("resource", S), ("source", S), ("source_hash", S), ("encoding", S),
    ("rows", I64), ("status", S), ("error", S), ("received_at", TS),
    ("watermark_hi", S), ("size", I64), ("mtime_ns", I64), ("unwatermarked_rows", I64),
])
"""meta/ingest_log (ingest): one row per file or database window and outcome."""

VALIDATION_RESULTS = pa.schema([
    ("run_id", S), ("resource", S), ("rule_id", S), ("severity", S), ("description_zh", S), ("description_en", S),
    ("rows_checked", I64), ("failed", I64), ("gx_unexpected", I64), ("gx_success", pa.bool_()),
    ("success", pa.bool_()), ("validated_at", TS),
])
"""meta/validation_results (process): one row per rule per resource per run."""

RECONCILIATION = pa.schema([
    ("run_id", S), ("resource", S), ("rows_read", I64), ("silver", I64), ("quarantined", I64),
    ("duplicates", I64), ("new_rows", I64), ("new_silver", I64), ("new_quarantined", I64),
    ("new_duplicates", I64), ("bronze_version", I64), ("held", I64), ("rejected", I64), ("new_held", I64),
    ("balanced", pa.bool_()), ("published", pa.bool_()), ("note", S), ("checked_at", TS),
])
"""meta/reconciliation (process, batch decisions): rows read = silver + quarantined + duplicates +
held + rejected, for the tables and (``new_*``) for the run."""

CONSUMPTION = pa.schema([("consumer", S), ("table_path", S), ("version", I64), ("run_id", S), ("recorded_at", TS)])
"""meta/consumption (process, credit): the table version each incremental consumer has processed."""

BATCHES = pa.schema([
    ("batch_id", S), ("resource", S), ("source", S), ("rows", I64), ("quarantined", I64),
    ("status", S), ("rules", S), ("limit_rate", pa.float64()), ("reason", S), ("actor", S),
    ("at", TS), ("run_id", S),
])
"""meta/batches (process, ``govlake batches``): held batches and what became of them."""

KPI_HISTORY = pa.schema([
    ("kpi_id", S), ("name_zh", S), ("scope", S), ("period", S), ("value", pa.float64()),
    ("numerator", pa.float64()), ("denominator", pa.float64()), ("provisional", pa.bool_()),
    ("meets_target", pa.bool_()), ("target", pa.float64()), ("as_of", pa.date32()), ("run_id", S),
    ("recorded_at", TS),
])
"""meta/kpi_history (kpis): every KPI value per run."""

_OBJECTION_SUBJECT = [
    pa.field("conflict_id", S), pa.field("resource", S), pa.field("item", S),
    pa.field("entity_key_type", S), pa.field("entity_key", S), pa.field("disputed_value", S),
]
OBJECTIONS_HISTORY = pa.schema([
    pa.field("objection_id", S), pa.field("step", I64), pa.field("action", S), pa.field("previous_state", S),
    pa.field("state", S), pa.field("actor", S), pa.field("at", TS), pa.field("reason", S), *_OBJECTION_SUBJECT,
    pa.field("corrected_value", S), pa.field("run_id", S),
])
"""meta/objections_history (objections): one row per step; ``disputed_value`` is the value objected to."""

OBJECTIONS = pa.schema([
    pa.field("objection_id", S), *_OBJECTION_SUBJECT, pa.field("corrected_value", S), pa.field("state", S),
    pa.field("outcome", S), pa.field("disputed", pa.bool_()), pa.field("raised_by", S), pa.field("raised_at", TS),
    pa.field("updated_by", S), pa.field("updated_at", TS), pa.field("resolved_at", TS),
    pa.field("last_reason", S), pa.field("steps", I64),
])
"""meta/objections (objections): the current state of each objection, rebuilt from its history;
``outcome``: resolved / rejected once decided; ``disputed``: accepted or verified."""

CATALOG_CLAIMS_HISTORY = pa.schema([
    pa.field("resource", S), pa.field("step", I64), pa.field("action", S), pa.field("previous_state", S),
    pa.field("state", S), pa.field("department", S), pa.field("mounted_table", S), pa.field("actor", S),
    pa.field("at", TS), pa.field("reason", S), pa.field("seeded", pa.bool_()), pa.field("run_id", S),
])
"""meta/catalog_claims_history (catalog claims): one row per 认领/挂载 step of a resource; ``seeded``: the
claim a catalog YAML ``claimed_by`` stated before the resource's first recorded step."""

CATALOG_CLAIMS = pa.schema([
    pa.field("resource", S), pa.field("state", S), pa.field("department", S), pa.field("claimed_at", TS),
    pa.field("mounted_table", S), pa.field("mounted_at", TS), pa.field("updated_by", S),
    pa.field("updated_at", TS), pa.field("last_action", S), pa.field("last_reason", S), pa.field("steps", I64),
])
"""meta/catalog_claims (catalog claims): the current 认领/挂载 state of each resource with a recorded step,
rebuilt from its history; ``state``: unclaimed, claimed or mounted."""
_ALERT_SUBJECT = [
    pa.field("kind", S), pa.field("dedup_key", S), pa.field("resource", S), pa.field("department", S),
    pa.field("severity", S), pa.field("message_zh", S), pa.field("message_en", S), pa.field("evidence", S),
]
ALERTS_HISTORY = pa.schema([
    pa.field("alert_id", S), pa.field("step", I64), pa.field("action", S), pa.field("previous_state", S),
    pa.field("state", S), pa.field("actor", S), pa.field("at", TS), pa.field("reason", S), *_ALERT_SUBJECT,
    pa.field("run_id", S),
])
"""meta/alerts_history (alerts): one row per step of an alert (raise, seen, ack, resolve), append-only;
``seen`` rows carry the condition's evidence as found by that check."""

ALERTS = pa.schema([
    pa.field("alert_id", S), *_ALERT_SUBJECT, pa.field("state", S), pa.field("first_seen", TS),
    pa.field("last_seen", TS), pa.field("acknowledged_by", S), pa.field("acknowledged_at", TS),
    pa.field("acknowledged_why", S), pa.field("resolved_by", S), pa.field("resolved_at", TS),
    pa.field("resolved_why", S), pa.field("steps", I64),
])
"""meta/alerts (alerts): the current state of each alert (open, acknowledged, resolved), rebuilt from its
history; subject and evidence are the latest seen."""

ALERT_DELIVERIES = pa.schema([
    pa.field("alert_id", S), pa.field("channel", S), pa.field("target", S), pa.field("ok", pa.bool_()),
    pa.field("error", S), pa.field("at", TS), pa.field("run_id", S),
])
"""meta/alert_deliveries (alerts): one row per attempt to send an alert on a channel; ``target`` names the
host (never a token or a password), ``error`` why it failed."""

DRILLS = pa.schema([
    ("drill_id", S), ("backup_id", S), ("backup_dir", S), ("cut", TS), ("tables", I64), ("rows", I64),
    ("files", I64), ("bytes", I64), ("seconds", pa.float64()), ("result", S), ("problems", S), ("actor", S),
    ("host", S), ("at", TS),
])
"""meta/drills (``govlake drill``): every restore drill and its result."""

RESTORES = pa.schema([
    ("restore_id", S), ("kind", S), ("backup_id", S), ("backup_dir", S), ("cut", TS), ("tables", S),
    ("set_aside", S), ("actor", S), ("host", S), ("at", TS), ("seconds", pa.float64()), ("note", S),
])
"""meta/restores (``govlake restore``): every restore, what it brought back and set aside."""

RETURNS_LOG = pa.schema([
    ("receiver", S), ("receiver_kind", S), ("file", S), ("table_name", S), ("resource", S), ("basis", S),
    ("request_id", S), ("purpose", S), ("rows", I64), ("columns", I64), ("column_names", S),
    ("delivered_at", TS), ("run_id", S),
])
"""meta/returns_log (returns, ``govlake return``): one row per table delivered to a district or department
(回流), rows and columns counted from the file written; ``basis``: 无条件共享, 有条件共享 (with
``request_id`` and ``purpose``), 本部门数据 or 整改清单."""

OPEN_DATA = pa.schema([
    ("run_id", S), ("dataset", S), ("resource", S), ("source_table", S), ("source_version", I64), ("status", S),
    ("rows_in", I64), ("rows_out", I64), ("suppressed", I64), ("k", I64), ("max_suppression", pa.float64()),
    ("quasi_identifiers", S), ("generalization", S), ("reason", S), ("files", S), ("published_at", TS),
])
"""meta/open_data (``govlake open``): one row per open dataset per run: published or withheld, rows in and
out, rows suppressed, k, and the generalization level of each quasi-identifier (JSON objects)."""

# ---- gold logs and governance ------------------------------------------------------------------

WITHDRAWAL_LOG = pa.schema([
    ("output", S), ("record_type", S), ("decision_no", S), ("authority_uscc", S), ("uscc", S), ("reason", S),
    ("reason_zh", S), ("effective_date", pa.date32()), ("as_of", pa.date32()), ("withdrawn_at", TS),
    ("run_id", S),
])
"""gold/withdrawal_log (credit, extract): every record that left a public output, why and when."""

CONFLICTS = pa.schema([
    pa.field("conflict_id", S, nullable=False), pa.field("item", S), pa.field("item_name", S),
    pa.field("entity_key_type", S), pa.field("entity_key", S), pa.field("resource", S),
    pa.field("record_key", S), pa.field("authority_department", S), pa.field("authority_resource", S),
    pa.field("authoritative_value", S), pa.field("department", S), pa.field("other_value", S),
    pa.field("first_seen", TS), pa.field("last_seen", TS), pa.field("resolved_at", TS), pa.field("status", S),
    pa.field("run_id", S),
])
"""gold/conflicts (conflicts): one row per (copy resource, copy record, item) that disagreed with
its authority at some run (一数一源)."""
