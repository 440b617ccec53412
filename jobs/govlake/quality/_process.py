"""Standardize and validate one resource: bronze → silver + quarantine, reconciled.

Steps (all inside one in-memory DuckDB database that spills to var/work):
1. ``checked``: the standardize model (sql/staging) over the bronze Delta table, plus
   ``_failed``, the ids of every row-level rule the row fails.
2. Great Expectations runs the same rules on ``checked``; its counts must equal DuckDB's.
4. Blocking checks; only when they pass are silver (valid rows, one per business key,
   latest submission first) and quarantine (the raw bronze row + failed rule ids) replaced.
5. Reconciliation: rows read = silver + quarantined + duplicates, checked against the
   Delta tables as written; a mismatch fails the run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from govlake import storage
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.identifiers import region_codes
from govlake.ingest import bronze_schema
from govlake.quality._gx import validate_with_gx
from govlake.quality._meta import RECONCILIATION_SCHEMA, VALIDATION_SCHEMA, append, now
from govlake.quality._rules import RuleSet, bind_today, rules_for
from govlake.transform import StagingRenderer, dialect

BATCH_ROWS = 100_000


class QualityError(RuntimeError):
    """A blocking rule failed or the counts do not reconcile; nothing was published."""


@dataclass
class ProcessResult:
    resource: str
    run_id: str
    rows_read: int
    silver: int
    quarantined: int
    duplicates: int
    rule_failures: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    published: bool = True


def _reference_tables(con, catalog) -> None:
    """Code lists the model and rules join: real tables, so GX's cursors see them too."""
    deps = list(catalog.departments.values())
    refs = {"ref_region": pa.table({"code": list(region_codes())}),
            "ref_department": pa.table({"code": [d.code for d in deps], "uscc": [d.uscc for d in deps]})}
    for name, table in refs.items():
        con.register(f"{name}_arrow", table)
        con.execute(f"create or replace table {name} as select * from {name}_arrow")
        con.unregister(f"{name}_arrow")


def _order_by(resource) -> str:
    order = []
    if resource.source.kind == "db":
        order.append(f"{resource.source.watermark} desc nulls last")
    order += ["_received_at desc", "_batch_id desc", "_row_number desc"]
    return ", ".join(order)


def process_resource(code: str, *, settings: Settings, run_id: str,
                     today: dt.date | None = None) -> ProcessResult:
    catalog = get_catalog(settings.catalog_dir)
    resource = catalog.resource(code)
    d = dialect("duckdb")
    ruleset: RuleSet = rules_for(resource, catalog, d, settings.expectations_dir)
    today_sql = d.date_literal(today or settings.today)
    rules = [dataclasses.replace(r, fail_when=bind_today(r.fail_when, today_sql)) for r in ruleset.rules]
    row_rules = [r for r in rules if r.severity == "row"]
    warn_rules = [r for r in rules if r.severity == "warning"]

    bronze_path = storage.table_path(settings, "bronze", resource.slug)
    con = storage.connect(settings)
    try:
        _reference_tables(con, catalog)
        storage.register(con, f"bronze_{resource.slug}", bronze_path, empty_schema=bronze_schema(resource))
        stg_sql = StagingRenderer(catalog, d, settings).render(resource)
        flags = ", ".join(f"case when {r.fail_when} then '{r.id}' end" for r in row_rules) or "null"
        warns = ", ".join(f"case when {r.fail_when} then '{r.id}' end" for r in warn_rules) or "null"
        # One materialized table: the standardized rows with the ids of the rules each fails.
        con.execute(f"create table checked as select *, concat_ws(';', {flags}) as _failed, "
                    f"concat_ws(';', {warns}) as _warned from ({stg_sql}) as stg")
        key = ", ".join(resource.key)
        con.execute(f"""create view ranked as
            select *, row_number() over (partition by {key} order by {_order_by(resource)}) as _rank
            from checked where _failed = ''""")
        rows_read, quarantined = con.execute(
            "select count(*), count(*) filter (where _failed <> '') from checked").fetchone()
        valid, silver_rows = con.execute(
            "select count(*), count(*) filter (where _rank = 1) from ranked").fetchone()
        failures, warnings = _rule_counts(con, "_failed"), _rule_counts(con, "_warned")
        duplicates = valid - silver_rows

        # GX runs the same rules as native expectations on the same table, inside DuckDB.
        gx = {o.rule_id: o for o in validate_with_gx(con, "checked", row_rules + warn_rules,
                                                     suite_name=f"{resource.slug}_{run_id}")}
        validated_at = now()
        results, mismatches = [], []
        for r in row_rules + warn_rules:
            failed = (failures if r.severity == "row" else warnings).get(r.id, 0)
            o = gx[r.id]
            if o.error or o.unexpected_count != failed:
                mismatches.append(f"{r.id}: DuckDB {failed}, GX {o.unexpected_count} {o.error or ''}".strip())
            results.append({
                "run_id": run_id, "resource": code, "rule_id": r.id, "severity": r.severity,
                "description_zh": r.zh, "description_en": r.en, "rows_checked": rows_read,
                "failed": failed, "gx_unexpected": o.unexpected_count, "gx_success": o.success,
                "success": failed == 0, "validated_at": validated_at})
        rate = quarantined / rows_read if rows_read else 0.0
        blocking_ok = rate <= ruleset.max_quarantine_rate
        results.append({
            "run_id": run_id, "resource": code, "rule_id": "blocking.quarantine_rate", "severity": "blocking",
            "description_zh": f"隔离行比例不得超过{ruleset.max_quarantine_rate:.0%}",
            "description_en": f"At most {ruleset.max_quarantine_rate:.0%} of the rows may be quarantined",
            "rows_checked": rows_read, "failed": quarantined, "gx_unexpected": None, "gx_success": None,
            "success": blocking_ok, "validated_at": validated_at})
        append(settings, "validation_results", results, VALIDATION_SCHEMA, run_id)

        problems = []
        if not blocking_ok:
            problems.append(f"blocking rule failed: {quarantined} of {rows_read} rows quarantined "
                            f"({rate:.1%} > {ruleset.max_quarantine_rate:.0%})")
        if mismatches:
            problems.append("Great Expectations and DuckDB disagree: " + "; ".join(mismatches))
        if problems:
            _reconcile(settings, run_id, code, rows_read, silver_rows, quarantined, duplicates,
                       balanced=rows_read == silver_rows + quarantined + duplicates, published=False,
                       note="; ".join(problems))
            raise QualityError(f"{code}: " + "; ".join(problems) + "; silver and quarantine left unchanged")
        _publish(con, settings, resource, run_id)
    finally:
        con.close()

    written_silver = storage.row_count(storage.table_path(settings, "silver", resource.slug))
    written_quarantine = storage.row_count(storage.table_path(settings, "quarantine", resource.slug))
    balanced = (rows_read == written_silver + written_quarantine + duplicates
                and written_silver == silver_rows and written_quarantine == quarantined)
    note = None if balanced else (f"rows read {rows_read} != silver {written_silver} + quarantined "
                                  f"{written_quarantine} + duplicates {duplicates}")
    _reconcile(settings, run_id, code, rows_read, written_silver, written_quarantine, duplicates,
               balanced=balanced, published=True, note=note)
    if note:
        raise QualityError(f"{code}: {note}")
    return ProcessResult(code, run_id, rows_read, written_silver, written_quarantine, duplicates,
                         failures, warnings)


def _reconcile(settings, run_id, code, read, silver, quarantined, duplicates, *, balanced, published, note):
    append(settings, "reconciliation", [{
        "run_id": run_id, "resource": code, "rows_read": read, "silver": silver,
        "quarantined": quarantined, "duplicates": duplicates, "balanced": balanced,
        "published": published, "note": note, "checked_at": now()}], RECONCILIATION_SCHEMA, run_id)


def _rule_counts(con, column: str) -> dict[str, int]:
    """Rows per rule id in ``checked.<column>`` (';'-joined rule ids)."""
    return dict(con.execute(f"""select rule, count(*) from
        (select unnest(string_split({column}, ';')) as rule from checked where {column} <> '')
        group by rule""").fetchall())


def _publish(con, settings: Settings, resource, run_id: str) -> None:
    columns = ", ".join([i.column for i in resource.items]
                    + ["_dept", "_source", "_row_number", "_batch_id", "_received_at"])
    silver = con.sql(f"select {columns} from ranked where _rank = 1").to_arrow_reader(BATCH_ROWS)
    storage.write_table(storage.table_path(settings, "silver", resource.slug), silver,
                        mode="overwrite", run_id=run_id)
    reader = con.sql(f"""
        select b.*, c._failed as _failed_rules, '{run_id}' as _run_id
        from bronze_{resource.slug} as b
        join checked as c on b._batch_id = c._batch_id and b._row_number = c._row_number
        where c._failed <> ''""").to_arrow_reader(BATCH_ROWS)
    storage.write_table(storage.table_path(settings, "quarantine", resource.slug),
                        _split_rules(reader), mode="overwrite", run_id=run_id)


def _split_rules(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """``_failed_rules`` as list<string> (rule ids), batch by batch."""
    idx = reader.schema.get_field_index("_failed_rules")
    schema = reader.schema.set(idx, pa.field("_failed_rules", pa.list_(pa.string())))

    def batches():
        for batch in reader:
            arrays = list(batch.columns)
            arrays[idx] = pc.split_pattern(arrays[idx], ";")
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())
