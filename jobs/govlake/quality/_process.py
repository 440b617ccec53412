"""Standardize and validate one resource: new bronze rows → silver + quarantine, reconciled.

Incremental: each run reads only the bronze data files added since the bronze version it consumed
last (lake/meta/consumption), so its cost follows the day's rows, not the table's size. Steps (all
inside one in-memory DuckDB database that spills to var/work):
1. ``checked``: the standardize model (sql/staging) over the new bronze rows, plus ``_failed``,
   the ids of every row-level rule the row fails.
2. Great Expectations runs the same rules on ``checked``; its counts must equal DuckDB's.
3. The contest: per business key the latest valid row (watermark, then received time, batch, row)
   among the new rows and the one already in silver wins; every other valid row is a duplicate.
4. Blocking checks; only when they pass are the winners merged into silver by key and the failing
   rows (the raw bronze row + failed rule ids + department + submission time) appended to quarantine.
5. Reconciliation, for the run and for the tables: rows read = silver + quarantined + duplicates,
   checked against the Delta tables as written; a mismatch fails the run.

``rebuild=True`` reprocesses all of bronze and replaces silver and quarantine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from govlake import storage
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.consumption import consumed_versions, record_consumed
from govlake.gold import silver_schema
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
    run: Totals | None = None
    """This run's rows: read = new silver + quarantined + duplicates (the other counts are table totals)."""


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


def process_resource(code: str, *, settings: Settings, run_id: str, today: dt.date | None = None,
                     rebuild: bool = False) -> ProcessResult:
    """Standardize and validate the bronze rows added since the last run; merge them into silver.

    Incremental: only bronze data files added since the version this step consumed last are read
    (bronze is append-only), so the cost follows the new rows. ``rebuild`` reprocesses all of bronze
    and replaces silver and quarantine (after a rule or catalog change).
    """
    catalog = get_catalog(settings.catalog_dir)
    resource = catalog.resource(code)
    d = dialect("duckdb")
    ruleset: RuleSet = rules_for(resource, catalog, d, settings.expectations_dir)
    today_sql = d.date_literal(today or settings.today)
    rules = [dataclasses.replace(r, fail_when=bind_today(r.fail_when, today_sql)) for r in ruleset.rules]
    row_rules = [r for r in rules if r.severity == "row"]
    warn_rules = [r for r in rules if r.severity == "warning"]

    bronze_path = storage.table_path(settings, "bronze", resource.slug)
    silver_path = storage.table_path(settings, "silver", resource.slug)
    consumer, bronze_key = f"process:{code}", f"bronze/{resource.slug}"
    since = None if rebuild else consumed_versions(settings, consumer).get(bronze_key)
    version, files = storage.files_since(bronze_path, since)
    before = Totals() if rebuild else _last_totals(settings, code)

    con = storage.connect(settings)
    try:
        _reference_tables(con, catalog)
        storage.register_files(con, f"bronze_{resource.slug}", files, bronze_schema(resource))
        if rebuild or not storage.register(con, "silver_current", silver_path):
            con.register("silver_current", silver_schema(resource).empty_table())
        stg_sql = StagingRenderer(catalog, d, settings).render(resource)
        flags = ", ".join(f"case when {r.fail_when} then '{r.id}' end" for r in row_rules) or "null"
        warns = ", ".join(f"case when {r.fail_when} then '{r.id}' end" for r in warn_rules) or "null"
        # One materialized table: the standardized new rows with the ids of the rules each fails.
        con.execute(f"create table checked as select *, concat_ws(';', {flags}) as _failed, "
                    f"concat_ws(';', {warns}) as _warned from ({stg_sql}) as stg")
        counts = _contest(con, resource)
        failures, warnings = _rule_counts(con, "_failed"), _rule_counts(con, "_warned")
        rows_read, quarantined = counts.rows, counts.quarantined

        problems: list[str] = []
        if rows_read:
            problems = _validate(con, settings, resource, ruleset, row_rules + warn_rules, failures, warnings,
                                 rows_read, quarantined, run_id, today or settings.today)
        run = Totals(rows_read, counts.candidates - counts.matched, quarantined,
                     counts.valid - counts.candidates + counts.matched)
        if problems:
            _reconcile(settings, run_id, code, before, run, before, version, balanced=True, published=False,
                       note="; ".join(problems))
            raise QualityError(f"{code}: " + "; ".join(problems) + "; silver and quarantine left unchanged")
        if rows_read or rebuild:
            _publish(con, settings, resource, run_id, rebuild=rebuild, matched=counts.matched)
    finally:
        con.close()

    after = Totals(storage.row_count(bronze_path, version=version),
                   storage.row_count(silver_path),
                   storage.row_count(storage.table_path(settings, "quarantine", resource.slug)),
                   before.duplicates + run.duplicates)
    expected = before + run
    balanced = (after.rows == after.silver + after.quarantined + after.duplicates
                and (after.silver, after.quarantined) == (expected.silver, expected.quarantined))
    note = None if balanced else (
        f"rows read {after.rows} != silver {after.silver} + quarantined {after.quarantined} + duplicates "
        f"{after.duplicates} (expected silver {expected.silver}, quarantined {expected.quarantined})")
    _reconcile(settings, run_id, code, after, run, before, version, balanced=balanced, published=True, note=note)
    if note:
        raise QualityError(f"{code}: {note}")
    record_consumed(settings, consumer, {bronze_key: version}, run_id)
    return ProcessResult(code, run_id, after.rows, after.silver, after.quarantined, after.duplicates,
                         failures, warnings, run=run)


@dataclass(frozen=True)
class Totals:
    """Rows read = silver + quarantined + duplicates: for one run, or for the whole table."""

    rows: int = 0
    silver: int = 0
    quarantined: int = 0
    duplicates: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))


@dataclass(frozen=True)
class _Contest:
    rows: int
    quarantined: int
    valid: int
    candidates: int
    """Valid new rows that are the latest of their key within the new rows."""
    matched: int
    """Candidates whose key is in silver already: one of the two rows is dropped as a duplicate."""


def _contest(con, resource) -> _Contest:
    """Decide which new rows reach silver: view ``upserts`` (new rows that are the latest of their key,
    among the new rows and the row already in silver).

    Only keys and ordering columns are materialized (``candidates``, ``contest``); the winning rows
    are picked from ``checked`` by (batch, row), so no second copy of the wide rows is made.
    """
    key = ", ".join(resource.key)
    order = _order_by(resource)
    order_cols = list(dict.fromkeys(c.split()[0] for c in order.split(", ")))  # ends with _batch_id, _row_number
    narrow = ", ".join(dict.fromkeys([*resource.key, *order_cols]))
    con.execute(f"""create temp table candidates as select {narrow} from checked where _failed = ''
        qualify row_number() over (partition by {key} order by {order}) = 1""")
    con.execute(f"""create temp table contest as
        select {narrow}, true as _new from candidates
        union all
        select {', '.join('s.' + c for c in narrow.split(', '))}, false as _new
        from silver_current as s semi join candidates as c using ({key})""")
    con.execute(f"""create temp view upserts as
        select * from checked semi join (
            select _batch_id, _row_number from (
                select *, row_number() over (partition by {key} order by {order}) as _w from contest
            ) as ranked_contest where _w = 1 and _new
        ) as w using (_batch_id, _row_number)""")
    rows, quarantined = con.execute(
        "select count(*), count(*) filter (where _failed <> '') from checked").fetchone()
    candidates = con.execute("select count(*) from candidates").fetchone()[0]
    matched = con.execute("select count(*) from contest where not _new").fetchone()[0]
    return _Contest(rows, quarantined, rows - quarantined, candidates, matched)


def _validate(con, settings, resource, ruleset, rules, failures, warnings, rows_read, quarantined,
              run_id, today: dt.date) -> list[str]:
    """GX runs the same rules as native expectations on ``checked``; record the results.

    Returns the problems that block publishing (quarantine rate, GX/DuckDB disagreement).
    """
    code = resource.code
    gx = {o.rule_id: o for o in validate_with_gx(con, "checked", rules, suite_name=f"{resource.slug}_{run_id}",
                                                 today=today, docs_dir=gx_docs_dir(settings))}
    validated_at = now()
    results, mismatches = [], []
    for r in rules:
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
    return problems


def gx_docs_dir(settings: Settings) -> Path:
    """Where Great Expectations renders its Data Docs: one page per validation run."""
    return settings.reports / "gx"


def gx_validation_page(settings: Settings, slug: str, run_id: str) -> Path | None:
    """The Data Docs page of resource ``slug``'s validation in run ``run_id``, if rendered."""
    return next(iter(sorted((gx_docs_dir(settings) / "validations" / f"{slug}_{run_id}").rglob("*.html"))), None)


def _last_totals(settings: Settings, code: str) -> Totals:
    """The table totals the last published run of ``code`` recorded (zeros before the first)."""
    path = storage.table_path(settings, "meta", "reconciliation")
    if storage.open_table(path) is None:
        return Totals()
    con = storage.connect(settings)
    try:
        storage.register(con, "reconciliation", path)
        row = con.execute("""select rows_read, silver, quarantined, duplicates from reconciliation
                             where resource = ? and published order by checked_at desc limit 1""",
                          [code]).fetchone()
    finally:
        con.close()
    return Totals(*row) if row else Totals()


def _reconcile(settings, run_id, code, totals: Totals, run: Totals, before: Totals, version, *,
               balanced: bool, published: bool, note: str | None) -> None:
    append(settings, "reconciliation", [{
        "run_id": run_id, "resource": code, "rows_read": totals.rows, "silver": totals.silver,
        "quarantined": totals.quarantined, "duplicates": totals.duplicates,
        "new_rows": run.rows, "new_silver": run.silver, "new_quarantined": run.quarantined,
        "new_duplicates": run.duplicates, "bronze_version": version, "balanced": balanced,
        "published": published, "note": note, "checked_at": now()}], RECONCILIATION_SCHEMA, run_id)


def _rule_counts(con, column: str) -> dict[str, int]:
    """Rows per rule id in ``checked.<column>`` (';'-joined rule ids)."""
    return dict(con.execute(f"""select rule, count(*) from
        (select unnest(string_split({column}, ';')) as rule from checked where {column} <> '')
        group by rule""").fetchall())


def _publish(con, settings: Settings, resource, run_id: str, *, rebuild: bool, matched: int) -> None:
    """Merge ``upserts`` into silver by key and append the failing rows to quarantine
    (both replaced on a rebuild). When no new row's key is in silver yet (``matched`` 0) the rows
    are appended: one commit, without delta-rs reading the whole table to look for matches."""
    columns = ", ".join([i.column for i in resource.items]
                        + ["_dept", "_source", "_row_number", "_batch_id", "_received_at"])
    silver_path = storage.table_path(settings, "silver", resource.slug)
    new_rows = con.execute("select count(*) from upserts").fetchone()[0]
    exists = storage.open_table(silver_path) is not None
    if rebuild or not exists or (new_rows and not matched):
        # nothing to merge with: stream the rows instead of holding them in memory
        silver = con.sql(f"select {columns} from upserts").to_arrow_reader(BATCH_ROWS)
        storage.write_table(silver_path, silver, mode="overwrite" if rebuild else "append", run_id=run_id)
    elif new_rows:
        storage.merge_table(silver_path, con.sql(f"select {columns} from upserts").to_arrow_table(),
                            key=resource.key, run_id=run_id)
    submitted = "c.submitted_at" if any(i.column == "submitted_at" for i in resource.items) else "null"
    reader = con.sql(f"""
        select b.*, c._failed as _failed_rules, '{run_id}' as _run_id, c._dept,
               coalesce(cast({submitted} as timestamp), cast(b._received_at at time zone 'Asia/Shanghai' as timestamp))
                   as _submitted_at
        from bronze_{resource.slug} as b
        join checked as c on b._batch_id = c._batch_id and b._row_number = c._row_number
        where c._failed <> ''""").to_arrow_reader(BATCH_ROWS)
    quarantine_path = storage.table_path(settings, "quarantine", resource.slug)
    quarantine = _split_rules(reader)
    if rebuild:
        storage.write_table(quarantine_path, quarantine, mode="overwrite", run_id=run_id)
    else:
        storage.write_table(quarantine_path, quarantine, mode="append", run_id=run_id)


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
