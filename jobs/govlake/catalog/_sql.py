"""Checks of what the catalog and the expectations paste into SQL: column names and conditions.

Item columns become unquoted identifiers in the SQL models, and ``copy_when`` and the
expectations' ``fail_when`` are pasted in as conditions. Each is checked when the catalog is loaded:
a condition is parsed with sqlglot (DuckDB dialect), must be one expression over known columns, and
is then bound by DuckDB against an empty table of those columns, which catches unknown functions and
type errors before a run would.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import lru_cache

import duckdb

SQL_TYPES = {"date": "date", "timestamp": "timestamp", "decimal": "decimal(18,4)", "integer": "bigint"}
"""DuckDB type of a typed item column by catalog type (every other type is text)."""

REFERENCE_TABLES = {"ref_region": {"code": "varchar"},
                    "ref_department": {"code": "varchar", "uscc": "varchar"},
                    "ref_uscc_valid": {"code": "varchar"},
                    "ref_uscc_org_valid": {"code": "varchar"}}
"""Reference tables a rule may read (``codes_table``, a subquery), as the validation run registers them."""


@lru_cache(maxsize=1)
def reserved_words() -> frozenset[str]:
    """DuckDB keywords that cannot be an unquoted column name (reserved and type/function keywords)."""
    con = duckdb.connect()
    rows = con.execute("select keyword_name from duckdb_keywords() "
                       "where keyword_category in ('reserved', 'type_function')").fetchall()
    con.close()
    return frozenset(r[0] for r in rows)


def column_name_problem(column: str) -> str | None:
    """Why ``column`` cannot be an item's column name, or None."""
    if column in reserved_words():
        return f"{column!r} is an SQL keyword (DuckDB reserves it); choose another column name"
    if "__" in column:
        return f"{column!r}: '__' is kept for the standardized columns (<item>__in); use a single '_'"
    return None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def condition_problem(condition: object, columns: Collection[str]) -> str | None:
    """Why ``condition`` is not one SQL condition over ``columns`` (None when it is).

    Columns of subqueries (``x in (select code from ref_region)``) are the subquery's business.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError
    from sqlglot.tokens import TokenType

    if not isinstance(condition, str) or not condition.strip():
        return "must be a non-empty SQL condition (text)"
    try:
        tokens = sqlglot.tokenize(condition, read="duckdb")
    except TokenError as exc:
        return f"does not parse: {_one_line(exc)}: {condition!r}"
    if any(t.token_type == TokenType.SEMICOLON for t in tokens) or any(t.comments for t in tokens):
        return f"must be one condition, without ';' or comments: {condition!r}"
    try:
        tree = sqlglot.parse_one(condition, dialect="duckdb")
    except ParseError as exc:
        first = exc.errors[0]["description"] if exc.errors else str(exc)
        return f"does not parse: {_one_line(first)}: {condition!r}"
    if isinstance(tree, (exp.Query, exp.DDL, exp.DML, exp.Command, exp.Block)):
        return f"must be a condition, not a statement: {condition!r}"
    unknown = sorted(_outer_columns(tree) - set(columns))
    if unknown:
        return f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in {condition!r}"
    return None


def condition_columns(condition: str) -> set[str]:
    """The columns a catalog condition reads (a valid one: :func:`condition_problem`), its subqueries' left out."""
    import sqlglot

    return _outer_columns(sqlglot.parse_one(condition, dialect="duckdb"))


def _outer_columns(tree) -> set[str]:
    from sqlglot import exp

    return {c.name for c in tree.find_all(exp.Column) if c.find_ancestor(exp.Query) is None}


class Binder:
    """An empty DuckDB table of the given columns: does a condition bind (functions, types)?

    Its own in-memory database without file access; ``close()`` it (no DuckDB connection is kept
    between loads: one held open across a fork hangs the child when it exits).
    """

    def __init__(self, columns: Mapping[str, str]):
        self._con = duckdb.connect(config={"enable_external_access": False})
        for name, cols in {**REFERENCE_TABLES, "row_": dict(columns)}.items():
            listed = ", ".join(f'"{c}" {t}' for c, t in cols.items())
            self._con.execute(f"create table {name} ({listed})")

    def problem(self, condition: str) -> str | None:
        """DuckDB's reason ``condition`` does not bind over the table, or None."""
        try:
            self._con.execute(f"select 1 from row_ where {condition} limit 0")
        except duckdb.Error as exc:
            return f"DuckDB rejects {condition!r}: {_one_line(str(exc).split(chr(10))[0])}"
        return None

    def close(self) -> None:
        self._con.close()
