"""Every difference between the SQL engines lives here.

Models are written in DuckDB's dialect and call these macros for the few things that
sqlglot cannot transpile (lenient date parsing, full-match regexes, trimming a set of
characters). ``to_engine`` transpiles a rendered model for the engine that runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import sqlglot

DialectName = Literal["duckdb", "spark"]

# strftime formats → Spark datetime patterns, for the formats the models use.
_SPARK_FORMATS = {
    "%Y-%m-%d": "y-M-d",
    "%Y/%m/%d": "y/M/d",
    "%Y年%m月%d日": "y年M月d日",
    "%Y%m%d": "yyyyMMdd",
    "%Y.%m.%d": "y.M.d",
    "%Y-%m-%d %H:%M:%S": "y-M-d H:m:s",
    "%Y/%m/%d %H:%M:%S": "y/M/d H:m:s",
    "%Y-%m-%dT%H:%M:%S": "y-M-d'T'H:m:s",
    "%Y-%m-%d %H:%M": "y-M-d H:m",
    "%Y-%m-%d %H:%M:%S.%f": "y-M-d H:m:s.SSSSSS",
    "%Y-%m-%dT%H:%M:%S.%f": "y-M-d'T'H:m:s.SSSSSS",
    "%Y%m%d%H%M%S": "yyyyMMddHHmmss",
    "%Y.%m.%d %H:%M:%S": "y.M.d H:m:s",
}

WHITESPACE = " \t\r\n\u3000"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Dialect:
    name: DialectName

    def try_parse_timestamp(self, expr: str, fmt: str) -> str:
        """Timestamp parsed from ``expr`` with a strftime format; null when it does not parse."""
        if self.name == "duckdb":
            return f"try_strptime({expr}, {_quote(fmt)})"
        return f"try_to_timestamp({expr}, {_quote(_SPARK_FORMATS[fmt])})"

    def try_parse_date(self, expr: str, fmt: str) -> str:
        return f"cast({self.try_parse_timestamp(expr, fmt)} as date)"

    def full_match(self, expr: str, pattern: str) -> str:
        """True when the whole of ``expr`` matches the regex ``pattern``."""
        if self.name == "duckdb":
            return f"regexp_full_match({expr}, {_quote(pattern)})"
        return f"({expr} rlike {_quote('^(?:' + pattern.strip('^$') + ')$')})"

    def contains_match(self, expr: str, pattern: str) -> str:
        """True when some part of ``expr`` matches the regex ``pattern``."""
        if self.name == "duckdb":
            return f"regexp_matches({expr}, {_quote(pattern)})"
        return f"({expr} rlike {_quote(pattern)})"

    def strip(self, expr: str) -> str:
        """Remove leading and trailing whitespace, including the ideographic space."""
        if self.name == "duckdb":
            return f"trim({expr}, {_quote(WHITESPACE)})"
        return f"trim(both {_quote(WHITESPACE)} from {expr})"

    def remove_all(self, expr: str, pattern: str) -> str:
        """Delete every match of ``pattern`` in ``expr``."""
        if self.name == "duckdb":
            return f"regexp_replace({expr}, {_quote(pattern)}, '', 'g')"
        return f"regexp_replace({expr}, {_quote(pattern)}, '')"

    def excel_serial_to_date(self, expr: str) -> str:
        """Excel's day number (1900 date system) as a date."""
        if self.name == "duckdb":
            return f"cast(date '1899-12-30' + cast(cast({expr} as double) as integer) as date)"
        return f"date_add(date '1899-12-30', cast(cast({expr} as double) as int))"

    def date_literal(self, value) -> str:
        return f"date '{value.isoformat()}'"

    def to_engine(self, sql: str) -> str:
        """The rendered model (DuckDB dialect) in this engine's dialect."""
        if self.name == "duckdb":
            return sql
        return ";\n".join(sqlglot.transpile(sql, read="duckdb", write="spark", pretty=True))


DUCKDB = Dialect("duckdb")
SPARK = Dialect("spark")


def dialect(name: DialectName) -> Dialect:
    return {"duckdb": DUCKDB, "spark": SPARK}[name]
