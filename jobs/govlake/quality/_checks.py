"""The SQL predicate of every check in the rule pack: when does a row FAIL it?

One builder per Great Expectations class a rule can use: the custom ones of the pack
(``_expectations.py`` builds its ``unexpected_rows_query`` from these) and the GX built-ins the
catalog rules use (``ExpectColumnValuesToNotBeNull`` …), written here as the SQL the built-in
counts. The DuckDB split evaluates these predicates and GX runs the expectations; the pipeline
fails when their counts differ, so a builder and its expectation cannot drift apart unnoticed.

No Great Expectations import here: building rules stays cheap for the CLI.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence

from govlake.identifiers import USCC_PATTERN, sql_id_number_valid, sql_org_code_valid, sql_uscc_valid
from govlake.transform import DUCKDB, Dialect

TODAY = "{today}"
"""``as_of`` placeholder bound to the run's business date by ``_rules.bind_today``."""


RAW_SQL = "UnexpectedRowsExpectation"
"""The GX class of a rule written as SQL (``fail_when``): GX counts the rows the condition selects."""
MACRO = re.compile(r"\{(id_valid|uscc_valid):([a-z_]+)\}")
"""``{id_valid:col}`` / ``{uscc_valid:col}`` in a ``fail_when``: the identifier check of ``col``."""


def expand_macros(sql: str, d: Dialect) -> str:
    """``fail_when`` SQL with its identifier-check macros written out for dialect ``d``."""
    def sub(m: re.Match) -> str:
        if m.group(1) == "id_valid":
            return sql_id_number_valid(m.group(2), d)
        return sql_uscc_valid(m.group(2), d)

    return MACRO.sub(sub, sql)


def q(text: str) -> str:
    """SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _values(values: Sequence[str]) -> str:
    return ", ".join(q(v) for v in values)


def _date(value: dt.date | str | None) -> str:
    if value is None:
        return "current_date"
    if value == TODAY:
        return TODAY
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    return f"date '{day.isoformat()}'"


def _unknown_code(value: str, codes_table: str | None, d: Dialect) -> str:
    """``value`` (never null where this is used) is none of the codes: of ``codes_table`` (a table with a
    ``code`` column; ``Dialect.not_in_codes``), else of python-stdnum's, inline."""
    if codes_table:
        return d.not_in_codes(value, codes_table)
    from govlake.identifiers import region_codes

    return f"{value} not in ({_values(sorted(region_codes()))})"


def when_condition(when_column: str | None, when_values: Sequence[str] | None,
                   when_multi_value: bool = False) -> str | None:
    """The rows a check applies to: ``when_column`` is one of ``when_values``, or for a
    ';'-joined multi-value column, carries at least one of them."""
    if not when_column:
        return None
    if not when_values:
        raise ValueError(f"when_column {when_column!r} needs when_values")
    if when_multi_value:
        tokens = f"concat(';', {when_column}, ';')"
        return "(" + " or ".join(f"{tokens} like {q('%;' + v + ';%')}" for v in when_values) + ")"
    return f"{when_column} in ({_values(when_values)})"


# ---- GX built-ins, as the SQL they count -------------------------------------------------


def not_null(*, column: str, d: Dialect = DUCKDB) -> str:
    return f"{column} is null"


def be_null(*, column: str, d: Dialect = DUCKDB) -> str:
    return f"{column} is not null"


def in_set(*, column: str, value_set: Sequence[str], d: Dialect = DUCKDB) -> str:
    return f"{column} is not null and {column} not in ({_values(value_set)})"


def length_at_most(*, column: str, max_value: int, d: Dialect = DUCKDB) -> str:
    return f"length({column}) > {int(max_value)}"


def raw_sql(*, fail_when: str, d: Dialect = DUCKDB) -> str:
    """A hand-written predicate (UnexpectedRowsExpectation with the query as given)."""
    return fail_when


# ---- the pack's own checks ---------------------------------------------------------------


def parseable(*, column: str, parsed_column: str, type_name: str | None = None, d: Dialect = DUCKDB) -> str:
    return f"{column} is not null and {parsed_column} is null"


def not_in_future(*, column: str, as_of: dt.date | str | None = None, d: Dialect = DUCKDB) -> str:
    return f"cast({column} as date) > {_date(as_of)}"


def not_after(*, column: str, max_date: dt.date | str, d: Dialect = DUCKDB) -> str:
    return f"cast({column} as date) > {_date(max_date)}"


def fully_match(*, column: str, regex: str, d: Dialect = DUCKDB) -> str:
    return f"{column} is not null and not {d.full_match(column, regex)}"


def _unknown(column: str, known_table: str | None, d: Dialect) -> str:
    """`` and `` ``column`` is none of ``known_table``'s codes (codes checked before, to pass), or nothing."""
    return f" and {d.not_in_codes(column, known_table)}" if known_table else ""


def valid_uscc(*, column: str, known_table: str | None = None, d: Dialect = DUCKDB) -> str:
    """``known_table``: a table of codes known to pass (its ``code`` column; the pipeline's ``ref_uscc_valid``,
    the departments' codes): looked up before the check character is computed. An authority's or department's
    column repeats a few codes on every row, and the check (17 characters looked up and weighted) cost some 0.5 s
    per million rows and column; the lookup, a hash join with a handful of codes, a fraction of it."""
    return (f"{column} is not null{_unknown(column, known_table, d)}"
            f" and not coalesce({sql_uscc_valid(column, d)}, false)")


def valid_uscc_org_code(*, column: str, known_table: str | None = None, d: Dialect = DUCKDB) -> str:
    """A well-formed USCC whose positions 9-17 fail GB 11714 (the USCC's own check character is
    the USCC check's business: re-computing it here would double the cost of the warning). ``known_table``:
    codes known to pass this check, looked up first (:func:`valid_uscc`)."""
    return (f"{column} is not null{_unknown(column, known_table, d)} and {d.full_match(column, USCC_PATTERN)}"
            f" and not {sql_org_code_valid(f'substr({column}, 9, 9)')}")


def valid_id_number(*, column: str, d: Dialect = DUCKDB) -> str:
    return f"{column} is not null and not coalesce({sql_id_number_valid(column, d)}, false)"


def known_id_number_county(*, column: str, codes_table: str | None = None, d: Dialect = DUCKDB) -> str:
    """A valid 身份证号 (invalid ones fail the ID check) whose first six digits are no known county. The county
    first: the number's check (computed again here: DuckDB shares no subexpression inside a rule's ``case when``)
    is then computed only for the few numbers of an unknown county."""
    return (f"{column} is not null and {_unknown_code(f'substr({column}, 1, 6)', codes_table, d)}"
            f" and coalesce({sql_id_number_valid(column, d)}, false)")


def valid_region_code(*, column: str, codes_table: str | None = None, d: Dialect = DUCKDB) -> str:
    return f"{column} is not null and {_unknown_code(column, codes_table, d)}"


def multi_value_in_set(*, column: str, value_set: Sequence[str], separators: Sequence[str] = (";", "、"),
                       d: Dialect = DUCKDB) -> str:
    """Some token of ``column`` split at ``separators`` (blanks and empty tokens ignored) is not
    in ``value_set``.

    One regular expression over the text without its blanks, (value)?(separator(value)?)*: the tokens split
    into a list and looked up in the set took 0.44 s per million values, the regex 0.08. A value holding a blank
    or a separator is never a token, so it is left out of the expression as the split would never find it."""
    if not separators:
        raise ValueError("separators must not be empty")
    words = sorted({v for v in value_set if v and " " not in v and not any(s in v for s in separators)},
                   key=lambda v: (-len(v), v))
    # groups that capture: Great Expectations reads the query as SQLAlchemy text, where ':word' is a parameter
    token = "(" + "|".join(re.escape(v) for v in words) + ")?" if words else ""
    separator = "(" + "|".join(re.escape(s) for s in separators) + ")"
    text = f"replace({column}, ' ', '')"
    return f"{column} is not null and not {d.full_match(text, f'{token}(?:{separator}{token})*')}"


def not_null_when(*, column_list: Sequence[str], d: Dialect = DUCKDB) -> str:
    return "(" + " or ".join(f"{c} is null" for c in column_list) + ")"


def positive(*, column: str, d: Dialect = DUCKDB) -> str:
    """Missing or not greater than zero (use with ``when_*`` for 'required and > 0 when …')."""
    return f"({column} is null or {column} <= 0)"


def a_not_after_b(*, column_a: str, column_b: str, d: Dialect = DUCKDB) -> str:
    return f"{column_a} is not null and {column_b} is not null and {column_a} > {column_b}"


Builder = Callable[..., str]

CHECKS: dict[str, Builder] = {
    # GX built-ins
    "ExpectColumnValuesToNotBeNull": not_null,
    "ExpectColumnValuesToBeNull": be_null,
    "ExpectColumnValuesToBeInSet": in_set,
    "ExpectColumnValueLengthsToBeBetween": length_at_most,
    "UnexpectedRowsExpectation": raw_sql,
    # the pack (govlake.quality._expectations)
    "ExpectColumnValuesToBeParseable": parseable,
    "ExpectColumnValuesToNotBeInTheFuture": not_in_future,
    "ExpectColumnValuesToNotBeAfterDate": not_after,
    "ExpectColumnValuesToFullyMatchRegex": fully_match,
    "ExpectColumnValuesToBeValidUscc": valid_uscc,
    "ExpectColumnValuesToHaveValidUsccOrganizationCode": valid_uscc_org_code,
    "ExpectColumnValuesToBeValidIdNumber": valid_id_number,
    "ExpectColumnValuesToHaveKnownIdNumberCounty": known_id_number_county,
    "ExpectColumnValuesToBeValidRegionCode": valid_region_code,
    "ExpectColumnValuesToBeMultiValuedInSet": multi_value_in_set,
    "ExpectColumnValuesToNotBeNullWhen": not_null_when,
    "ExpectColumnValuesToBePositiveWhen": positive,
    "ExpectColumnPairValuesAToNotBeAfterB": a_not_after_b,
}
"""GX expectation class name → SQL builder of its failing rows."""

WHEN_KEYS = ("when_column", "when_values", "when_multi_value")
PRESENTATION_KEYS = ("report_columns",)
"""Fields of the pack's expectations that do not change the predicate's core (``when_*`` is
applied by :func:`fail_when`; ``report_columns`` only picks what GX returns per failing row)."""


def fail_when(expectation: str, kwargs: dict, d: Dialect = DUCKDB) -> str:
    """The SQL predicate under which a row fails ``expectation(**kwargs)``."""
    try:
        builder = CHECKS[expectation]
    except KeyError:
        raise ValueError(f"unknown expectation {expectation!r}; known: {sorted(CHECKS)}") from None
    core = {k: v for k, v in kwargs.items() if k not in WHEN_KEYS + PRESENTATION_KEYS and v is not None}
    try:
        cond = builder(d=d, **core)
    except TypeError as exc:
        raise ValueError(f"{expectation}: {exc}") from None
    when = when_condition(kwargs.get("when_column"), kwargs.get("when_values"),
                          bool(kwargs.get("when_multi_value")))
    return f"({when}) and ({cond})" if when else cond
