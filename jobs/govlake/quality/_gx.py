"""Great Expectations over DuckDB: the rules run as GX expectations inside the engine.

GX's SQL datasource works over duckdb-engine once DuckDB is treated like SQLite, i.e. with
one persisted connection: GX fetches query results after closing a pooled connection, and
duckdb-engine drops a cursor's rows when its connection closes, so every metric came back
empty. ``_persist_duckdb_connections`` registers the DuckDB dialect in GX's list of dialects
that keep their connection; tests/test_quality.py holds GX's counts to DuckDB's.

GX is handed a cursor of the pipeline's own in-memory DuckDB connection (SQLAlchemy
``creator``), so it validates the very table the split uses, with no copy to a file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import duckdb

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


@dataclass(frozen=True)
class GxOutcome:
    rule_id: str
    success: bool
    unexpected_count: int | None
    error: str | None


def validate_with_gx(con: duckdb.DuckDBPyConnection, table: str, rules: list[Rule], *,
                     suite_name: str) -> list[GxOutcome]:
    """Run every rule as a GX UnexpectedRowsExpectation on ``table`` of the open DuckDB database."""
    import duckdb_engine
    import great_expectations as gx
    from great_expectations import expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    _persist_duckdb_connections()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_sql(
        name="govlake_duckdb", connection_string="duckdb:///:memory:",
        kwargs={"creator": lambda: duckdb_engine.ConnectionWrapper(con.cursor())})
    asset = source.add_table_asset(name=table, table_name=table)
    batch = asset.add_batch_definition_whole_table("whole_table")
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    for rule in rules:
        suite.add_expectation(gxe.UnexpectedRowsExpectation(
            # Only the lineage columns of failing rows; braces in regexes are escaped for GX.
            unexpected_rows_query="select _batch_id, _row_number from {batch} where "
            + rule.fail_when.replace("{", "{{").replace("}", "}}"),
            description=f"{rule.id}: {rule.zh} / {rule.en}",
            meta={"rule_id": rule.id, "severity": rule.severity},
        ))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch, suite=suite))
    try:
        result = definition.run(result_format="BASIC")
    finally:
        engine = source.get_execution_engine()
        engine.close()
        engine.engine.dispose()
    outcomes = []
    for r in result.results:
        rule_id = r.expectation_config.meta["rule_id"]
        count = r.result.get("observed_value")
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
