"""The credit step: 双公示 lifecycles, publications, repairs, withdrawals and 一企一档 profiles.

Incremental: the step reads only the silver data files added since the versions it
consumed last (lake/meta/consumption) and re-derives just the records they touch:

- penalty and licence decisions that are new or changed, penalties whose publication is due to end
  by the run's business date, and penalties named by new credit-repair applications
  (``sql/gold/penalty_record.sql.j2``, ``license_record.sql.j2``);
- the repair applications concerning those penalties (``credit_repair_review.sql.j2``);
- the profiles of the enterprises those records, the court's list, tax, social insurance or the
  registry touch (``enterprise_credit_profile.sql.j2``), from the penalties' totals per enterprise
  (``penalty_totals.sql``), which a run brings up to date from the record table's files it changed.

The results are merged by key into gold/penalty_record and gold/license_record (every decision with
its lifecycle: the lake keeps the history), gold/penalty_publication and gold/license_publication
(only what is published now: a record that is revoked, expired, repaired or not to be published is
deleted from them), gold/credit_repair_review and gold/enterprise_credit_profile. Every record that
leaves a publication is written to gold/withdrawal_log with the output, the reason and the dates.
``rebuild=True`` re-derives everything from silver.
"""

from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from govlake import contracts, locks, steps, storage
from govlake.catalog import get_catalog
from govlake.compute import Compute, Kind, open_compute
from govlake.config import Settings
from govlake.consumption import SCHEMA as CONSUMPTION_SCHEMA
from govlake.consumption import consumed_versions, consumption_rows
from govlake.contracts import silver_schema
from govlake.credit._rules import CreditRules, Regime, load_credit_rules
from govlake.engine import get_engine
from govlake.gold import GoldError
from govlake.layout import gold_path
from govlake.silver import register_silver
from govlake.transform import ModelRunner, check_keys

CONSUMER = "credit"
INPUTS = ("credit.penalty", "credit.license", "credit.repair", "court.dishonest",
          "tax.credit_rating", "hrss.social_insurance", "amr.enterprise")
"""Silver tables the step reads incrementally."""
OUTPUTS = ("penalty_record", "license_record", "penalty_publication", "license_publication",
           "credit_repair_review", "penalty_totals", "enterprise_credit_profile", "withdrawal_log")
"""Gold tables the step writes."""
PROFILE_TRIGGERS = ("court_dishonest", "tax_credit_rating", "hrss_social_insurance", "amr_enterprise")
"""Silver tables whose new rows re-derive the profile of the enterprise they name."""
PUBLISHED = "公示中"
REASONS = {"已到期": ("expired", "公示期满"), "已修复": ("repaired", "信用修复"),
           "已撤销": ("revoked", "决定已撤销"),
           "不予公示": ("not_published", "不予公示（仅警告或轻微失信）")}


@dataclass(frozen=True)
class RecordKind:
    """A 双公示 record type: its silver resource, gold tables and what the publication adds."""

    name: str
    resource: str
    key: tuple[str, ...]
    """The record's key: the resource's catalog key and the record model's header key (tested)."""
    record: str
    publication: str
    published_extra: tuple[str, ...]
    due_sql: str | None = None
    """Records (of the current record table) whose state changes with time alone, given ``as_of``."""

    @property
    def cluster_by(self) -> str | None:
        """The date column the record and publication tables are clustered on: the publication's end, which
        a day's expiries share (kinds without a publicity period: none)."""
        return "publish_end" if "publish_end" in self.published_extra else None

    @property
    def end_column(self) -> str:
        """SQL for the record's publication end (null for kinds without a publicity period)."""
        return "publish_end" if "publish_end" in self.published_extra else "null"


PENALTY = RecordKind(
    "penalty", "credit.penalty", ("decision_no", "authority_uscc"), "penalty_record", "penalty_publication",
    ("deadline_date", "deadline_provisional", "on_time", "severity", "publish_end"),
    due_sql="publicity_status = '公示中' and publish_end <= date '{as_of}'")
LICENSE = RecordKind("license", "credit.license", ("doc_no", "authority_uscc"), "license_record", "license_publication",
                     ("deadline_date", "deadline_provisional", "on_time"))
KINDS = (PENALTY, LICENSE)

WITHDRAWAL_SCHEMA = contracts.WITHDRAWAL_LOG


@dataclass
class CreditResult:
    run_id: str
    as_of: dt.date
    rebuilt: bool
    rederived: dict[str, int] = field(default_factory=dict)
    """Rows re-derived (and merged) per gold table in this run."""
    withdrawn: dict[str, int] = field(default_factory=dict)
    """Records that left a publication in this run, per reason."""
    tables: dict[str, int] = field(default_factory=dict)
    """Rows per credit table after the run."""
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per phase (inputs, records, repairs, profiles, log)."""


@contextmanager
def _timed(result: CreditResult, phase: str):
    start = time.perf_counter()
    yield
    result.seconds[phase] = round(time.perf_counter() - start, 2)


def _sql_list(values) -> str:
    return "cast([" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + "] as varchar[])"


def _regime_context(regime: Regime) -> dict:
    """One regime as ``penalty_record.sql.j2`` uses it: SQL lists, thresholds, months per class."""
    serious, minor = regime.classes.serious, regime.classes.minor
    return {"id": regime.id, "effective_from": regime.effective_from.isoformat(),
            "serious_categories": _sql_list(serious.categories), "serious_fine_from": serious.fine_from,
            "minor_categories": _sql_list(minor.only_categories) if minor else None,
            "minor_fine_below": minor.fine_below if minor else None,
            "periods": [(name, rule.min_months, rule.max_months) for name, rule in regime.classes.items()]}


def context(rules: CreditRules, as_of: dt.date, *, regime: str | None = None) -> dict:
    """What the credit models (``sql/gold/*_record.sql.j2`` …) are rendered with: ``credit_rules.yml``
    and the business date. ``regime``: judge every penalty by that regime instead of the one its
    date chooses (``govlake credit impact``)."""
    pub, score = rules.publicity, rules.score
    if regime is not None:
        pub.regime(regime)  # a KeyError naming the regimes there are
    unpublished = [r.id for r in pub.regimes if r.unpublished()]
    return {"as_of": as_of.isoformat(), "regimes": [_regime_context(r) for r in pub.regimes],
            "regime_date": pub.regime_date, "forced_regime": regime,
            "unpublished_minor_regimes": _sql_list(unpublished),
            "warning_only_depts": _sql_list(pub.warning_only_not_published_by),
            "factors": score.factors, "base": score.base, "floor": score.floor, "ceiling": score.ceiling,
            "grade_sql": score.grade_sql("scored.credit_score")}


def render(settings: Settings, name: str, rules: CreditRules, as_of: dt.date) -> str:
    """The SQL of credit model ``sql/gold/<name>.sql.j2`` rendered with ``credit_rules.yml``."""
    return ModelRunner(settings.sql_dir).render(f"gold/{name}", **context(rules, as_of)).sql


def _gold(settings: Settings, name: str) -> Path:
    return storage.table_path(settings, "gold", name)


def _deadlines(con: Compute, rules: CreditRules, inputs: tuple[str, ...] = ("penalty_input", "license_input")) -> None:
    """``ref_deadline``: the publication deadline of every (decision date, department) of ``inputs``.

    A department of null (数据来源单位统一社会信用代码 not in catalog/departments.yml) gets the default
    number of working days; the record models join on it with ``is not distinct from``.
    """
    union = " union all ".join(f"select decision_date, _dept from {name}" for name in inputs)
    pairs = con.rows(f"""select distinct decision_date, _dept from ({union}) as d
        where decision_date is not null""")
    calendar = rules.calendar()
    rows = {"decision_date": [], "dept": [], "deadline_date": [], "deadline_provisional": []}
    for day, dept in pairs:
        deadline = calendar.add_workdays(day, rules.deadline.days_for(dept))
        for k, v in zip(rows, (day, dept, deadline.date, deadline.provisional)):
            rows[k].append(v)
    table = pa.table(rows, schema=pa.schema([("decision_date", pa.date32()), ("dept", pa.string()),
                                             ("deadline_date", pa.date32()), ("deadline_provisional", pa.bool_())]))
    con.register_arrow("ref_deadline", table)


def _inputs(con: Compute, intent: steps.Intent, kind: RecordKind, as_of: dt.date, rebuild: bool) -> None:
    """``<kind>_input``: silver rows of the decisions to re-derive."""
    res = get_catalog(intent.settings.catalog_dir).resource(kind.resource)
    columns = ", ".join(silver_schema(res).names)
    key = ", ".join(kind.key)
    if rebuild:  # a view: the record model and the deadlines read silver's files, nothing is copied
        con.create(f"{kind.name}_input", f"select {columns} from silver_{res.slug}", kind="view")
        return
    intent.register(con, f"{kind.record}_current", gold_path(kind.record))
    # a silver file rewritten by a merge also holds rows copied unchanged: skip the rows the current
    # record was derived from already (same key, same batch and row). Only the records of the changed rows'
    # batches are looked at, found by their arrival time (every row of a batch has its batch's): the row groups
    # of batches that arrived earlier are skipped by their min/max (10 million records: 0.34 → 0.06 s). Not by the
    # batch id alone, although it begins with that time: DuckDB keeps 8 bytes of a text column's bounds, the
    # date, so batches of the same day were not skipped (a day on the 10-million-record lake built that day:
    # 0.07 → 0.03 s)
    same_row = " and ".join(f"c.{k} = cur.{k}" for k in (*kind.key, "_batch_id", "_row_number"))
    # a file: a department re-sending its whole table corrected changes every row (at 1 million records, held
    # in DuckDB's memory with the window below, the step ran out of it)
    con.create(f"{kind.name}_changed", f"""select {columns} from changed_{res.slug} as c
        where not exists (
            select 1 from (select * from {kind.record}_current
                           where _received_at >= (select min(_received_at) from changed_{res.slug})
                             and _batch_id in (select _batch_id from changed_{res.slug})) as cur
            where {same_row})""", kind="file")
    # the current records whose state changes without a new row: each a filter of its own, so that the
    # day's expiries are found in the files of the day's publish_end (the table is clustered on it) and a
    # repair's penalty by a join on the few applications, instead of one OR over every record
    touched = []
    if kind.due_sql:
        touched.append(f"select {columns} from {kind.record}_current as cur "
                       f"where {kind.due_sql.format(as_of=as_of.isoformat())}")
    if kind is PENALTY and con.count("changed_credit_repair"):  # no new application: no join (0.03 s at 10 million)
        touched.append(f"select {columns} from {kind.record}_current as cur "
                       "semi join changed_credit_repair as r using (uscc, decision_no)")
    # a record both due and named by a repair comes twice: the same row, one kept (silver's changed rows have a
    # key each already)
    inputs = [f"select * from {kind.name}_changed"]
    if touched:
        new_key = " and ".join(f"c.{k} = t.{k}" for k in kind.key)
        con.create(f"{kind.name}_touched", f"""select * from ({" union all ".join(touched)}) as t
            where not exists (select 1 from {kind.name}_changed as c where {new_key})
            qualify row_number() over (partition by {key} order by _received_at desc) = 1""")
        inputs.append(f"select * from {kind.name}_touched")
    con.create(f"{kind.name}_input", " union all ".join(inputs), kind="view")


def _derive(con: Compute, settings: Settings, name: str, rules: CreditRules, as_of: dt.date, *,
            kind: Kind = "table") -> None:
    """Run model ``name`` into ``new_<name>`` (the model runner checks its inputs and key; of a view, this does);
    ``kind="file"`` for a relation as large as a day's records can be (govlake.compute: written once to the
    step's scratch folder and read back by column, instead of held, and spilled, in DuckDB's memory)."""
    model = ModelRunner(settings.sql_dir).run(
        con, f"gold/{name}", into=f"new_{name}", kind=kind, **context(rules, as_of))
    if kind == "view":  # the model runner tests the keys of what it materializes only
        check_keys(con, f"new_{name}", model.header, model=f"gold/{name}")


def _write(intent: steps.Intent, con: Compute, name: str, key, rebuild: bool, *, select: str | None = None,
           delete_flag: str | None = None, cluster_by: str | None = None) -> int:
    """Merge (or, on a rebuild, overwrite with) ``new_<name>`` into gold/<name>; returns rows merged.

    ``cluster_by``: the table is written sorted by that date column, with its key's hash (storage.KEY_HASH), so
    that a day's merge finds its keys by the hash and reads and rewrites only the files of the dates its records
    hold (steps.Intent.merge_table; delta-rs only: delta-spark's merge reads the table whole, so on Spark the
    table is not sorted for it). A table written before it was clustered is merged correctly, at the old cost,
    until a rebuild writes it sorted."""
    rows = select or f"select * from new_{name}"
    if cluster_by:  # on either engine, so that a table a Spark run wrote is looked up by its hash too
        rows = f"select *, {storage.key_hash_sql(key)} as {storage.KEY_HASH} from ({rows}) as derived"
    cluster_by = cluster_by if con.name == "duckdb" else None
    query = f"out_{name}"
    con.create(query, rows, kind="view")
    n = con.count(query)
    table = gold_path(name)
    if rebuild or intent.version(table) is None:
        kept = ", ".join(c for c in con.columns(query) if c != delete_flag)
        keep = f"select {kept} from {query} where not {delete_flag}" if delete_flag else f"select * from {query}"
        intent.write_table(table, con.data(keep, order_by=cluster_by, rows=n), mode="overwrite", cluster_by=cluster_by)
    elif n > STREAMED_MERGE_ROWS and con.name == "duckdb":
        # streamed, with the keys apart (storage.merge_table), sorted by the clustering date: the kept rows and
        # these are each written in date order, so the files stay narrow
        keys = con.data(f"select {', '.join(key)} from {query}", whole=True)  # before the stream: a query ends it
        intent.merge_table(table, con.data(f"select * from {query}", order_by=cluster_by, rows=n), key=list(key),
                           delete_flag=delete_flag, keys=keys, cluster_by=cluster_by)
    elif n:
        intent.merge_table(table, con.data(f"select * from {query}", whole=True), key=list(key),
                           delete_flag=delete_flag, cluster_by=cluster_by)
    return n


STREAMED_MERGE_ROWS = 100_000
"""Rows re-derived beyond which :func:`_write` streams them into the table (a department's whole table corrected,
say) instead of holding them to find the files of their dates: a day's are some 10,000."""


def _records(con: Compute, intent: steps.Intent, kind: RecordKind, rules: CreditRules, as_of: dt.date,
             rebuild: bool, result: CreditResult) -> list[dict]:
    """Derive ``kind``'s records, merge records and publication; returns the withdrawals."""
    settings = intent.settings
    whole = rebuild or intent.version(gold_path(kind.record)) is None  # the record table written whole, sorted
    # written whole, the records are computed as DuckDB's sort for the write reads them: a scratch file of them,
    # written and read back, cost more than the sort's own spill (10 million records: the step ~50 → ~46 s).
    # Spark computes a view again for every action that reads it (the count, the key test, the write): a file
    _derive(con, settings, kind.record, rules, as_of, kind="view" if whole and con.name == "duckdb" else "file")
    res = get_catalog(settings.catalog_dir).resource(kind.resource)
    key = ", ".join(kind.key)
    withdrawals: list[dict] = []
    if intent.register(con, f"{kind.publication}_before", gold_path(kind.publication)):
        withdrawals = [withdrawal(f"gold/{kind.publication}", kind, row, as_of) for row in con.rows(f"""
            select {kind.key[0]}, authority_uscc, uscc, publicity_status, {kind.end_column}
            from new_{kind.record} as n semi join ({_held(con, kind, f"{kind.publication}_before")}) as b
                using ({key})
            where n.publicity_status <> '{PUBLISHED}'""")]
    published = [c for c in silver_schema(res).names if c not in ("_batch_id", "_received_at")]
    published += kind.published_extra
    if whole and kind.cluster_by and con.name == "duckdb" and (
            rebuild or intent.version(gold_path(kind.publication)) is None):
        # the publication is the record table's published rows, in its order: taken from the record table's sorted
        # stream as it is written rather than sorted a second time (10 million records: 86.1 → 78.3 s, the step's
        # peak 1,552 → 1,393 MiB), or, when one of the two was written already (a run interrupted between the two
        # commits, finished by the next), read back from the record table's files as they lie
        record, publication = gold_path(kind.record), gold_path(kind.publication)
        if intent.done(record) or intent.done(publication):
            result.rederived[kind.record] = _write(intent, con, kind.record, kind.key, rebuild,
                                                   cluster_by=kind.cluster_by)
            rows = storage.clustered_rows(intent.path(record), kind.cluster_by,
                                          f"select {', '.join(published)}, {storage.KEY_HASH} from t "
                                          f"where publicity_status = '{PUBLISHED}'")
            intent.write_table(publication, rows, mode="overwrite", cluster_by=kind.cluster_by)
        else:
            result.rederived[kind.record] = _write_with_publication(intent, con, kind, published)
        result.rederived[kind.publication] = result.rederived[kind.record]  # every record, as _write counts
        return withdrawals
    result.rederived[kind.record] = _write(intent, con, kind.record, kind.key, rebuild, cluster_by=kind.cluster_by)
    result.rederived[kind.publication] = _write(
        intent, con, kind.publication, kind.key, rebuild, delete_flag="_withdraw",
        select=f"select {', '.join(published)}, publicity_status <> '{PUBLISHED}' as _withdraw from new_{kind.record}",
        cluster_by=kind.cluster_by)
    return withdrawals


def _held(con: Compute, kind: RecordKind, table: str) -> str:
    """SQL for the keys of ``table`` (a publication) that a record of ``new_<record>`` leaving it may have: looked up
    by storage.KEY_HASH first when the table has it (one 8-byte column read instead of the key's strings: at 10
    million records the lookup 0.095 → 0.033 s), with its rows written without the hash; a hash two keys
    share is told apart by the semi-join on the key that reads these.

    In a table clustered on a date (``kind.cluster_by``) the hashes are looked up with the date first, and the keys
    read in the row groups of the dates found only: read beside the hash in every row group, the key strings of
    every row were decoded (a string column's dictionary is decoded whole, whatever rows the hash lets through:
    4.68 million rows of the 10-million-record publication for the day's 4,920 expiries, 0.105 s; 0.022 s at 1
    million)."""
    key = ", ".join(kind.key)
    if storage.KEY_HASH not in con.columns(table):
        return f"select {key} from {table}"
    h = storage.KEY_HASH
    leaving = (f"select {storage.key_hash_sql(kind.key)} as {h} from new_{kind.record} "
               f"where publicity_status <> '{PUBLISHED}'")
    unhashed = f"select {key} from {table} where {h} is null"
    within = ""
    if kind.cluster_by:
        dates = [d for (d,) in con.rows(f"select distinct b.{kind.cluster_by} from {table} as b "
                                        f"semi join ({leaving}) as n on b.{h} = n.{h}")]
        if not dates:
            return unhashed
        within = f" where {storage.date_span(f'b.{kind.cluster_by}', dates)}"
    return f"select {key} from {table} as b semi join ({leaving}) as n on b.{h} = n.{h}{within} union all {unhashed}"


def _write_with_publication(intent: steps.Intent, con: Compute, kind: RecordKind, published: list[str]) -> int:
    """Overwrite ``kind``'s record table with every record, sorted by its clustering date with its key's hash (as
    :func:`_write`), and its publication with the published ones, columns ``published`` and the hash, from the
    same sorted stream (storage.write_with_derived): the sort, the largest cost of a rebuild, is read once. Returns
    the records written."""
    query = f"select *, {storage.key_hash_sql(kind.key)} as {storage.KEY_HASH} from new_{kind.record}"
    # a record per decision to derive: as many rows as the input
    rows = con.data(query, order_by=kind.cluster_by, rows=con.count(f"{kind.name}_input")).reader()
    columns = pa.schema([rows.schema.field(c) for c in (*published, storage.KEY_HASH)])

    def publish(batch: pa.RecordBatch) -> pa.RecordBatch:
        return batch.select(columns.names).filter(pc.equal(batch.column("publicity_status"), PUBLISHED))

    record, publication = gold_path(kind.record), gold_path(kind.publication)
    storage.write_with_derived(
        rows, lambda reader: intent.write_table(record, reader, mode="overwrite", cluster_by=kind.cluster_by),
        derive=publish, schema=columns,
        write_derived=lambda reader: intent.write_table(publication, reader, mode="overwrite",
                                                        cluster_by=kind.cluster_by))
    return storage.row_count(intent.path(record))


def _tables(catalog) -> tuple[list[str], list[str]]:
    """(silver tables the step reads incrementally, every table it reads or writes) — lake-relative."""
    inputs = [f"silver/{catalog.resource(code).slug}" for code in INPUTS]
    silver = [f"silver/{res.slug}" for res in catalog.resources.values()]
    gold = [gold_path(name) for kind in KINDS for name in (kind.record, kind.publication)]
    gold += [gold_path("credit_repair_review"), gold_path("enterprise_credit_profile"), gold_path("legal_entity")]
    return inputs, list(dict.fromkeys(silver + gold))


def build_credit(*, settings: Settings, run_id: str, rebuild: bool = False) -> CreditResult:
    """Run the credit step over what changed in silver since its last run (or everything).

    One intent of govlake.steps under the ``publish`` lock: its inputs are read at the versions
    pinned when it started and its outputs are stamped, so an interrupted run is finished, exactly,
    by the next one before it starts.
    """
    catalog = get_catalog(settings.catalog_dir)
    inputs, tables = _tables(catalog)

    def params() -> dict:
        if storage.open_table(_gold(settings, "legal_entity")) is None:
            raise GoldError("gold/base/legal_entity does not exist yet: run the gold step before the credit step")
        full = rebuild or any(storage.open_table(_gold(settings, k.record)) is None for k in KINDS)
        consumed = {} if full else consumed_versions(settings, CONSUMER)
        return {"as_of": settings.today.isoformat(), "rebuild": full, "since": {t: consumed.get(t) for t in inputs}}

    return steps.run(settings, CONSUMER, lock=locks.PUBLISH, run_id=run_id, params=params,
                     reads=lambda _: tables, body=lambda intent: _build(intent, catalog, inputs))


def _build(intent: steps.Intent, catalog, inputs: list[str]) -> CreditResult:
    settings, run_id = intent.settings, intent.run_id
    rules = load_credit_rules(settings.catalog_dir)
    as_of = dt.date.fromisoformat(intent.params["as_of"])
    rebuild = intent.params["rebuild"]
    result = CreditResult(run_id, as_of, rebuild)
    con = open_compute(get_engine(settings))
    try:
        with _timed(result, "inputs"):
            register_silver(con, settings, catalog, intent=intent)
            versions: dict[str, int | None] = {}
            for table in inputs:
                versions[table] = intent.version(table)
                res = catalog.resource(next(c for c in INPUTS if f"silver/{catalog.resource(c).slug}" == table))
                files = intent.files_since(table, intent.params["since"].get(table))
                con.register_files(f"changed_{res.slug}", files, silver_schema(res))
            for kind in KINDS:
                _inputs(con, intent, kind, as_of, rebuild)
            _deadlines(con, rules)
        with _timed(result, "records"):
            withdrawals = [w for kind in KINDS
                           for w in _records(con, intent, kind, rules, as_of, rebuild, result)]

        # the records as this run left them (only this step writes them, under the publish lock)
        con.register_delta("penalty_record", _gold(settings, "penalty_record"))
        con.register_delta("license_record", _gold(settings, "license_record"))
        intent.register(con, "legal_entity", gold_path("legal_entity"))
        with _timed(result, "repairs"):
            _repairs(con, intent, rules, as_of, rebuild, result)
        with _timed(result, "profiles"):
            _profiles(con, intent, rules, as_of, rebuild, result)
    finally:
        con.close()

    with _timed(result, "log"):
        intent.append_rows("gold/withdrawal_log", withdrawal_rows(withdrawals, as_of=as_of, run_id=run_id),
                           WITHDRAWAL_SCHEMA)
        intent.append_rows("meta/consumption", consumption_rows(CONSUMER, versions, run_id), CONSUMPTION_SCHEMA)
    for w in withdrawals:
        result.withdrawn[w["reason"]] = result.withdrawn.get(w["reason"], 0) + 1
    with _timed(result, "counts"):
        for name in OUTPUTS:
            result.tables[name] = storage.row_count(_gold(settings, name))
    return result


def repair_input_sql(rebuild: bool) -> str:
    """The repair applications to review (the latest per decision): all of silver on a rebuild, else the new
    ones and those naming a penalty being re-derived (``penalty_input``)."""
    source = "silver_credit_repair" if rebuild else """(
        select * from changed_credit_repair
        union all by name
        select * from silver_credit_repair as r semi join penalty_input as p using (uscc, decision_no))"""
    return f"""select * from {source} as r
        qualify row_number() over (partition by uscc, decision_no order by _received_at desc) = 1"""


def _repairs(con: Compute, intent: steps.Intent, rules: CreditRules, as_of: dt.date, rebuild: bool,
             result: CreditResult) -> None:
    """Review the new repair applications and those naming a re-derived penalty."""
    con.create("repair_input", repair_input_sql(rebuild))
    _derive(con, intent.settings, "credit_repair_review", rules, as_of)
    result.rederived["credit_repair_review"] = _write(
        intent, con, "credit_repair_review", ("uscc", "decision_no"), rebuild)


def _profiles(con: Compute, intent: steps.Intent, rules: CreditRules, as_of: dt.date, rebuild: bool,
              result: CreditResult) -> None:
    """Re-derive the profiles of the enterprises a re-derived record or a changed input names."""
    if rebuild:
        touched = ["select uscc from legal_entity", "select uscc from penalty_record",
                   "select uscc from license_record", "select uscc from silver_court_dishonest"]
    else:
        touched = ["select uscc from new_penalty_record", "select uscc from new_license_record",
                   *(f"select uscc from changed_{slug}" for slug in PROFILE_TRIGGERS)]
    con.create("affected_uscc", "select distinct uscc from (" + " union all ".join(touched)
               + ") as t where uscc is not null")
    _totals(con, intent, rules, as_of, rebuild)
    _derive(con, intent.settings, "enterprise_credit_profile", rules, as_of)
    result.rederived["enterprise_credit_profile"] = _write(
        intent, con, "enterprise_credit_profile", ("uscc",), rebuild)


TOTALS_VERSION = "_record_version"
"""The gold/penalty_record version gold/penalty_totals counts, on each of its rows (one overwrite commit writes them
all, so the totals and the version they count cannot disagree)."""
_TOTALS_COLUMNS = ("uscc", "penalty_category", "severity", "publicity_status", "fine_amount", "confiscated_amount")


def _totals(con: Compute, intent: steps.Intent, rules: CreditRules, as_of: dt.date, rebuild: bool) -> None:
    """Bring gold/penalty_totals to the record table as this run left it, and register it as ``penalty_totals``.

    From the version the totals count, the data files the record table lost and gained since are counted out
    and in (storage.file_changes: a day's few files, whatever the table's size); on a rebuild, when the table is
    new, or when the files cannot be told (the log of that version or a removed file cleaned up), every record
    is counted. Only the credit step writes either table, under the publish lock; a run replayed after a crash
    finds the totals at the version they count and writes nothing twice."""
    settings = intent.settings
    records, totals = _gold(settings, PENALTY.record), gold_path("penalty_totals")
    record_table = storage.open_table(records)
    now = record_table.version()
    before = None if rebuild else _totals_version(con, intent.path(totals))
    if before == now:
        con.register_delta("penalty_totals", intent.path(totals))
        return
    changes = None if before is None else storage.file_changes(records, before, now)
    columns = ", ".join(_TOTALS_COLUMNS)
    if changes is None:
        con.create("penalty_record_rows", f"select {columns}, 1 as _sign from penalty_record", kind="view")
        con.create("penalty_totals_before", "select uscc, penalty_category, severity, publicity_status, "
                   "cast(0 as bigint) as penalties, cast(0 as decimal(38, 4)) as amount from penalty_record "
                   "where false", kind="view")
    else:
        removed, added = changes
        table = pa.schema(record_table.schema().to_arrow())
        schema = pa.schema([table.field(c) for c in _TOTALS_COLUMNS])  # Spark reads the files by it
        for name, files in (("removed_records", removed), ("added_records", added)):
            con.register_files(name, files, schema)
        con.create("penalty_record_rows", f"select {columns}, 1 as _sign from added_records union all "
                   f"select {columns}, -1 as _sign from removed_records", kind="view")
        con.register_delta("penalty_totals_before", intent.path(totals))
    _derive(con, settings, "penalty_totals", rules, as_of)
    rows = f"select *, cast({now} as bigint) as {TOTALS_VERSION} from new_penalty_totals"
    intent.write_table(totals, con.data(rows), mode="overwrite")
    con.register_delta("penalty_totals", intent.path(totals))


def _totals_version(con: Compute, path) -> int | None:
    """The record-table version gold/penalty_totals counts (None: no totals yet)."""
    if storage.open_table(path) is None:
        return None
    con.register_delta("penalty_totals_kept", path)
    return con.one(f"select max({TOTALS_VERSION}) from penalty_totals_kept")[0]


def withdrawal(output: str, kind: RecordKind, row: tuple, as_of: dt.date) -> dict:
    """A withdrawal-log row for a record that left ``output``: ``row`` is (key[0], authority_uscc, uscc,
    publicity_status, publication end). Expiry and repair take effect on the publication end; the
    rest on the run's business date."""
    no, authority, uscc, status, end = row
    reason, reason_zh = REASONS.get(status, ("rebuilt", "重建后不再包含"))
    return {"output": output, "record_type": kind.name, "decision_no": no, "authority_uscc": authority,
            "uscc": uscc, "reason": reason, "reason_zh": reason_zh,
            "effective_date": end if reason in ("expired", "repaired") and end else as_of}


def withdrawal_rows(rows: list[dict], *, as_of: dt.date, run_id: str) -> list[dict]:
    """gold/withdrawal_log rows for records that left a public output (``withdrawal`` dicts)."""
    at = dt.datetime.now(dt.UTC)
    return [{**r, "as_of": as_of, "withdrawn_at": at, "run_id": run_id} for r in rows]
