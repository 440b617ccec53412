"""Every SQL model gives the same rows on PySpark (local[2], the Spark engine's session) as on DuckDB.

The models run through the model runner as the pipeline runs them (its contexts, rules and inputs)
on DuckDB; :class:`TwinRunner` runs each of them again on Spark, as the dialect layer translates it
(``govlake.transform.SPARK``, the session set with ``SPARK_CONF``), over the same rows, and compares
the results: the same rows (order-insensitive), the same column names in the same order, the same
kinds of type. What runs:

- per catalog resource: ``staging/standardize`` with the quality rules (``silver/checked``), the
  quarantine's row hashes (``silver/failing_hash``, ``silver/resent``) and the silver contest
  (``silver/candidates``, ``contest``, ``upserts``), over the resource's bronze from a generated city;
- the objection views (``sql/governance``), the 一数一源 comparisons, the 法人库, 人口库 and 一人一档
  models and the four credit models (``sql/gold``), over the city's silver and over the hand-made rows
  of test_gold, test_credit, test_conflicts and test_population;
- the constructs the dialect layer translates, over awkward values (regexes and flags, date
  parsing, Chinese text, casts, list aggregates, null ordering), and the extract's masking SQL.

Each model's inputs on Spark are DuckDB's rows (Parquet files), so a difference points at one model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import test_conflicts
import test_credit
import test_gold
import test_masking
import test_population
from govlake import pipeline, storage
from govlake.catalog import Catalog, Resource, get_catalog
from govlake.compute import as_compute
from govlake.config import Settings
from govlake.contracts import OBJECTIONS, bronze_schema, silver_schema
from govlake.credit import load_credit_rules
from govlake.credit._build import KINDS, _deadlines, _inputs, context
from govlake.generate import generate_city
from govlake.gold import SUMMARY_COLUMNS, SUMMARY_READS, model_context
from govlake.governance._conflicts import comparisons_context
from govlake.governance._plan import conflict_plan
from govlake.governance._views import OPEN_STATES
from govlake.masking import mask_sql, scrub_sql
from govlake.quality._process import (
    _contest,
    _flagged,
    _quarantine_duplicates,
    _reference_tables,
    checked_context,
)
from govlake.quality._rules import bind_today, rules_for
from govlake.transform import DUCKDB, SPARK, ModelRunner, Rendered, StagingRenderer, to_spark

AS_OF = dt.date(2026, 11, 20)
SQL_DIR = Path(__file__).parents[1] / "sql"


# ---- comparing rows ------------------------------------------------------------------------------


def _normalised(value):
    """A value as both engines' Arrow results can agree on: numbers as floats (6 places), instants
    in UTC without a zone, structs as (field, value) pairs, lists as tuples."""
    if value is None or isinstance(value, bool | str) or type(value) is dt.date:
        return value
    if isinstance(value, int | float | Decimal):
        return round(float(value), 6)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dict):
        return tuple((k, _normalised(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(_normalised(v) for v in value)
    return value


def _kind(t: pa.DataType):
    """The kind of an Arrow type both engines must agree on (widths and decimal precision may differ)."""
    if pa.types.is_integer(t) or pa.types.is_decimal(t) and t.scale == 0:
        return "integer"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_floating(t):
        return "double"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return ("list", _kind(t.value_type))
    if pa.types.is_struct(t):
        return ("struct", tuple((f.name, _kind(f.type)) for f in t))
    return str(t)


def _same_kind(a, b) -> bool:
    if "null" in (a, b):  # an untyped null (Spark's NULL literal) is any type
        return True
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return all(_same_kind(x, y) for x, y in zip(a, b))
    return a == b


def _rows(table: pa.Table) -> list[tuple]:
    return sorted((tuple(_normalised(v) for v in row.values()) for row in table.to_pylist()), key=repr)


def assert_same_rows(what: str, duck: pa.Table, spark: pa.Table) -> None:
    """The same column names, in the same order, of the same kinds, and the same rows in any order."""
    assert spark.column_names == duck.column_names, (
        f"{what}: columns {duck.column_names} on DuckDB, {spark.column_names} on Spark")
    kinds = [(f.name, _kind(f.type), _kind(g.type)) for f, g in zip(duck.schema, spark.schema)]
    assert all(_same_kind(d, s) for _, d, s in kinds), (
        f"{what}: types differ: {[(n, d, s) for n, d, s in kinds if not _same_kind(d, s)]}")
    d, s = _rows(duck), _rows(spark)
    if d != s:
        only_d, only_s = Counter(d) - Counter(s), Counter(s) - Counter(d)
        show = lambda rows: "\n    ".join(repr(dict(zip(duck.column_names, r))) for r in list(rows.elements())[:3])  # noqa: E731
        pytest.fail(f"{what}: {sum(only_d.values())} rows only on DuckDB, {sum(only_s.values())} only on Spark "
                    f"(of {len(d)} / {len(s)})\n  DuckDB:\n    {show(only_d)}\n  Spark:\n    {show(only_s)}")


# ---- the two engines over the same rows --------------------------------------------------------------


class Engines:
    """A DuckDB connection (as the pipeline opens one) and a Spark session; a relation is handed to
    Spark as a Parquet file of DuckDB's rows."""

    def __init__(self, spark, settings: Settings, folder: Path):
        self.settings = settings
        self.duck = storage.connect(settings)
        self.duck.execute("set TimeZone = 'UTC'")  # as SPARK_CONF; only the Arrow results show it
        self.spark = spark.newSession()
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.columns: dict[str, dict[str, str]] = {}
        """Spark's relations: name → {column: type}, in order (what the dialect layer expands stars with)."""

    def close(self) -> None:
        self.duck.close()

    def put(self, name: str, table: pa.Table) -> None:
        """``table`` as view ``name`` on both engines."""
        self.duck.register(f"{name}_arrow", table)
        self.duck.execute(f"create or replace temp table {name} as select * from {name}_arrow")
        self.duck.unregister(f"{name}_arrow")
        self.share(name)

    def share(self, name: str) -> pa.Table:
        """DuckDB's relation ``name`` as view ``name`` of the Spark session; returns its rows."""
        table = self.duck.sql(f"select * from {name}").to_arrow_table()
        path = self.folder / f"{name}-{len(list(self.folder.iterdir()))}.parquet"
        pq.write_table(table, path)
        self.spark.read.parquet(str(path)).createOrReplaceTempView(name)
        self.columns[name] = {f.name: f.dataType.simpleString() for f in self.spark.table(name).schema}
        return table


class TwinRunner(ModelRunner):
    """The model runner on DuckDB; every model it runs also runs on Spark, translated by the dialect
    layer, over DuckDB's rows of its declared inputs, and must give DuckDB's rows. The result on
    Spark is then DuckDB's too, for the next model."""

    def __init__(self, engines: Engines):
        super().__init__(engines.settings.sql_dir)
        self.engines = engines
        self.ran: list[str] = []

    def run(self, con, name: str, *, into: str | None = None, kind="table", temp: bool = True, **ctx) -> Rendered:
        eng = self.engines
        model = super().run(con, name, into=into, kind=kind, temp=temp, **ctx)
        for relation in model.inputs:
            if relation not in eng.columns:  # made by the pipeline outside a model
                eng.share(relation)
        target = into or name.rsplit("/", 1)[-1]
        on_spark = eng.spark.sql(SPARK.to_engine(model.sql, eng.columns)).toArrow()
        assert_same_rows(f"{name} (into {target})", eng.share(target), on_spark)
        self.ran.append(name)
        return model


@pytest.fixture
def engines(spark, tmp_path):
    eng = Engines(spark, Settings(var=tmp_path / "var", as_of=AS_OF), tmp_path / "parquet")
    yield eng
    eng.close()


# ---- inputs ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Settings:
    """A generated city landed in bronze by the real ingest (scale 200: small, yet with failing,
    duplicated and re-sent rows, repairs and copies for every model to work on)."""
    root = tmp_path_factory.mktemp("parity-city")
    generate_city(root / "inbox", scale=200, seed=7, as_of=AS_OF)
    settings = Settings(var=root / "var", inbox=root / "inbox", as_of=AS_OF)
    for code in get_catalog(settings.catalog_dir).resources:
        pipeline.ingest(code, settings=settings, run_id=f"ingest-{code}")
    return settings


def _bronze(settings: Settings, res: Resource) -> pa.Table:
    table = storage.open_table(storage.table_path(settings, "bronze", res.slug))
    return bronze_schema(res).empty_table() if table is None else table.to_pyarrow_table()


def _checked(catalog: Catalog, res: Resource, settings: Settings) -> dict:
    """The ``checked`` model's context: its columns and rule flags, as quality/_process.py binds them."""
    rules = [dataclasses.replace(r, fail_when=bind_today(r.fail_when, DUCKDB.date_literal(AS_OF)))
             for r in rules_for(res, catalog, DUCKDB, settings.expectations_dir).rules]
    return checked_context(res, rules)


def _silver(con, catalog: Catalog, res: Resource, settings: Settings) -> pa.Table:
    """A resource's silver from its bronze on ``con``: the valid rows, the latest per key."""
    runner = ModelRunner(settings.sql_dir)
    runner.run(con, "staging/standardize", into=f"stg_{res.slug}", kind="view",
               **StagingRenderer(catalog, DUCKDB, settings).context(res))
    runner.run(con, "silver/checked", **_checked(catalog, res, settings))
    return con.sql(f"""select {', '.join(silver_schema(res).names)} from checked where _failed = ''
        qualify row_number() over (partition by {', '.join(res.key)} order by _received_at desc, _row_number desc) = 1
        """).to_arrow_table().cast(silver_schema(res))


@pytest.fixture(scope="module")
def city_silver(city) -> dict[str, pa.Table]:
    """The city's silver (DuckDB)."""
    catalog = get_catalog(city.catalog_dir)
    con = storage.connect(city)
    try:
        _reference_tables(con, catalog)
        out = {}
        for res in catalog.resources.values():
            con.register(f"bronze_{res.slug}", _bronze(city, res))
            out[res.code] = _silver(con, catalog, res, city)
        return out
    finally:
        con.close()


def _silver_table(catalog: Catalog, code: str, rows: list[dict], received: dt.datetime) -> pa.Table:
    res = catalog.resource(code)
    lineage = [{"_source": f"inbox/{res.slug}.csv", "_row_number": i + 1, "_batch_id": "b1", "_received_at": received,
                "_dept": res.provider} | row for i, row in enumerate(rows)]
    return pa.Table.from_pylist(lineage, schema=silver_schema(res))


def hand_made_silver(catalog: Catalog) -> dict[str, pa.Table]:
    """The hand-made rows of test_gold, test_credit, test_conflicts and test_population, as one silver (keys do
    not collide)."""
    gold_amr_e4 = [r for r in test_gold.AMR if r["uscc"] == test_gold.E4]
    rows = {
        "amr.enterprise": test_credit.AMR + gold_amr_e4 + test_conflicts.AMR + test_population.ENTERPRISES,
        "psb.population": test_population.PSB,
        "tax.credit_rating": test_credit.TAX + [r for r in test_gold.TAX if r["year"] != 2025] + test_conflicts.TAX,
        "hrss.social_insurance": test_credit.HRSS + test_gold.HRSS + test_conflicts.HRSS,
        "court.dishonest": test_credit.COURT + test_population.COURT,
        "credit.penalty": test_credit.PENALTIES + test_gold.PENALTIES + test_population.PENALTIES + [
            test_credit.ee_penalty("Q7", dt.date(2026, 6, 1), status="无效")],
        "credit.license": test_gold.LICENSES + [test_gold._license("L1"), test_gold._license("L2", status=None)],
        "credit.repair": [test_credit.repair("Q2", dt.date(2026, 8, 1)),
                          test_credit.repair("Q3", dt.date(2026, 11, 10)),
                          test_credit.repair("Q9", dt.date(2026, 11, 1)),
                          test_credit.repair("Q7", dt.date(2026, 11, 2)) | {"subject_name": None}],
    }
    return {code: _silver_table(catalog, code, rows.get(code, []), test_credit.RECEIVED) for code in catalog.resources}


def _objection(n: int, item: str, entity: str, state: str, *, outcome=None, disputed=None, corrected=None,
               resolved=None) -> dict:
    at = dt.datetime(2026, 11, 1, 9, n, tzinfo=dt.UTC)
    return {"objection_id": f"OBJ-{n}", "conflict_id": f"c{n}", "resource": "amr.enterprise", "item": item,
            "entity_key_type": "uscc", "entity_key": entity, "disputed_value": disputed, "corrected_value": corrected,
            "state": state, "outcome": outcome, "disputed": state in ("accepted", "verified"), "raised_by": "dsj",
            "raised_at": at, "updated_by": "dsj", "updated_at": at, "resolved_at": resolved, "last_reason": None,
            "steps": 1}


E1, E2 = test_gold.E1, test_gold.E2
HAND_OBJECTIONS = [
    # applied: the authority still holds the disputed value (the later of two corrections wins)
    _objection(1, "name", E1, "resolved", outcome="resolved", disputed="济南甲有限公司", corrected="济南甲集团",
               resolved=dt.datetime(2026, 11, 2, tzinfo=dt.UTC)),
    _objection(2, "name", E1, "resolved", outcome="resolved", disputed="济南甲有限公司", corrected="济南甲股份有限公司",
               resolved=dt.datetime(2026, 11, 3, tzinfo=dt.UTC)),
    _objection(3, "reg_capital", E1, "resolved", outcome="resolved", disputed="100.0000", corrected="120.5",
               resolved=dt.datetime(2026, 11, 3, tzinfo=dt.UTC)),
    # stale: the authority's value changed since
    _objection(4, "address", E2, "resolved", outcome="resolved", disputed="旧地址", corrected="新地址",
               resolved=dt.datetime(2026, 11, 3, tzinfo=dt.UTC)),
    _objection(5, "legal_rep", E1, "accepted"), _objection(6, "address", E1, "verified"),
    _objection(7, "status", E2, "raised"), _objection(8, "status", E2, "rejected", outcome="rejected"),
]


# ---- the models --------------------------------------------------------------------------------------


def on_spark(test):
    """A test that runs queries on the session's Spark (seconds each on 2 cores)."""
    return pytest.mark.spark(pytest.mark.slow(test))


@on_spark
@pytest.mark.parametrize("code", sorted(get_catalog().resources))
def test_standardize_rules_and_contest_agree(code, city, engines):
    """Staging, the rules, the quarantine's hashes and the silver contest of one resource."""
    catalog = get_catalog(city.catalog_dir)
    res = catalog.resource(code)
    bronze = _bronze(city, res)
    assert bronze.num_rows >= 20
    con, twin = engines.duck, TwinRunner(engines)
    _reference_tables(con, catalog)
    engines.put(f"bronze_{res.slug}", bronze)
    twin.run(con, "staging/standardize", into=f"stg_{res.slug}", kind="view",
             **StagingRenderer(catalog, DUCKDB, city).context(res))
    twin.run(con, "silver/checked", temp=False, **_checked(catalog, res, city))
    _flagged(as_compute(con), twin, res, as_compute(con).count("checked"))
    _quarantine_duplicates(as_compute(con), twin, None, res, {}, rebuild=True)
    # silver before the run (one row per key): every other valid row, half of them newer than the new
    # one (they win)
    columns = ", ".join(c for c in silver_schema(res).names if c != "_received_at")
    con.execute(f"""create temp table silver_current as
        select {columns}, case when _row_number % 4 = 0 then _received_at + interval 1 day
                               else _received_at - interval 1 day end as _received_at
        from checked where _failed = '' and _row_number % 2 = 0
        qualify row_number() over (partition by {', '.join(res.key)} order by _row_number) = 1""")
    counts = _contest(as_compute(con), twin, res, silver=True)
    assert twin.ran == list(RESOURCE_MODELS)
    assert counts.rows == bronze.num_rows and counts.quarantined and counts.candidates and counts.matched, counts


CASES = ("city", "hand-made")
RESOURCE_MODELS = ("staging/standardize", "silver/checked", "silver/flagged", "silver/failing_hash", "silver/resent",
                   "silver/repeated_keys", "silver/candidates", "silver/contest", "silver/dropped", "silver/upserts")
"""What test_standardize_rules_and_contest_agree runs, for each resource."""
LAKE_MODELS = ("governance/open_objections", "governance/disputes", "governance/corrections",
               "governance/comparisons", "gold/penalty_subjects", "gold/penalty_subjects",
               "gold/int_entity_attributes", "gold/legal_entity", "gold/population",
               "gold/person_profile", "gold/penalty_record",
               "gold/license_record", "gold/credit_repair_review", "gold/penalty_totals", "gold/penalty_totals",
               "gold/enterprise_credit_profile", "theme/market_region_industry")
"""What test_governance_gold_and_credit_models_agree runs."""


def test_every_model_is_run_on_both_engines():
    models = {str(p.relative_to(SQL_DIR)).removesuffix(".j2").removesuffix(".sql") for p in SQL_DIR.rglob("*.sql*")}
    assert models == {*RESOURCE_MODELS, *LAKE_MODELS}


@on_spark
@pytest.mark.parametrize("case", CASES)
def test_governance_gold_and_credit_models_agree(case, city_silver, engines):
    """The objection views, the 一数一源 comparisons, the 法人库, the credit models and the model-built theme, as
    the gold, credit and themes steps run them on a rebuild."""
    settings = engines.settings
    catalog = get_catalog(settings.catalog_dir)
    con, twin = engines.duck, TwinRunner(engines)
    for code, table in (city_silver if case == "city" else hand_made_silver(catalog)).items():
        engines.put(f"silver_{catalog.resource(code).slug}", table)
    objections = [] if case == "city" else HAND_OBJECTIONS
    engines.put("governance_objections", pa.Table.from_pylist(objections, schema=OBJECTIONS))

    def one(sql: str, *params) -> set:
        return {r[0] for r in con.execute(sql, list(params)).fetchall()}

    twin.run(con, "governance/open_objections", into="governance_open_objections", kind="view",
             open_states=sorted(OPEN_STATES))
    twin.run(con, "governance/disputes", into="governance_disputes", kind="view")
    twin.run(con, "governance/corrections", into="governance_corrections", kind="view")
    twin.run(con, "governance/comparisons", **comparisons_context(conflict_plan(catalog)))
    # silver's penalties summed as the gold step keeps them: half of the rows counted, then the other half counted
    # into that summary, with some of the first half counted out and in again (a file rewritten) and some given
    # again as candidates for their group's latest row
    reads = ", ".join(SUMMARY_READS)
    con.execute(f"create temp table penalty_rows as select {reads}, 1 as _sign from silver_credit_penalty "
                "where _row_number % 2 = 0")
    con.execute(f"create temp table penalty_subjects_before as select {', '.join(SUMMARY_COLUMNS)}, false as _stale "
                "from (select *, cast(0 as bigint) as penalties, cast(0 as decimal(38, 4)) as fine_total, "
                "cast(0 as bigint) as fined from penalty_rows) as r where false")
    for name in ("penalty_subjects_before", "penalty_rows"):
        engines.share(name)
    twin.run(con, "gold/penalty_subjects", into="half_subjects")
    con.execute("create or replace temp table penalty_subjects_before as select *, false as _stale from half_subjects")
    con.execute(f"""create or replace temp table penalty_rows as
        select {reads}, 1 as _sign from silver_credit_penalty where _row_number % 2 <> 0
        union all select {reads}, -1 from silver_credit_penalty where _row_number % 4 = 0
        union all select {reads}, 1 from silver_credit_penalty where _row_number % 4 = 0
        union all select {reads}, 0 from silver_credit_penalty where _row_number % 8 = 2""")
    for name in ("penalty_subjects_before", "penalty_rows"):
        engines.share(name)
    twin.run(con, "gold/penalty_subjects")
    assert one("select sum(penalties) from penalty_subjects") == one("select count(*) from silver_credit_penalty")
    for name in ("int_entity_attributes", "legal_entity", "population", "person_profile"):
        twin.run(con, f"gold/{name}", **model_context(name, catalog))

    # the credit step's rebuild (govlake.credit._build): inputs, records, repairs, profiles
    rules = load_credit_rules(settings.catalog_dir)
    ctx = context(rules, AS_OF)
    for kind in KINDS:
        _inputs(as_compute(con), SimpleNamespace(settings=settings), kind, AS_OF, True)
    _deadlines(as_compute(con), rules)
    for kind in KINDS:
        twin.run(con, f"gold/{kind.record}", into=f"new_{kind.record}", **ctx)
        con.execute(f"create view {kind.record} as select * from new_{kind.record}")
    con.execute("""create temp table repair_input as select * from silver_credit_repair as r
        qualify row_number() over (partition by uscc, decision_no order by _received_at desc) = 1""")
    twin.run(con, "gold/credit_repair_review", into="new_credit_repair_review", **ctx)
    con.execute("""create temp table affected_uscc as select distinct uscc from (
        select uscc from legal_entity union all select uscc from penalty_record
        union all select uscc from license_record union all select uscc from silver_court_dishonest
        ) as t where uscc is not null""")
    # the penalties' totals: every record counted (a rebuild), then a day's files counted out and in (here every
    # published record out, and in again as expired), from the totals so far
    columns = "uscc, penalty_category, severity, publicity_status, fine_amount, confiscated_amount"
    con.execute(f"create temp table penalty_record_rows as select {columns}, 1 as _sign from penalty_record")
    con.execute("create temp table penalty_totals_before as select uscc, penalty_category, severity, publicity_status, "
                "cast(0 as bigint) as penalties, cast(0 as decimal(38, 4)) as amount from penalty_record where false")
    twin.run(con, "gold/penalty_totals", into="penalty_totals", **ctx)
    con.execute("create or replace temp table penalty_totals_before as select * from penalty_totals")
    con.execute(f"""create or replace temp table penalty_record_rows as
        select {columns}, -1 as _sign from penalty_record where publicity_status = '公示中'
        union all
        select uscc, penalty_category, severity, '已到期' as publicity_status, fine_amount, confiscated_amount, 1
        from penalty_record where publicity_status = '公示中'""")
    for name in ("penalty_totals_before", "penalty_record_rows"):
        engines.share(name)
    twin.run(con, "gold/penalty_totals", into="moved_totals", **ctx)
    assert one("select distinct publicity_status from penalty_totals") >= {"公示中", "已到期"}
    assert "公示中" not in one("select distinct publicity_status from moved_totals")
    assert one("select sum(penalties) from moved_totals") == one("select sum(penalties) from penalty_totals")
    twin.run(con, "gold/enterprise_credit_profile", into="new_enterprise_credit_profile", **ctx)
    # the themes step: the model-built theme libraries over the credit theme's tables
    con.execute("create view gold_enterprise_credit_profile as select * from new_enterprise_credit_profile")
    twin.run(con, "theme/market_region_industry")
    assert twin.ran == list(LAKE_MODELS)

    # the inputs reach the models' branches
    assert one("select agrees from comparisons") >= {True}
    assert {"公示中", "已到期", "已修复"} <= one("select publicity_status from new_penalty_record")
    assert one("select outcome from new_credit_repair_review") == {"accepted", "rejected"}
    assert one("select len(penalties_by_category) > 1 from new_enterprise_credit_profile") >= {True}
    if case == "hand-made":
        assert one("select agrees from comparisons") == {True, False}  # the city's copies all agree
        assert {"已撤销", "不予公示"} <= one("select publicity_status from new_penalty_record")
        corrected = dict(con.execute("select uscc, corrected_attributes from int_entity_attributes").fetchall())
        assert corrected[E1] == "name;reg_capital"
        assert one("select disputed_attributes from int_entity_attributes where uscc = ?", E1) == {"address;legal_rep"}
        # 人口库: a person known only from a copy, flagged; 一人一档: two registry roles, the court's list
        assert "name" in one("select attrs_from_non_authority from population where not in_population_register")
        assert one("select legal_rep_count from person_profile") >= {0, 2}
        assert one("select dishonest_listed from person_profile") == {True, False}


# ---- what the dialect layer translates ----------------------------------------------------------------

TEXTS = ["", " ", "abc", "aXbXc", "a.b\nc", "a\rb", "x\u2028y", "line\n", "中文字", "𠮷野家", "济南市历下区泉城路1号",
         "Ａ１２３", "12 34", "1\u000b2", "a\\b", "100%", "a_b", "$1.50", "中a中", "a中b", "word中1", "AbC",
         "a;b;;c;", ";", "a&&b", "[x]", None]
DATES = ["2026-01-05", "2026-1-5", " 2026-01-05", "2026-01-05 ", "\t2026-1-5\n", "2026/1/5", "2026.1.5", "2026年1月5日",
         "2026 年1月5日", "20260105", "2026111", "202611", "202611111", "26-1-5", "0026-01-05", "12026-1-5",
         "2026-02-30", "2026-13-01", "2026-0-5", "+2026-01-01", "-2026-01-05", "2026- 1-5", "2026-01-05\u3000",
         "2026-01-05 01:02:03", "2026-01-05  01:02:03", "2026-01-05\t1:2:3", "2026-01-0501:02:03",
         "2026-01-05 01:02:03.5", "2026-01-05 01:02:03.123456", "2026-01-05 01:02:03.1234567", "2026-01-05 01:02:03.",
         "2026-1-5T1:2:3", "2026-01-05T 01:02:03", "2026-01-05 1:2", "2026-01-05 24:00:00", "2026-01-05 01:60:00",
         "20260105010203", "2026.01.05 01:02:03", "2026/01/05 01:02:03", "45000", "45000.0", "abc", None]
FORMATS = ["%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y%m%d", "%Y.%m.%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
           "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S.%f", "%Y%m%d%H%M%S", "%Y/%m/%d %H:%M:%S", "%Y.%m.%d %H:%M:%S"]
NUMBERS = [Decimal("2.5"), Decimal("3.5"), Decimal("-2.5"), Decimal("0.5"), Decimal("1.4999"), Decimal("-0.5"),
           Decimal("12345.6789"), Decimal(0), None]

TEXT_EXPRESSIONS = {
    # regexp_replace: the first match, every match (g), case-insensitive (i), groups and the whole match
    "first": r"regexp_replace(x, 'b|X', '_')",
    "all": r"regexp_replace(x, 'b|X', '_', 'g')",
    "first_i": r"regexp_replace(x, 'x', '<\0>', 'i')",
    "all_i": r"regexp_replace(x, 'x', '<\0>', 'gi')",
    "groups": r"regexp_replace(x, '([a-z])([A-Z])', '\2\1$\\', 'g')",
    "empty_match": r"regexp_replace(x, 'q*', '-', 'g')",
    "empty_first": r"regexp_replace(x, 'q*', '-')",
    "dot": r"regexp_replace(x, '.', '.', 'g')",
    "dollar": r"regexp_replace(x, '.$', '!')",
    "space": r"regexp_replace(x, '\s', '_', 'g')",
    "not_space": r"regexp_replace(x, '\S+', 'w')",
    "boundary": r"regexp_replace(x, '\b', '|', 'g')",
    "han": r"regexp_replace(x, '\p{Han}+', 'H', 'g')",
    "class": r"regexp_replace(x, '[[&]+', '#', 'g')",
    "named": r"regexp_replace(x, '(?P<d>[0-9])', '<\1>', 'g')",
    "matches": r"regexp_matches(x, '^[a-z]+$')",
    "matches_i": r"regexp_matches(x, 'abc', 'i')",
    "full_match": r"regexp_full_match(x, '[^\n]+')",
    "extract": r"regexp_extract(x, '([a-z])[^a-z]*$')",
    "extract_1": r"regexp_extract(x, '([a-z])([A-Z])?', 2)",
    # Chinese text: characters, not bytes or UTF-16 units
    "length": "length(x)",
    "bytes": "strlen(x)",
    "left": "left(x, 2)",
    "substr": "substr(x, 2, 2)",
    "upper": "upper(x)",
    "translate": "translate(x, 'Ａ１２３', 'A123')",
    "trim": "trim(x, ' \t\r\n\u3000')",
    "split": "string_split(x, ';')",
    "unnest": "list_filter(string_split(x, ';'), v -> v <> '')",
    "like": r"x like 'a\b'",
    "like_wild": "x like '%\\_%' or x like '1%'",
    "concat": "concat(';', x, ';')",
    "pipes": "'<' || x || '>'",
    "concat_ws": "concat_ws(';', x, null, 'z')",
    "hash": "md5(to_json(list_value(x, 'a\"b')))",
    "sha": "left(sha256(coalesce(x, '')), 16)",
    # a '0x'-prefixed string cast to a number is hexadecimal in DuckDB; conv on Spark
    "hexadecimal": "('0x' || left(md5(coalesce(x, '')), 15))::bigint",
    "key_hash": storage.key_hash_sql(["x", "i"]),
}
NUMBER_EXPRESSIONS = {
    "decimal_cast_to_int": "cast(cast(n as decimal(18, 4)) as integer)",
    "double_to_int": "cast(cast(n as double) as bigint)",
    "int_division": "cast(n * 10000 as bigint) // 3",
    "division": "cast(n * 10000 as bigint) / 8",
    "round": "round(n, 2)",
    "decimal_text": "try_cast(cast(n as varchar) || '5' as decimal(18, 4))",
    "text": "cast(n as varchar)",
}


@pytest.fixture(scope="module")
def constructs(spark, tmp_path_factory):
    eng = Engines(spark, Settings(var=tmp_path_factory.mktemp("constructs")), tmp_path_factory.mktemp("c-parquet"))
    eng.put("texts", pa.table({"i": range(len(TEXTS)), "x": TEXTS}))
    eng.put("dates", pa.table({"i": range(len(DATES)), "x": DATES}))
    eng.put("numbers", pa.table({"i": range(len(NUMBERS)), "n": pa.array(NUMBERS, pa.decimal128(18, 4))}))
    yield eng
    eng.close()


def _agree(eng: Engines, what: str, sql: str) -> pa.Table:
    duck = eng.duck.sql(sql).to_arrow_table()
    assert_same_rows(what, duck, eng.spark.sql(to_spark(sql, eng.columns)).toArrow())
    return duck


@on_spark
def test_text_functions_agree(constructs):
    _agree(constructs, "text functions",
           "select i, x, " + ", ".join(f"{e} as {n}" for n, e in TEXT_EXPRESSIONS.items()) + " from texts")


@on_spark
def test_date_parsing_agrees(constructs):
    parsed = _agree(constructs, "try_strptime", "select i, x, " + ", ".join(
        f"try_strptime(x, '{f}') as f{n}" for n, f in enumerate(FORMATS)) + ", " + DUCKDB.excel_serial_to_date(
        "case when regexp_full_match(x, '[1-9][0-9]{4}(\\.0+)?') then x end") + " as serial, "
        "strftime(try_strptime(x, '%Y-%m-%d'), '%Y-%m-%d') as formatted from dates")
    assert sum(v is not None for c in parsed.columns[2:] for v in c.to_pylist()) >= 30


@on_spark
def test_numbers_agree(constructs):
    _agree(constructs, "numbers",
           "select i, n, " + ", ".join(f"{e} as {n}" for n, e in NUMBER_EXPRESSIONS.items()) + " from numbers")


@on_spark
def test_lists_and_ordering_agree(constructs):
    """Ordered and unordered list aggregates (nulls kept), string_agg, list functions, null ordering."""
    _agree(constructs, "lists", """
        select i % 3 as g,
            list(x order by x desc nulls last, i) as desc_nulls_last,
            list(x order by x nulls first) as asc_nulls_first,
            list_sort(list(x)) as sorted,
            string_agg(x, '|' order by i desc) as joined,
            count(*) filter (where x is null) as nulls,
            bool_or(x like '%a%') as some_a,
            arg_min(x, i) as first_x,
            list_sum(list_transform(list(i), v -> cast(v as double) * 1.5)) as total,
            [v * 2 for v in list(i order by i) if v % 2 = 0] as even_doubled,
            [s for s in list(struct_pack(x, i) order by i) if s.x is not null] as present,
            list(struct_pack(x, i) order by length(x) desc, x) as structs_by_length,
            list_has_any(list(x), ['abc', 'zzz']) as has_any,
            list_has_all(list(x), ['abc']) as has_all,
            list_contains(list(i), 0) as has_zero
        from texts group by all""")
    _agree(constructs, "null ordering", """
        select i, x, row_number() over (order by x, i) as asc_rank, row_number() over (order by x desc, i) as desc_rank
        from texts qualify row_number() over (partition by x is null order by i desc) <= 20""")


@on_spark
def test_star_modifiers_and_joins_agree(constructs):
    _agree(constructs, "* exclude / * replace / semi join / union by name", """
        with t as (select * exclude (i), i * 2 as j, i from texts)
        select t.* replace (coalesce(t.x, '?') as x) from t semi join numbers using (i)
        union all by name select 'n' as x, i, i as j from numbers""")


MASKED = {
    "id_number": [test_masking.ID, "37010219900307X", "E12345678", "1234567890", "𠮷𠮷𠮷𠮷𠮷𠮷𠮷𠮷𠮷𠮷𠮷𠮷𠮷𠮷𠮷"],
    "phone": ["13812345678", "+8613812345678", "88886666"],
    "person_name": ["张三", "欧阳修", "张", "𠮷田"],
    "address": ["山东省济南市历下区泉城路1号", "济南市市中区经四路12号", "泉城路12号",
                "内蒙古自治区呼和浩特市新城区1号"],
    "bank_account": ["6222020200112233445", "12345"],
    "health": ["高血压"],
}
FREE_TEXT = [f"当事人孙八（身份证号{test_masking.ID}，电话13812345678）露天焚烧垃圾", "身份证37010219900307123x。",
             "３７０１０２１９９００３０７１２３Ｘ", "旧证370102900307123号", "电话+86 138 1234 5678",
             "（+86）188－1234－5678",
             "两个：13812345678、13912345678", "罚款3900元，2024年5月9日", "座机0531-88886666", "a\n13812345678\r\nb"]


@on_spark
@pytest.mark.parametrize("pii", MASKED)
def test_masking_sql_agrees(pii, constructs):
    """The extract's masking SQL (govlake.masking), public and personal rows, and the free-text scrub."""
    values = MASKED.get(pii, []) + TEXTS
    categories = test_masking.PUBLIC + test_masking.PERSONAL
    rows = [{"x": v, "subject_type": t} for v in values for t in categories[::3]] + [
        {"x": t, "subject_type": None} for t in FREE_TEXT]
    name = f"masking_{pii}"
    schema = pa.schema([("x", pa.string()), ("subject_type", pa.string())])
    constructs.put(name, pa.Table.from_pylist(rows, schema=schema))
    item = test_masking.item(pii, public_when={"subject_type": ["法人及非法人组织", "法人"]})
    _agree(constructs, f"masking {pii}",
           f"select x, subject_type, {mask_sql(item, 'x')} as released, {scrub_sql('x')} as scrubbed from {name}")


@on_spark
def test_code_table_checks_agree(constructs):
    """The rule pack's checks against a code table (a 身份证号's county, a region code), which the checked model
    evaluates inside a projection: flagged rows and unflagged ones, nulls, on both engines."""
    from govlake.quality._checks import known_id_number_county, valid_region_code
    from test_rule_pack import PERSON, UNKNOWN_COUNTY

    constructs.put("codes", pa.table({"code": ["110105", "370102"]}))
    ids = [PERSON, UNKNOWN_COUNTY, PERSON[:17] + "0", None, "370102", "990101", ""]
    constructs.put("ids", pa.table({"i": range(len(ids)), "x": ids}))

    def checks(d):
        return {"county": known_id_number_county(column="x", codes_table="codes", d=d),
                "county_inline": known_id_number_county(column="x", d=d),
                "region": valid_region_code(column="x", codes_table="codes", d=d),
                "region_inline": valid_region_code(column="x", d=d)}

    def sql(d):
        return "select i, " + ", ".join(f"case when {c} then '{n}' end as {n}" for n, c in checks(d).items()) + \
            " from ids order by i"

    assert "not exists" in sql(SPARK) and "not exists" not in sql(DUCKDB)   # each engine's own form (Dialect)
    flagged = constructs.duck.sql(sql(DUCKDB)).to_arrow_table()
    assert_same_rows("code-table checks", flagged,
                     constructs.spark.sql(to_spark(sql(SPARK), constructs.columns)).toArrow())
    flagged = flagged.to_pylist()
    assert [r["i"] for r in flagged if r["county"]] == [1]       # a valid number of an unknown county
    assert [r["i"] for r in flagged if r["region"]] == [0, 1, 2, 5, 6]


# ---- the dialect layer's rewrites, without Spark -------------------------------------------------------


@pytest.mark.parametrize(("re2", "java"), [
    (r"a.b$", r"a[^\n]b\z"),
    (r"\s+|\S", r"[\t\n\f\r ]+|[^\t\n\f\r ]"),
    (r"[\s\x{00A0}]+", r"[\t\n\f\r \x{00A0}]+"),
    (r"[]a[&&]", r"[\]a\[\&\&]"),
    (r"(?P<y>[0-9]{4})\p{Han}\pL\p{^Greek}", r"(?<y>[0-9]{4})\p{IsHan}\p{L}\P{IsGreek}"),
    (r"(?i)ab(?:c)", r"(?iu)ab(?:c)"),
    (r"\Q.$\E.", r"\Q.$\E[^\n]"),
])
def test_regexes_are_written_for_java(re2, java):
    from govlake.transform._dialect import java_regex

    assert java_regex(re2) == java


@pytest.mark.parametrize("unsupported", ["[[:alpha:]]", "(?s).", "[\\S]", "a\\C"])
def test_regex_syntax_without_a_translation_is_refused(unsupported):
    with pytest.raises(ValueError):
        to_spark(f"select regexp_matches(x, '{unsupported}') from t")


def test_spark_sql_has_no_duckdb_only_constructs():
    sql = to_spark("""select list_sum(list_transform(a, f -> f.p)) as s,
        list_has_all(['x'], list_filter(string_split(c, ';'), v -> v <> '')) as h,
        list_has_any(string_split(c, ';'), ['y']) as o, regexp_full_match(c, '[0-9]+') as m,
        try_strptime(c, '%Y%m%d') as d, regexp_replace(c, '(a)(b)', '\\2$\\1', 'g') as r,
        regexp_replace(c, 'a', '\\0\\0') as r1 from t""")
    for duckdb_only in ("LIST_", "&&", "REGEXP_FULL_MATCH", "STRPTIME", "'g'"):
        assert duckdb_only not in sql
    assert "c RLIKE '^(?:[0-9]+)\\\\z'" in sql and "'yyyy" not in sql and "'y-M-d'" in sql
    assert "'$2\\\\$$1'" in sql  # groups as $n, a literal dollar escaped (and the backslash for Spark's literal)
    assert "REGEXP_REPLACE(c, '^([\\\\s\\\\S]*?)(a)', '$1$2$2')" in sql  # the first match only


def test_duckdb_s_cte_hints_are_left_to_spark_s_planner():
    """``as [not] materialized`` (penalty_record's) is DuckDB's: Spark's SQL has no such hint."""
    assert to_spark("with a as not materialized (select 1 as x), b as materialized (select x from a) "
                    "select * from a join b using (x)", pretty=False) == (
        "WITH a AS (SELECT 1 AS x), b AS (SELECT x FROM a) SELECT * FROM a JOIN b USING (x)")


def test_temp_tables_become_replaceable_views():
    assert to_spark("create or replace temp table x as select 1 as a", pretty=False) == (
        "CREATE OR REPLACE TEMPORARY VIEW x AS SELECT 1 AS a")


def test_semi_joins_using_keep_the_left_columns_in_order():
    sql = to_spark("select * from a semi join b using (k)", pretty=False)
    assert sql == "SELECT * FROM a SEMI JOIN b ON a.k = b.k"


def test_star_modifiers_need_the_inputs_columns():
    model = ("select t.* replace (coalesce(t.s, 'x') as s) from t "
             "qualify row_number() over (partition by k order by s) = 1")
    with pytest.raises(ValueError, match="pass schema"):
        to_spark(model)
    sql = to_spark(model, {"t": {"k": "int", "s": "string", "v": "int"}}, pretty=False)
    assert sql.startswith("SELECT t.k AS k, COALESCE(t.s, 'x') AS s, t.v AS v FROM t AS t QUALIFY ROW_NUMBER()"), sql
    assert to_spark("select * exclude (a) from t qualify a = 1", pretty=False) == (
        "SELECT * EXCEPT (a) FROM t QUALIFY a = 1")
    by_name = to_spark("select a, b from t union all by name select b, c from u", pretty=False)
    assert by_name == "SELECT a, b, NULL AS c FROM t UNION ALL SELECT NULL AS a, b, c FROM u"


@on_spark
@pytest.mark.parametrize("new_repairs", [0, 1])
def test_the_repair_input_when_the_repair_feed_sent_nothing(spark, new_repairs):
    """The credit step's repair input (credit._build.repair_input_sql) over empty relations — a city whose repair
    feed has sent nothing yet, or only new applications — gives the same rows on both engines. Spark 4.2's
    optimizer failed here (RemoveRedundantAliases left an unresolved plan) until SPARK_CONF excluded the rule."""
    import duckdb

    from govlake.compute import SparkCompute
    from govlake.credit._build import repair_input_sql

    catalog = get_catalog()
    repair, penalty = (silver_schema(catalog.resource(c)) for c in ("credit.repair", "credit.penalty"))
    changed = pa.Table.from_pylist([{"uscc": "91370100MA3C000001", "decision_no": "济罚〔2026〕1号",
                                     "_received_at": dt.datetime(2026, 11, 20, 1)}] * new_repairs, schema=repair)
    inputs = {"changed_credit_repair": changed, "silver_credit_repair": repair.empty_table(),
              "penalty_input": pa.Table.from_pylist([{"uscc": "91370100MA3C000001", "decision_no": "济罚〔2026〕2号"}],
                                                    schema=penalty)}
    results = []
    for con in (as_compute(duckdb.connect()), SparkCompute(spark.newSession())):
        for name, table in inputs.items():
            con.register_arrow(name, table)
        con.create("repair_input", repair_input_sql(rebuild=False))
        results.append(con.arrow("select * from repair_input"))
    assert results[0].num_rows == new_repairs
    assert_same_rows("repair_input", *results)
