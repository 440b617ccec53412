"""Great Expectations on the engine: the rules run as GX expectations inside DuckDB or Spark.

GX's SQL datasource works over duckdb-engine once DuckDB is treated like SQLite, i.e. with
one persisted connection: GX fetches query results after closing a pooled connection, and
duckdb-engine drops a cursor's rows when its connection closes, so every metric came back
empty. ``_persist_duckdb_connections`` registers the DuckDB dialect in GX's list of dialects
that keep their connection; tests/test_quality.py holds GX's counts to DuckDB's.

GX is handed a cursor of the pipeline's own in-memory DuckDB connection (SQLAlchemy
``creator``), so it validates the very table the split uses, with no copy to a file.

Each rule becomes one instance of the expectation class it names (``Rule.expectation``): a GX
built-in (``ExpectColumnValuesToNotBeNull``, ``ExpectColumnValuesToBeInSet`` …), one of the pack's
own classes (_expectations.py), or, for a hand-written ``fail_when``, an UnexpectedRowsExpectation.
The rule id, severity and zh/en description travel in the expectation's ``meta``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
import tempfile
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govlake.quality._checks import RAW_SQL, TODAY
from govlake.quality._rules import Rule

os.environ.setdefault("TQDM_DISABLE", "1")


class _DialectName(str):
    """A str that also answers ``.value``, as GX's dialect enum members do."""

    @property
    def value(self) -> str:
        return str(self)


def _persist_duckdb_connections() -> None:
    import great_expectations.execution_engine.sqlalchemy_execution_engine as engine

    if not any(str(d) == "duckdb" for d in engine._PERSISTED_CONNECTION_DIALECTS):
        engine._PERSISTED_CONNECTION_DIALECTS = (*engine._PERSISTED_CONNECTION_DIALECTS,
                                                 _DialectName("duckdb"))


class _Codes(dict):
    """The in-memory store of :func:`_share_compiled_templates` (a memcached client's get/set)."""

    def set(self, key: str, value: bytes, timeout: int | None = None) -> None:
        self[key] = value


def _share_compiled_templates() -> None:
    """GX's Data Docs views each make a Jinja environment of their own, so every page compiled the
    same templates again (a sixth of a process step's time): they share compiled templates, checked
    against the template's source as any Jinja bytecode cache is."""
    from great_expectations.render.view.view import DefaultJinjaView
    from jinja2 import MemcachedBytecodeCache

    if getattr(DefaultJinjaView, "_govlake_codes", None) is not None:
        return
    codes = MemcachedBytecodeCache(_Codes(), prefix="gx/")
    init = DefaultJinjaView.__init__

    def __init__(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        self.env.bytecode_cache = codes

    DefaultJinjaView.__init__ = __init__
    DefaultJinjaView._govlake_codes = codes


def import_meanwhile() -> threading.Thread:
    """Start importing Great Expectations and the rule pack's classes on a thread of its own; returns the thread,
    to be joined before GX is used. The import takes some 3.5 s of one core, once per process (every Airflow
    task is a new process); the engine releases the GIL while it computes, so the process step imports GX
    while its one pass over the rows runs (at a million rows: 1.7 s less than one after the other). An import
    that fails here fails again, with its message, where GX is used."""

    def load() -> None:
        try:
            import duckdb_engine  # noqa: F401
            import great_expectations.expectations  # noqa: F401

            from govlake.quality import _expectations  # noqa: F401
        except Exception:  # noqa: BLE001, S110 - raised again by the import where GX is used
            pass

    thread = threading.Thread(target=load, name="import great_expectations", daemon=True)
    thread.start()
    return thread


def validate_meanwhile(con, table: str, rules: list[Rule], *, suite_name: str, today: dt.date | None = None,
                       docs_dir: Path | None = None, after: threading.Thread | None = None) -> Future:
    """:func:`validate_with_gx` on a thread of its own (after ``after``, GX's import, has ended); returns the
    future of its outcomes. The caller goes on with the engine meanwhile: GX spends its time in Python (a day's
    suite: some 0.8 s of one core) and the engine releases the GIL while it computes. Over DuckDB GX gets a cursor
    made here, on the caller's thread (a DuckDB connection is not to be used by two threads at once); ``table``
    must be visible to cursors. The caller must wait for the future before it closes ``con``."""
    from govlake.compute import as_compute

    compute = as_compute(con)
    session = compute.con.cursor() if compute.name == "duckdb" else compute
    future: Future = Future()

    def validate() -> None:
        try:
            if after is not None:
                after.join()
            future.set_result(validate_with_gx(session, table, rules, suite_name=suite_name, today=today,
                                               docs_dir=docs_dir))
        except BaseException as e:  # noqa: BLE001 - raised again where the outcomes are asked for
            future.set_exception(e)
        finally:
            if session is not compute:
                session.close()

    threading.Thread(target=validate, name="great_expectations validation", daemon=True).start()
    return future


@dataclass(frozen=True)
class GxOutcome:
    rule_id: str
    success: bool
    unexpected_count: int | None
    error: str | None


LINEAGE = ["_batch_id", "_row_number"]
"""What GX returns per failing row: lineage only, never the row's (personal) data."""


def _escape(sql: str) -> str:
    return sql.replace("{", "{{").replace("}", "}}")


def expectation_for(rule: Rule, *, today: dt.date | None = None, sql_dialect: str = "duckdb") -> Any:
    """The GX expectation that checks ``rule`` (``today`` binds an ``as_of`` placeholder); its SQL, if
    any, in ``sql_dialect`` (duckdb, or spark for GX's Spark datasource)."""
    from great_expectations import expectations as gxe

    from govlake.quality._expectations import PACK, spark_query

    common = {"description": f"{rule.id}: {rule.zh} / {rule.en}",
              "meta": {"rule_id": rule.id, "severity": rule.severity, "zh": rule.zh, "en": rule.en}}
    if rule.expectation == RAW_SQL:
        query = f"select {', '.join(LINEAGE)} from {{batch}} where " + _escape(rule.fail_when)
        return gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=spark_query(query) if sql_dialect == "spark" else query, **common)
    kwargs = dict(rule.kwargs)
    if kwargs.get("as_of") == TODAY:
        if today is None:
            raise ValueError(f"{rule.id}: the run's date is needed to bind as_of")
        kwargs["as_of"] = today
    if rule.expectation in PACK:
        expectation = PACK[rule.expectation](**kwargs, report_columns=LINEAGE, sql_dialect=sql_dialect, **common)
        if TODAY not in rule.fail_when and expectation.condition != rule.fail_when:
            raise ValueError(f"{rule.id}: the expectation's SQL differs from the rule's")
        return expectation
    return getattr(gxe, rule.expectation)(**kwargs, **common)


_DATE_LITERAL = re.compile(r"date '(\d{4}-\d{2}-\d{2})'")


def _run_date(rules: list[Rule]) -> dt.date | None:
    """The business date the run bound into its date rules (quality/_process.py binds it in the
    SQL with ``bind_today``); ``as_of`` of the same rules' expectations gets the same date."""
    for r in rules:
        if r.kwargs.get("as_of") == TODAY and (m := _DATE_LITERAL.search(r.fail_when)):
            return dt.date.fromisoformat(m.group(1))
    return None


def run_suite(con, table: str, expectations: list, *, suite_name: str,
              result_format: str = "BASIC", docs_dir: Path | None = None) -> Any:
    """Validate ``table`` of the open session ``con`` (a DuckDB connection or a govlake.compute session:
    GX's SQL datasource over DuckDB, its Spark datasource over the Spark relation) with ``expectations``
    (GX objects) in an ephemeral GX context; returns GX's ExpectationSuiteValidationResult.

    With ``docs_dir`` GX also renders its Data Docs there (a checkpoint with UpdateDataDocsAction):
    one page per validation under ``validations/<suite_name>/``, kept across runs, and the latest
    run's index, pointed at the vendored Bootstrap & co. (``govlake.quality._gx_offline``) so they are
    styled with no network. No failing values are kept (``partial_unexpected_count`` 0), so the
    pages hold no personal data.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    from govlake.compute import SparkCompute, as_compute
    from govlake.quality._gx_offline import make_offline

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    _share_compiled_templates()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    compute = as_compute(con)
    params: dict = {}
    if isinstance(compute, SparkCompute):
        source = context.data_sources.add_spark(name="govlake_spark")
        batch = source.add_dataframe_asset(name=table).add_batch_definition_whole_dataframe("whole_dataframe")
        params = {"batch_parameters": {"dataframe": compute.spark.table(table)}}
    else:
        import duckdb_engine

        _persist_duckdb_connections()
        source = context.data_sources.add_sql(
            name="govlake_duckdb", connection_string="duckdb:///:memory:",
            kwargs={"creator": lambda: duckdb_engine.ConnectionWrapper(compute.con.cursor())})
        batch = source.add_table_asset(name=table, table_name=table).add_batch_definition_whole_table("whole_table")
    # Filled before it is added: added first, the suite would be stored again (serialised whole) with
    # each expectation, a quarter of a process step's time for a resource's few dozen rules. Given to the
    # constructor, not add_expectation: that compares each new expectation with every one before it, whole
    # (0.05 s of the 0.45 s a resource's few dozen rules take on a day's rows; a rule's description holds its id,
    # so no two are equal).
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch, suite=suite))
    fmt = {"result_format": result_format, "partial_unexpected_count": 0}
    try:
        if docs_dir is None:
            return definition.run(result_format=fmt, **params)
        # GX rebuilds a site from its (here ephemeral) stores and drops pages it does not know, so
        # each run renders into a scratch site whose pages are then added to the kept one.
        docs_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=docs_dir.parent, prefix=".gx-") as scratch:
            context.add_data_docs_site(site_name="govlake", site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": scratch},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
            checkpoint = context.checkpoints.add(gx.Checkpoint(
                name=f"{suite_name}_checkpoint", validation_definitions=[definition], result_format=fmt,
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["govlake"])]))
            result = next(iter(checkpoint.run(**params).run_results.values()))
            if not (docs_dir / "static").exists():
                shutil.copytree(Path(scratch) / "static", docs_dir / "static")
            # GX's pages load Bootstrap & co. from CDNs: point them at vendored copies (no network).
            make_offline(docs_dir, rendered=Path(scratch))
            for part in ("validations", "expectations"):
                shutil.copytree(Path(scratch) / part, docs_dir / part, dirs_exist_ok=True)
            shutil.copy2(Path(scratch) / "index.html", docs_dir / "index.html")   # the latest run's index
        return result
    finally:
        if not params:
            engine = source.get_execution_engine()
            engine.close()
            engine.engine.dispose()


def validate_with_gx(con, table: str, rules: list[Rule], *,
                     suite_name: str, today: dt.date | None = None, docs_dir: Path | None = None) -> list[GxOutcome]:
    """Run every rule as its GX expectation on ``table`` of the open session (a DuckDB connection or a
    govlake.compute session; rendering GX's Data Docs into ``docs_dir`` when given)."""
    from govlake.compute import as_compute

    today = today or _run_date(rules)
    dialect = as_compute(con).name
    result = run_suite(con, table, [expectation_for(rule, today=today, sql_dialect=dialect) for rule in rules],
                       suite_name=suite_name, docs_dir=docs_dir)
    outcomes = []
    for r in result.results:
        rule_id = r.expectation_config.meta["rule_id"]
        # UnexpectedRowsExpectation reports its count as observed_value; map expectations as unexpected_count.
        count = r.result.get("observed_value", r.result.get("unexpected_count"))
        error = _error_of(r.exception_info) if count is None else None
        outcomes.append(GxOutcome(rule_id, bool(r.success), int(count) if count is not None else None, error))
    return outcomes


def _error_of(info: dict) -> str:
    """GX nests exception info per metric; return the first message found."""
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return "GX returned no count"
