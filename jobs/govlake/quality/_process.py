"""Standardize and validate one resource: new bronze rows → silver + quarantine, reconciled.

Incremental: each run reads only the bronze data files added since the bronze version it consumed
last (lake/meta/consumption), so its cost follows the day's rows, not the table's size. Steps (all
inside one in-memory DuckDB database that spills to var/work):
1. The input: the new bronze rows, less the batches held or rejected, plus the batches an operator
   released since (govlake.quality._batches).
2. ``checked``: the standardize model (sql/staging) over the input, plus ``_failed``, the ids of
   every row-level rule the row fails.
3. Blocking, per delivered batch (a file, a database window): a batch whose share of quarantined
   rows is over the resource's limit is held — left out of this run, recorded with its file and the
   rules that blocked it — and every other batch goes on.
4. Great Expectations runs the same rules on the rows the pass flagged and a sample of the others, on a
   thread of its own while the engine goes on with 5; its counts must equal DuckDB's before anything is
   published.
5. The contest: per business key the latest valid row (watermark, then received time, batch, row)
   among the new rows and the one already in silver wins; every other valid row is a duplicate. A
   failing row whose content (govlake.ingest.row_hash_sql) is in quarantine already — a re-sent
   file — is a duplicate too, so it is quarantined once.
6. The winners are merged into silver by key and the failing rows (the raw bronze row + failed rule
   ids + department + submission time + content hash) appended to quarantine.
7. Reconciliation, for the run and for the tables: rows read = silver + quarantined + duplicates +
   held + rejected, checked against the Delta tables as written; a mismatch fails the run.

The step is one intent of govlake.steps (lock ``process:<resource>``): its inputs are read at the
versions pinned when it started and every output commit is stamped, so a run killed between two
commits is finished by the next one, exactly. ``rebuild=True`` reprocesses all of bronze and
replaces silver and quarantine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from govlake import locks, steps, storage
from govlake.catalog import get_catalog
from govlake.compute import Compute, as_compute, open_compute, runs
from govlake.config import Settings
from govlake.consumption import SCHEMA as CONSUMPTION_SCHEMA
from govlake.consumption import consumed_versions, consumption_rows
from govlake.contracts import bronze_schema, quarantine_schema, row_hash_sql, silver_schema
from govlake.engine import get_engine
from govlake.identifiers import is_valid_uscc, org_code_check_char, region_codes
from govlake.quality import _batches
from govlake.quality._checks import valid_uscc, valid_uscc_org_code
from govlake.quality._gx import LINEAGE, import_meanwhile, validate_meanwhile
from govlake.quality._meta import RECONCILIATION_SCHEMA, VALIDATION_SCHEMA, now
from govlake.quality._rules import RuleSet, bind_today, rules_for
from govlake.transform import ModelRunner, StagingRenderer, referenced_columns


class QualityError(RuntimeError):
    """The counts do not reconcile, or GX and DuckDB disagree; the message says what was published."""


class ValidationMismatch(QualityError, steps.StepAbandoned):
    """Great Expectations and DuckDB disagree on a rule's count: nothing of the run was published."""


@dataclass(frozen=True)
class HeldBatch:
    """A batch this run held: over its blocking limit, left out of silver and quarantine."""

    batch_id: str
    source: str
    rows: int
    quarantined: int
    rules: list[dict]
    limit_rate: float

    def describe(self) -> str:
        rules = ", ".join(f"{r['rule']} {r['rows']} rows (first: row {r['first_row']})" for r in self.rules[:3])
        return (f"batch {self.batch_id} ({self.source}) held: {self.quarantined} of {self.rows} rows quarantined "
                f"({self.quarantined / self.rows:.0%} > {self.limit_rate:.0%}); {rules}")


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
    """This run's rows: read = new silver + quarantined + duplicates + held (the other counts are table totals)."""
    held: int = 0
    rejected: int = 0
    held_batches: list[HeldBatch] = field(default_factory=list)
    """Batches this run held."""


@dataclass(frozen=True)
class Totals:
    """Rows read = silver + quarantined + duplicates + held + rejected: for one run, or the whole table."""

    rows: int = 0
    silver: int = 0
    quarantined: int = 0
    duplicates: int = 0
    held: int = 0
    rejected: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    @property
    def balanced(self) -> bool:
        return self.rows == self.silver + self.quarantined + self.duplicates + self.held + self.rejected


def _reference_tables(con, catalog) -> None:
    """Code lists the model and rules join: shared tables, so GX's cursors see them too. ``ref_uscc_valid`` and
    ``ref_uscc_org_valid``: the departments' 统一社会信用代码 that pass the USCC check (and the GB 11714 check of
    positions 9-17), checked here once, in Python (govlake.identifiers), for the rules of every ``uscc`` item to
    look up before computing a check character (:func:`govlake.quality._checks.valid_uscc`)."""
    compute = as_compute(con)
    deps = list(catalog.departments.values())
    valid = sorted({d.uscc for d in deps if is_valid_uscc(d.uscc)})
    org_valid = [c for c in valid if org_code_check_char(c[8:16]) == c[16]]
    refs = {"ref_region": pa.table({"code": list(region_codes())}),
            "ref_department": pa.table({"code": [d.code for d in deps], "uscc": [d.uscc for d in deps]}),
            "ref_uscc_valid": pa.table({"code": pa.array(valid, pa.string())}),
            "ref_uscc_org_valid": pa.table({"code": pa.array(org_valid, pa.string())})}
    for name, table in refs.items():
        compute.register_arrow(name, table, shared=True)


def _run_codes(con: Compute, runner: ModelRunner, staging: StagingRenderer, resource, d) -> None:
    """Add to ``ref_uscc_valid`` and ``ref_uscc_org_valid`` the 统一社会信用代码 of this run's ``uscc`` items (their
    cleaned text, ``<item>__in`` of the standardize model) that pass the USCC check and the GB 11714 check, each
    distinct code checked once: the rules look a code up in them before computing its check characters
    (:func:`govlake.quality._checks.valid_uscc`). A subject's code repeats on each of its decisions — 9,906
    distinct codes in the benchmark's 10 million records — and the two checks on every row cost more than reading
    the column and checking each code once. A code passes the lookup only when the very check of the rule,
    run here on the code, passes it, so every row gets the rule's answer.

    The distinct raw values of each column are standardized, not every row: one row per value, with bronze's
    other columns null (``run_uscc_raw``), through the standardize model (10 million records: 2.25 s when
    every row's code was cleaned for the distinct)."""
    items = [i.column for i in resource.items if i.type == "uscc"]
    if not items:
        return
    schema = bronze_schema(resource)
    sql_types = {pa.string(): "varchar", pa.int64(): "bigint", pa.timestamp("us", tz="UTC"): "timestamptz"}

    def one_column(column: str) -> str:
        values = ", ".join(f.name if f.name == column else f"cast(null as {sql_types[f.type]}) as {f.name}"
                           for f in schema)
        return f"select {values} from (select distinct {column} from bronze_{resource.slug}) as v"

    con.create("run_uscc_raw", " union all ".join(one_column(c) for c in items))
    runner.run(con, "staging/standardize", into="run_uscc_stg", kind="view",
               **staging.context(resource, input="run_uscc_raw"))
    union = " union all ".join(f"select {c}__in as code from run_uscc_stg" for c in items)
    con.create("run_uscc", f"select distinct code from ({union}) as c")
    passes = {"ref_uscc_valid": valid_uscc(column="code", d=d),
              "ref_uscc_org_valid": valid_uscc_org_code(column="code", d=d)}
    for table, fails in passes.items():
        con.create(f"{table}_run", f"""select code from {table} union
            select code from run_uscc where code is not null and not coalesce({fails}, false)""")
        con.create(table, f"select code from {table}_run", shared=True)
        con.drop(f"{table}_run")
    con.drop("run_uscc", "run_uscc_stg", "run_uscc_raw")


def _order_by(resource) -> str:
    order = []
    if resource.source.kind == "db":
        order.append(f"{resource.source.watermark} desc nulls last")
    order += ["_received_at desc", "_batch_id desc", "_row_number desc"]
    return ", ".join(order)


def _tables(resource) -> dict[str, str]:
    """The lake-relative tables the step reads and writes."""
    return {"bronze": f"bronze/{resource.slug}", "silver": f"silver/{resource.slug}",
            "quarantine": f"quarantine/{resource.slug}", "batches": _batches.TABLE}


def process_resource(code: str, *, settings: Settings, run_id: str, today: dt.date | None = None,
                     rebuild: bool = False) -> ProcessResult:
    """Standardize and validate the bronze rows added since the last run; merge them into silver.

    Incremental: only bronze data files added since the version this step consumed last are read
    (bronze is append-only), so the cost follows the new rows. ``rebuild`` reprocesses all of bronze
    and replaces silver and quarantine (after a rule or catalog change). Runs as one intent of
    govlake.steps under lock ``process:<code>`` (an interrupted earlier run is finished first).
    """
    catalog = get_catalog(settings.catalog_dir)
    resource = catalog.resource(code)
    consumer = f"process:{code}"
    tables = _tables(resource)

    def params() -> dict:
        since = None if rebuild else consumed_versions(settings, consumer).get(tables["bronze"])
        before = Totals() if rebuild else _last_totals(settings, code)
        return {"since": since, "as_of": (today or settings.today).isoformat(), "rebuild": rebuild,
                "before": dataclasses.asdict(before)}

    return steps.run(settings, consumer, lock=consumer, run_id=run_id, params=params,
                     reads=lambda _: tables.values(),
                     body=lambda intent: _process(intent, catalog, resource, tables))


def _process(intent: steps.Intent, catalog, resource, tables: dict[str, str]) -> ProcessResult:
    settings, run_id, code = intent.settings, intent.run_id, resource.code
    p = intent.params
    rebuild, since, before = p["rebuild"], p["since"], Totals(**p["before"])
    as_of = dt.date.fromisoformat(p["as_of"])
    engine = get_engine(settings)
    d = engine.dialect
    ruleset: RuleSet = rules_for(resource, catalog, d, settings.expectations_dir)
    today_sql = d.date_literal(as_of)
    rules = [dataclasses.replace(r, fail_when=bind_today(r.fail_when, today_sql)) for r in ruleset.rules]
    row_rules = [r for r in rules if r.severity == "row"]
    warn_rules = [r for r in rules if r.severity == "warning"]
    version = intent.version(tables["bronze"])

    con = open_compute(engine)
    gx_import = gx = None
    try:
        _reference_tables(con, catalog)
        anything = _inputs(con, intent, resource, tables, since=since)
        silver = not rebuild and intent.register(con, "silver_current", tables["silver"])
        if not silver:
            con.register_arrow("silver_current", silver_schema(resource).empty_table())
        runner = ModelRunner(settings.sql_dir)
        staging = StagingRenderer(catalog, d, settings)
        runner.run(con, "staging/standardize", into=f"stg_{resource.slug}", kind="view",
                   **staging.context(resource))
        _run_codes(con, runner, staging, resource, d)
        gx_import = import_meanwhile() if anything else None
        # One materialized table: the standardized new rows with the ids of the rules each fails.
        runner.run(con, "silver/checked", kind="file", temp=False, **checked_context(resource, rules))
        held = _hold(con, resource, ruleset.max_quarantine_rate)
        checked = con.count("checked")
        _flagged(con, runner, resource, checked)
        if checked:  # Great Expectations checks the pass on a thread of its own while the engine decides the contest
            gx = _start_gx(con, intent, resource, row_rules + warn_rules, as_of, runner=runner, staging=staging,
                           after=gx_import)
        _quarantine_duplicates(con, runner, intent, resource, tables, rebuild=rebuild)
        counts = _contest(con, runner, resource, silver=silver)
        failures, warnings = _rule_counts(con, "_failed"), _rule_counts(con, "_warned")
        rows_read = counts.rows

        mismatches: list[str] = []
        if rows_read or held:
            outcomes = {}
            if gx:
                outcomes = {o.rule_id: o for o in gx.result()}
                con.drop(GX_ROWS)
            mismatches = _validate(intent, resource, ruleset, row_rules + warn_rules, failures, warnings,
                                   rows_read, held, outcomes)
        run = Totals(rows_read + sum(h.rows for h in held), counts.candidates - counts.matched,
                     counts.quarantined, counts.valid - counts.candidates + counts.matched + counts.resent,
                     sum(h.rows for h in held))
        if mismatches:
            _reconcile(intent, code, before, run, version, balanced=True, published=False,
                       note="; ".join(mismatches))
            engine_name = {"duckdb": "DuckDB", "spark": "Spark"}[engine.name]
            raise ValidationMismatch(f"{code}: Great Expectations and {engine_name} disagree: " + "; ".join(mismatches)
                                     + "; nothing of this run was published (a defect: please report it)")
        _record_batches(con, intent, resource, held)
        if rows_read or rebuild:
            _publish(con, intent, resource, tables, rebuild=rebuild, counts=counts)
    finally:
        if gx:  # GX's cursor ends before the connection does
            futures.wait([gx])
        if gx_import:  # a failed step does not leave the interpreter to exit in the middle of an import
            gx_import.join()
        con.close()

    held_rows, rejected_rows = _batches.totals(settings, code)
    after = Totals(storage.row_count(intent.path(tables["bronze"]), version=version) if version is not None else 0,
                   storage.row_count(intent.path(tables["silver"])),
                   storage.row_count(intent.path(tables["quarantine"])),
                   before.duplicates + run.duplicates, held_rows, rejected_rows)
    expected = before + run
    balanced = after.balanced and (after.silver, after.quarantined) == (expected.silver, expected.quarantined)
    note = None if balanced else (
        f"rows read {after.rows} != silver {after.silver} + quarantined {after.quarantined} + duplicates "
        f"{after.duplicates} + held {after.held} + rejected {after.rejected} (expected silver {expected.silver}, "
        f"quarantined {expected.quarantined})")
    if held and not note:
        note = "; ".join(h.describe() for h in held)
    _reconcile(intent, code, after, run, version, balanced=balanced, published=True, note=note)
    if not balanced:
        raise QualityError(f"{code}: {note}")
    intent.append_rows("meta/consumption", consumption_rows(intent.consumer, {tables["bronze"]: version}, run_id),
                       CONSUMPTION_SCHEMA)
    return ProcessResult(code, run_id, after.rows, after.silver, after.quarantined, after.duplicates,
                         failures, warnings, run=run, held=after.held, rejected=after.rejected, held_batches=held)


def _inputs(con: Compute, intent: steps.Intent, resource, tables: dict[str, str], *, since: int | None) -> bool:
    """View ``bronze_<slug>``: the rows this run reads — the new bronze rows less the batches held or
    rejected, plus the batches released since they were held (read again from bronze by batch id). False
    when it is sure to be empty (no new bronze file, no released batch)."""
    schema = bronze_schema(resource)
    bronze = tables["bronze"]
    files = intent.files_since(bronze, since)
    con.register_files("bronze_new", files, schema)
    _batches.register_states(con, intent, intent.settings, resource.code)
    released = [r[0] for r in con.rows(f"select batch_id from batch_state where status = '{_batches.RELEASED}'")]
    # held and rejected batches stay out; released ones are read by batch id below (on a rebuild the
    # new files hold them too, so they are left out here to be read once)
    excluded = ", ".join(f"'{s}'" for s in (*_batches.EXCLUDED, _batches.RELEASED))
    sql = f"""select * from bronze_new
        where _batch_id not in (select batch_id from batch_state where status in ({excluded}))"""
    if released:
        intent.register(con, "bronze_all", bronze, empty_schema=schema)
        sql += """ union all by name
            select * from bronze_all where _batch_id in (select batch_id from batch_state where status = 'released')"""
    con.create(f"bronze_{resource.slug}", sql, kind="view")
    return bool(files or released)


def _hold(con: Compute, resource, limit: float) -> list[HeldBatch]:
    """Hold every batch over the blocking limit: its rows leave ``checked``. Batches an operator
    released (or that were published that way before) are not judged again."""
    rows = con.rows(f"""
        with judged as (
            select _batch_id, any_value(_source) as _source, count(*) as n,
                   count(*) filter (where _failed <> '') as q
            from checked
            where _batch_id not in (select batch_id from batch_state
                                    where status in ('{_batches.RELEASED}', '{_batches.PUBLISHED}'))
            group by _batch_id
        )
        select _batch_id, _source, n, q from judged where q > n * {float(limit)!r} order by _batch_id""")
    held = []
    for batch_id, source, n, q in rows:
        rules = [{"rule": rule, "rows": count, "first_row": first} for rule, count, first in con.rows("""
            select rule, count(*), min(_row_number) from (
                select unnest(string_split(_failed, ';')) as rule, _row_number from checked
                where _batch_id = ? and _failed <> '')
            group by rule order by count(*) desc, rule""", [batch_id])]
        held.append(HeldBatch(batch_id, source, n, q, rules, limit))
    if held:
        con.delete_where("checked", "_batch_id", [h.batch_id for h in held])
    return held


def _flags(rules) -> str:
    """The rule-id expressions the checked model joins: each rule's id when its condition holds."""
    return ", ".join(f"case when {r.fail_when} then '{r.id}' end" for r in rules) or "null"


def row_columns(resource) -> list[str]:
    """The standardized row as silver keeps it: the typed items, the department, the lineage."""
    return [i.column for i in resource.items] + ["_dept", "_source", "_row_number", "_batch_id", "_received_at"]


def checked_context(resource, rules) -> dict:
    """What model sql/silver/checked is rendered with (also by infra/lint_models.py and the parity tests):
    the columns it keeps and the flags of the row rules and the warnings among ``rules`` (bound to a date)."""
    return {"resource": resource, "columns": row_columns(resource),
            "flags": _flags([r for r in rules if r.severity == "row"]),
            "warnings": _flags([r for r in rules if r.severity == "warning"])}


def _quarantine_duplicates(con: Compute, runner: ModelRunner, intent: steps.Intent, resource, tables: dict[str, str], *,
                           rebuild: bool) -> None:
    """Table ``resent`` (batch, row): failing rows whose content is quarantined already (in
    quarantine, or earlier in this run): a re-sent row is quarantined once. Also ``failing_hash``, from
    ``flagged`` (:func:`_flagged`)."""
    runner.run(con, "silver/failing_hash", kind="file", **failing_context(resource))
    known = "select null::varchar as _row_hash where false"
    if not rebuild and intent.register(con, "quarantine_before", tables["quarantine"]):
        has_hash = "_row_hash" in con.columns("quarantine_before")
        hashed = row_hash_sql(resource)
        # rows quarantined before the hash was kept are hashed here, apart: the filter on the hash skips the
        # row groups without such rows by their statistics, so the others' columns are not read (10 million
        # records: 0.27 → 0.14 s; a coalesce reads every column of every row)
        known = (f"select _row_hash from quarantine_before where _row_hash is not null union all "
                 f"select {hashed} as _row_hash from quarantine_before where _row_hash is null" if has_hash
                 else f"select {hashed} as _row_hash from quarantine_before")
    con.create("quarantine_hashes", known, kind="view")
    runner.run(con, "silver/resent", resource=resource)


def failing_context(resource) -> dict:
    """What model sql/silver/failing_hash is rendered with (also by infra/lint_models.py)."""
    return {"resource": resource, "columns": bronze_schema(resource).names, "row_hash": row_hash_sql(resource, "b")}


def _flagged(con: Compute, runner: ModelRunner, resource, checked: int) -> None:
    """``flagged``: the bronze rows of ``checked`` (``checked`` of them, less the held batches) a rule flagged and a
    sample of the others (:data:`GX_SAMPLE`), as they arrived: what the quarantine, the failing rows' hashes and Great
    Expectations read, so that bronze is read once after the pass instead of once by each (at 10 million
    rows, 15% of them flagged, each read of bronze's 40 columns took ~10 s)."""
    every = max(1, -(-checked // GX_SAMPLE))
    parts = _flagged_parts(con, every) if con.join_rows is not None and checked > con.join_rows else []
    if len(parts) < 2:
        runner.run(con, "silver/flagged", kind="file", **flagged_context(resource, every))
        return
    # the flagged rows outgrow DuckDB's memory as the join's build side: joined a range of rows of a batch at a time
    # (bronze's row groups outside the range skipped by their statistics: bronze is written in row order; checked's
    # row groups mix stretches of rows, as DuckDB's threads wrote them, so its few columns read are scanned per part)
    for i, part in enumerate(parts):
        runner.run(con, "silver/flagged", into=f"flagged_{i}", kind="file", **flagged_context(resource, every, part))
    con.create("flagged", " union all ".join(f"select * from flagged_{i}" for i in range(len(parts))), kind="view")


FLAGGED_BUCKET_ROWS = 65_536
"""Rows of a batch counted together when :func:`_flagged_parts` cuts it into parts."""


def _flagged_parts(con: Compute, every: int) -> list[str]:
    """Predicates on ``_batch_id`` and ``_row_number``, each holding at most ``con.join_rows`` of the rows
    model silver/flagged keeps (ranges of :data:`FLAGGED_BUCKET_ROWS` rows of one batch, a range at least), or one
    part (``[]``) when they all fit."""
    counts = con.rows(f"""select _batch_id, _row_number // {FLAGGED_BUCKET_ROWS} as bucket, count(*) from checked
        where {flagged_when(every)} group by all order by all""")
    if sum(n for _, _, n in counts) <= con.join_rows:
        return []
    return [f"(_batch_id = {storage.sql_literal(batch)} and _row_number between {first * FLAGGED_BUCKET_ROWS} "
            f"and {(last + 1) * FLAGGED_BUCKET_ROWS - 1})" for batch, first, last in runs(counts, con.join_rows)]


def flagged_context(resource, every: int, part: str | None = None) -> dict:
    """What model sql/silver/flagged is rendered with (also by infra/lint_models.py)."""
    return {"resource": resource, "every": every, "flagged_when": flagged_when(every), "part": part}


def flagged_when(every: int) -> str:
    """The rows of ``checked`` model silver/flagged keeps: flagged by a rule (failed or warned), or in Great
    Expectations' sample (a row number that is a multiple of ``every``)."""
    return f"_failed <> '' or _warned <> '' or _row_number % {every} = 0"


@dataclass(frozen=True)
class _Contest:
    rows: int
    quarantined: int
    """Failing rows quarantined now (the re-sent ones are not)."""
    resent: int
    """Failing rows whose content was quarantined already: duplicates."""
    valid: int
    candidates: int
    """Valid new rows that are the latest of their key within the new rows."""
    matched: int
    """Candidates whose key is in silver already: one of the two rows is dropped as a duplicate."""
    winners: int
    """Candidates that beat the row in silver (or have none): the rows merged into silver."""


def contest_context(resource) -> dict:
    """What models sql/silver/candidates, contest and upserts are rendered with (also by infra/lint_models.py);
    ``silver``: whether silver may hold a candidate's key (:func:`_silver_may_hold`; the contest reads silver's
    keys only then)."""
    order = _order_by(resource)
    order_cols = list(dict.fromkeys(c.split()[0] for c in order.split(", ")))  # ends with _batch_id, _row_number
    return {"resource": resource, "order": order, "narrow": list(dict.fromkeys([*resource.key, *order_cols])),
            "silver": True}


def _silver_may_hold(con: Compute, resource) -> bool:
    """Whether ``silver_current`` may hold the key of one of the ``candidates``: False only when silver keeps
    :data:`storage.KEY_HASH` on every row (the step writes it with each row since 2026-12-07) and none of them is
    the hash of a candidate's key. One 8-byte column read instead of the key's strings: at 10 million records
    the contest's semi-join of silver's keys took 0.5 s of a 10,000-record day whose keys are all new. A hash
    shared by two keys only sends the contest to the keys themselves."""
    if storage.KEY_HASH not in con.columns("silver_current"):
        return True  # a table written before the column: its keys are compared
    h = storage.KEY_HASH
    hashes = f"select distinct {storage.key_hash_sql(resource.key)} as {h} from candidates"
    unhashed, held = con.one(f"""select count(*) filter (where s.{h} is null), count(c.{h})
        from silver_current as s
        left join ({hashes}) as c on s.{h} = c.{h}""")
    return bool(unhashed or held)


def _contest(con: Compute, runner: ModelRunner, resource, *, silver: bool) -> _Contest:
    """Decide which new rows reach silver: view ``upserts`` (new rows that are the latest of their key,
    among the new rows and the row already in silver; models sql/silver/repeated_keys, candidates, contest,
    dropped, upserts).

    Only the rows that can lose are ranked by a window: those of a key the run holds more than once
    (``repeated_keys``) and the new rows whose key silver holds; ranking every valid row, twice, took 13.4 s of
    a 10-million-record step (4.2 s now). Only keys and ordering columns are materialized (``candidates``,
    ``contest``, ``dropped``); the winning rows are the valid rows of ``checked`` less the dropped ones (by batch
    and row), so no second copy of the wide rows is made, and the join holds the dropped rows — a run's
    duplicates, usually few — not the winners: holding 8.2 million winners of a 10-million-record run, DuckDB
    spilled the wide rows it joined to them and wrote silver in 64 s.

    ``silver``: whether the step reads a silver table (not on a first run or a rebuild). When silver cannot hold a
    candidate's key, ``contest`` is a view of ``candidates``, whose key test stands for its own: at 10 million records
    a copy of the candidates and its key test took 0.9 + 1.25 s of a first run.
    """
    context = contest_context(resource)
    # candidates and contest hold a key per valid row (8.2 million at 10 million records): as DuckDB tables they
    # filled its buffer pool and spilled (made and key-tested in 2.4 + 1.7 and 2.1 + 1.9 s), as scratch files,
    # read back by column, 1.2 + 0.8 and 0.6 + 0.8 s
    for name, kind in (("repeated_keys", "table"), ("candidates", "file")):
        runner.run(con, f"silver/{name}", kind=kind, **context)
    context["silver"] = silver and _silver_may_hold(con, resource)
    for name, kind in (("contest", "file" if context["silver"] else "view"), ("dropped", "table")):
        runner.run(con, f"silver/{name}", kind=kind, **context)
    runner.run(con, "silver/upserts", kind="view", **context)
    rows, failing = con.one("select count(*), count(*) filter (where _failed <> '') from checked")
    resent = con.count("resent")
    candidates = con.count("candidates")
    matched = con.one("select count(*) from contest where not _new")[0]
    dropped = con.count("dropped")
    con.drop("repeated_keys", "candidates", "contest")  # upserts reads checked and dropped only
    return _Contest(rows, failing - resent, resent, rows - failing, candidates, matched, rows - failing - dropped)


GX_ROWS = "flagged_rows_and_sample"
"""The table Great Expectations validates (:func:`_gx_rows`)."""
GX_SAMPLE = 10_000
"""Great Expectations also checks one unflagged row in every ``rows / GX_SAMPLE`` of a batch (all of them below
that): by row number, the same rows on either engine."""


def _gx_rows(con: Compute, runner: ModelRunner, staging: StagingRenderer, resource, rules) -> None:
    """Table :data:`GX_ROWS`: the rows of ``flagged`` — those a rule flagged (failed or warned) and a sample of
    the others, every k-th row of a batch (k = rows / :data:`GX_SAMPLE`, so at most that many) —
    standardized again by the same model, with every column the rules read (``checked`` keeps only the
    typed row).

    The one pass of the checked model has evaluated every rule on every row; GX checks that pass rather than
    repeat it. A rule's failing rows are among the flagged ones, so on this table GX counts the same failures
    as on all of the rows when the flags are right; a flag on a row GX passes shows as a GX count below the
    engine's, a failing row the flags missed (if in the sample) as a GX count above it.

    A ``file`` relation (govlake.compute), shared with GX's cursor: as a DuckDB table its 1.5 million rows of 70
    columns at 10 million records sat in DuckDB's buffer pool (spilled beyond its limit), and GX's suite scanned
    whole rows (4.0 s; 1.8 s on the file, read by column; the step's peak 1,568 → 1,459 MiB).

    Only the columns the rules read are kept (and the lineage GX reports failing rows by), about half of the model's
    for the penalties: at 10 million records the file was written in 4.6 s with every column, 3.5 s now.
    """
    everything = f"{GX_ROWS}_standardized"
    runner.run(con, "staging/standardize", into=everything, kind="view", **staging.context(resource, input="flagged"))
    read = set(LINEAGE).union(*(referenced_columns(f"select {r.fail_when}") for r in rules))
    columns = con.columns(everything) if "*" in read else [c for c in con.columns(everything) if c in read]
    con.create(GX_ROWS, f"select {', '.join(columns)} from {everything}", kind="file", shared=True)
    con.drop(everything)


def _start_gx(con: Compute, intent: steps.Intent, resource, rules, today: dt.date, *, runner: ModelRunner,
              staging: StagingRenderer, after) -> futures.Future:
    """GX runs the same rules as native expectations on the rows the checked model flagged and a sample of the
    others (:func:`_gx_rows`), on a thread of its own (govlake.quality._gx.validate_meanwhile, after ``after``, GX's
    import): the future of its outcomes."""
    _gx_rows(con, runner, staging, resource, rules)
    return validate_meanwhile(con, GX_ROWS, rules, suite_name=f"{resource.slug}_{intent.run_id}", today=today,
                              docs_dir=gx_docs_dir(intent.settings), after=after)


def _validate(intent: steps.Intent, resource, ruleset, rules, failures, warnings, rows_read, held: list[HeldBatch],
              gx: dict) -> list[str]:
    """GX's counts (``gx``: its outcomes by rule id, from :func:`_start_gx`) must equal the engine's; record the
    results.

    Returns the disagreements between GX and the engine (a defect: nothing is published then).
    """
    run_id, code = intent.run_id, resource.code
    validated_at = now()
    results, mismatches = [], []
    for r in (rules if rows_read else []):  # every batch held: only the blocking result is recorded
        failed = (failures if r.severity == "row" else warnings).get(r.id, 0)
        o = gx[r.id]
        if o.error or o.unexpected_count != failed:
            mismatches.append(f"{r.id}: DuckDB {failed}, GX {o.unexpected_count} {o.error or ''}".strip())
        results.append({
            "run_id": run_id, "resource": code, "rule_id": r.id, "severity": r.severity,
            "description_zh": r.zh, "description_en": r.en, "rows_checked": rows_read,
            "failed": failed, "gx_unexpected": o.unexpected_count, "gx_success": o.success,
            "success": failed == 0, "validated_at": validated_at})
    limit = ruleset.max_quarantine_rate
    judged = rows_read + sum(h.rows for h in held)
    results.append({
        "run_id": run_id, "resource": code, "rule_id": "blocking.quarantine_rate", "severity": "blocking",
        "description_zh": f"每批（文件或数据库窗口）隔离行比例不得超过{limit:.0%}，否则该批暂扣",
        "description_en": f"At most {limit:.0%} of a batch's (file's or window's) rows may be quarantined, "
                          "else the batch is held",
        "rows_checked": judged, "failed": sum(h.rows for h in held), "gx_unexpected": None, "gx_success": None,
        "success": not held, "validated_at": validated_at})
    intent.append_rows("meta/validation_results", results, VALIDATION_SCHEMA)
    return mismatches


def _record_batches(con, intent: steps.Intent, resource, held: list[HeldBatch]) -> None:
    """meta/batches: the batches held now, and the released batches this run publishes."""
    at = now()
    rows = [{"batch_id": h.batch_id, "resource": resource.code, "source": h.source, "rows": h.rows,
             "quarantined": h.quarantined, "status": _batches.HELD, "rules": json.dumps(h.rules, ensure_ascii=False),
             "limit_rate": h.limit_rate, "reason": h.describe(), "actor": "govlake", "at": at, "run_id": intent.run_id}
            for h in held]
    for batch_id, source, n, q in con.rows(f"""
            select _batch_id, any_value(_source), count(*), count(*) filter (where _failed <> '') from checked
            where _batch_id in (select batch_id from batch_state where status = '{_batches.RELEASED}')
            group by _batch_id"""):
        rows.append({"batch_id": batch_id, "resource": resource.code, "source": source, "rows": n, "quarantined": q,
                     "status": _batches.PUBLISHED, "rules": None, "limit_rate": None,
                     "reason": "released by an operator; published without judging it again", "actor": "govlake",
                     "at": at, "run_id": intent.run_id})
    intent.append_rows(_batches.TABLE, rows, _batches.SCHEMA)


def decide_batch(settings: Settings, batch_id: str, *, decision: str, reason: str, by: str | None = None,
                 run_id: str) -> _batches.Batch:
    """Reject or release held batch ``batch_id`` (``batches reject|release``), recorded with who, when
    and why, under the resource's process lock; the reconciliation is restated at once (held rows
    become rejected, or stay held until the next process run publishes them)."""
    batch = _batches.find(settings, batch_id)
    with locks.hold(settings, f"process:{batch.resource}"):
        batch = _batches.find(settings, batch.batch_id)
        _batches.record_decision(settings, batch, status=decision, reason=reason, by=by, run_id=run_id)
        before = _last_totals(settings, batch.resource)
        held, rejected = _batches.totals(settings, batch.resource)
        totals = dataclasses.replace(before, held=held, rejected=rejected)
        row = reconciliation_row(run_id, batch.resource, totals, Totals(), None, balanced=totals.balanced,
                                 published=True, note=f"batch {batch.batch_id} ({batch.source}) {decision}: {reason}")
        storage.write_table(storage.table_path(settings, "meta", "reconciliation"),
                            pa.Table.from_pylist([row], schema=RECONCILIATION_SCHEMA), mode="append", run_id=run_id)
    return next(b for b in _batches.states(settings, resource=batch.resource) if b.batch_id == batch.batch_id)


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
        columns = con.sql("select * from reconciliation").columns
        extra = ", ".join(f"coalesce({c}, 0)" if c in columns else "0" for c in ("held", "rejected"))
        row = con.execute(f"""select rows_read, silver, quarantined, duplicates, {extra} from reconciliation
                              where resource = ? and published order by checked_at desc limit 1""",
                          [code]).fetchone()
    finally:
        con.close()
    return Totals(*row) if row else Totals()


def _reconcile(intent: steps.Intent, code: str, totals: Totals, run: Totals, version, *, balanced: bool,
               published: bool, note: str | None) -> None:
    intent.append_rows("meta/reconciliation", [reconciliation_row(
        intent.run_id, code, totals, run, version, balanced=balanced, published=published, note=note)],
        RECONCILIATION_SCHEMA)


def reconciliation_row(run_id: str, code: str, totals: Totals, run: Totals, version, *, balanced: bool,
                       published: bool, note: str | None) -> dict:
    return {"run_id": run_id, "resource": code, "rows_read": totals.rows, "silver": totals.silver,
            "quarantined": totals.quarantined, "duplicates": totals.duplicates, "held": totals.held,
            "rejected": totals.rejected, "new_rows": run.rows, "new_silver": run.silver,
            "new_quarantined": run.quarantined, "new_duplicates": run.duplicates, "new_held": run.held,
            "bronze_version": version, "balanced": balanced, "published": published, "note": note,
            "checked_at": now()}


def _rule_counts(con: Compute, column: str) -> dict[str, int]:
    """Rows per rule id in ``checked.<column>`` (';'-joined rule ids)."""
    return dict(con.rows(f"""select rule, count(*) from
        (select unnest(string_split({column}, ';')) as rule from checked where {column} <> '')
        group by rule"""))


def _publish(con: Compute, intent: steps.Intent, resource, tables: dict[str, str], *, rebuild: bool,
             counts: _Contest) -> None:
    """Merge ``upserts`` into silver by key and append the failing rows to quarantine, less the
    re-sent ones (both replaced on a rebuild). When no new row's key is in silver yet (``matched`` 0)
    the rows are appended: one commit, without delta-rs reading the whole table to look for matches.
    The quarantine rows are ``failing_hash``'s (a scratch file: the rows as sent, with the pass's flags and
    their content hashes) streamed to delta-rs, less the re-sent ones: no join of wide rows. Joining the
    flagged rows with ``checked`` and the hashes here ran out of DuckDB's 768 MB at 30 million records (4.4
    million failing rows), streamed or written to a file first."""
    new_rows, matched = counts.winners, counts.matched
    # with the key's hash, which the next runs' contest looks a day's keys up by (_silver_may_hold)
    columns = ", ".join([*row_columns(resource), f"{storage.key_hash_sql(resource.key)} as {storage.KEY_HASH}"])
    exists = intent.version(tables["silver"]) is not None
    if rebuild or not exists or (new_rows and not matched):
        # nothing to merge with: stream the rows instead of holding them in memory
        intent.write_table(tables["silver"], con.data(f"select {columns} from upserts"),
                           mode="overwrite" if rebuild else "append")
    elif new_rows:
        # streamed, with the keys apart: a department re-sending its whole table corrected merges every row
        keys = con.data(f"select {', '.join(resource.key)} from upserts", whole=True) if con.name == "duckdb" else None
        intent.merge_table(tables["silver"], con.data(f"select {columns} from upserts"), key=resource.key, keys=keys)
    schema = quarantine_schema(resource)
    columns = ", ".join(f"'{intent.run_id}' as _run_id" if c == "_run_id" else f"f.{c}" for c in schema.names)
    quarantined = con.data(f"""
        select {columns}
        from failing_hash as f
        where not exists (select 1 from resent as r where r._batch_id = f._batch_id and r._row_number = f._row_number)
        """, schema=schema)
    intent.write_table(tables["quarantine"], quarantined, mode="overwrite" if rebuild else "append")
