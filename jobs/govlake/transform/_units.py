"""The unit tests of the model ymls: given rows in, expected rows out, on DuckDB in memory.

Each test gives rows per input relation, naming only the columns it needs; the other columns are
null, typed by the relation's schema: a silver table's contract (``schemas``, from
govlake.contracts), the yml's ``inputs`` (``like`` a relation, or ``columns`` with SQL types), or,
for a published table another model builds, that model's output. An input a test does not give is
empty. The model (after its ``upstream`` models) runs through the model runner, key tests included;
the rows it produces, reduced to the columns the test expects, must be the expected rows, in any
order.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from govlake.transform._models import ModelError, ModelRunner
from govlake.transform._specs import Spec, UnitTest

Context = Callable[[str, Mapping[str, Any]], dict]
"""``context(model, params)``: what ``model`` is rendered with, given a test's ``context`` params."""


def run_unit_test(spec: Spec, test: UnitTest, *, runner: ModelRunner, specs: Mapping[str, Spec],
                  schemas: Mapping[str, pa.Schema], context: Context) -> list[str]:
    """Run one unit test of ``spec``; returns what went wrong (empty when it passes).

    Args:
        spec: the yml holding the test.
        test: one of ``spec.spec.unit_tests``.
        runner: the model runner (its ``sql/`` folder).
        specs: every yml (a published table another model reads is built from its yml's model).
        schemas: the schemas of the silver tables, by relation name (``silver_<slug>``).
        context: what each model is rendered with, from the test's ``context``.
    """
    t = spec.spec.unit_tests.index(test)
    where = f"{spec.where('unit_tests', t)}: {spec.model} unit test {test.name!r}"
    session = _Session(runner, specs, schemas, context, test.context)
    con = session.connect()
    try:
        read = session.run(con, spec, given=test.given)
        problems = [f"{where}: given {name!r} is not read by {spec.model} or its upstream models"
                    for name in test.given if name not in read]
        columns = list(test.expect[0]) if test.expect else []
        target = spec.model.rsplit("/", 1)[-1]
        if not columns:  # expect: [] — no rows
            n = con.execute(f"select count(*) from {target}").fetchone()[0]
            return problems + ([f"{where}: expected no rows, got {n}"] if n else [])
        rows = con.execute(f"select {', '.join(columns)} from {target}").fetchall()
        produced = [dict(zip(columns, row)) for row in rows]
        diff = _difference(test.expect, produced)
        if diff:
            problems.append(f"{where}: rows differ\n" + "\n".join(diff))
        return problems
    except (ModelError, duckdb.Error, _GivenError) as exc:
        return [f"{where}: {exc}"]
    finally:
        con.close()


def output_columns(spec: Spec, *, runner: ModelRunner, specs: Mapping[str, Spec], schemas: Mapping[str, pa.Schema],
                   context: Context, params: Mapping[str, Any]) -> list[str]:
    """The columns ``spec``'s model produces, run on empty inputs."""
    session = _Session(runner, specs, schemas, context, params)
    con = session.connect()
    try:
        session.run(con, spec, given={})
        return con.sql(f"select * from {spec.model.rsplit('/', 1)[-1]}").columns
    finally:
        con.close()


class _GivenError(ValueError):
    """Given rows do not fit their relation."""


class _Session:
    """Builds a model's inputs and runs it (with its upstream models) on a connection."""

    def __init__(self, runner: ModelRunner, specs: Mapping[str, Spec], schemas: Mapping[str, pa.Schema],
                 context: Context, params: Mapping[str, Any]):
        self.runner, self.specs, self.schemas, self.context, self.params = runner, specs, schemas, context, params
        self._outputs: dict[str, dict[str, str]] = {}

    @staticmethod
    def connect() -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        con.execute("set TimeZone = 'UTC'")
        return con

    def run(self, con: duckdb.DuckDBPyConnection, spec: Spec, *, given: Mapping[str, list[dict]]) -> set[str]:
        """Create the inputs of ``spec``'s upstream models and model, run them; returns the relations read."""
        read: set[str] = set()
        for model in [*spec.spec.upstream, spec.model]:
            ctx = self.context(model, self.params)
            rendered = self.runner.render(model, **ctx)
            for name in rendered.inputs:
                read.add(name)
                if not _exists(con, name):
                    self._create(con, name, self.columns(spec, name), given.get(name, []))
            self.runner.run(con, model, **ctx)
        return read

    def columns(self, spec: Spec, name: str) -> dict[str, str]:
        """Column → DuckDB type of input relation ``name`` of ``spec``'s model."""
        declared = spec.spec.inputs.get(name)
        if declared is not None and declared.columns is not None:
            return dict(declared.columns)
        if declared is not None and declared.like is not None:
            return self.columns(spec, declared.like)
        if name in self.schemas:
            return _arrow_columns(self.schemas[name])
        if name in self.specs and name not in self._outputs:
            other = self.specs[name]
            con = self.connect()
            try:
                self.run(con, other, given={})
                self._outputs[name] = _table_columns(con, other.model.rsplit("/", 1)[-1])
            finally:
                con.close()
        if name in self._outputs:
            return self._outputs[name]
        raise _GivenError(f"no schema for input {name!r}: declare it under inputs: (like or columns) in "
                          f"{spec.path.name}")

    @staticmethod
    def _create(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, str], rows: list[dict]) -> None:
        con.execute(f"create temp table {name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
        for i, row in enumerate(rows):
            unknown = [c for c in row if c not in columns]
            if unknown:
                raise _GivenError(f"given {name}[{i}]: {', '.join(unknown)} not a column of {name}")
            names = list(row)
            try:
                con.execute(f"insert into {name} ({', '.join(names)}) values ({', '.join('?' * len(names))})",
                            [row[c] for c in names])
            except duckdb.Error as exc:
                raise _GivenError(f"given {name}[{i}]: {exc}") from None


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("select count(*) from (select table_name as n from duckdb_tables() union all "
                            "select view_name from duckdb_views()) where n = ?", [name]).fetchone()[0])


def _table_columns(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, str]:
    return dict(con.execute("select column_name, data_type from duckdb_columns() where table_name = ? "
                            "order by column_index", [name]).fetchall())


def _arrow_columns(schema: pa.Schema) -> dict[str, str]:
    con = duckdb.connect()
    try:
        con.register("contract", schema.empty_table())
        con.execute("create table typed as select * from contract")
        return _table_columns(con, "typed")
    finally:
        con.close()


def _norm(value: Any) -> Any:
    """A value as compared: numbers by value, times in UTC, lists and structs element-wise."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)).normalize()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, list | tuple):
        return tuple(_norm(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _norm(v)) for k, v in value.items()))
    return value


def _difference(expected: list[dict], produced: list[dict]) -> list[str]:
    """Lines naming the expected rows not produced and the produced rows not expected."""
    def key(row: dict) -> tuple:
        return tuple(_norm(v) for v in row.values())

    missing = Counter(key(r) for r in expected) - Counter(key(r) for r in produced)
    extra = Counter(key(r) for r in produced) - Counter(key(r) for r in expected)
    lines = []
    for label, rows, wanted in (("expected, not produced", expected, missing),
                                ("produced, not expected", produced, extra)):
        for row in rows:
            if wanted[key(row)] > 0:
                wanted[key(row)] -= 1
                lines.append(f"  {label}: {row}")
    return lines
