"""Great Expectations classes of the 双公示 rule pack (GX 1.x), usable on their own.

Each class is a registered GX Expectation (``expect_column_values_to_be_valid_uscc`` …) with
typed fields; it runs as SQL inside the database: it is an ``UnexpectedRowsExpectation`` whose
query is built from the fields by the builder in ``_checks.py`` that the pipeline's DuckDB split
uses too. The SQL is DuckDB's (``list_has_all``, ``regexp_full_match``, ``try_strptime``)::

    import great_expectations as gx
    from govlake.quality import ExpectColumnValuesToBeValidUscc

    suite.add_expectation(ExpectColumnValuesToBeValidUscc(column="uscc"))

Nulls pass every check (pair them with ``ExpectColumnValuesToNotBeNull``). Every class also
takes ``when_column``/``when_values`` (check only rows whose ``when_column`` is one of the
values; ``when_multi_value`` for ';'-joined columns) and ``report_columns`` (which columns GX
returns per failing row; the pipeline asks for lineage columns only, so no personal data
leaves the database in a validation result).

Why UnexpectedRowsExpectation and not ColumnMapExpectation with metric providers: the pack's
checks span several columns (raw text vs parsed value, a condition on another column), and GX
1.x map metrics take SQLAlchemy expressions while these checks are SQL text shared with the
split. Below result_format COMPLETE a pack expectation asks GX for the count only (one query,
not the count plus a fetch of up to 200 rows): on 1M penalty rows the 45 rules took 11–14 s in
GX this way against 20–23 s as plain UnexpectedRowsExpectations (2 shared cores).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, ClassVar

from great_expectations.compatibility import pydantic
from great_expectations.core.result_format import ResultFormat
from great_expectations.expectations import UnexpectedRowsExpectation

from govlake.quality._checks import TODAY, fail_when
from govlake.transform import dialect

_PLACEHOLDER_QUERY = "select * from {batch} where false"
_ROWS_METRIC = "unexpected_rows_query.table"


@functools.lru_cache(maxsize=1024)
def spark_query(query: str) -> str:
    """An UnexpectedRowsExpectation's query (DuckDB SQL, ``{batch}`` for the table, other braces doubled)
    in Spark SQL (govlake.transform's dialect layer), in the same form."""
    from govlake.transform import to_spark

    batch = "gx_batch__"
    sql = query.replace("{batch}", batch).replace("{{", "{").replace("}}", "}")
    return to_spark(sql, pretty=False).replace("{", "{{").replace("}", "}}").replace(batch, "{batch}")


class PackExpectation(UnexpectedRowsExpectation):
    """Base of the pack: the query is built from the typed fields (not registered itself)."""

    unexpected_rows_query: str = pydantic.Field(
        _PLACEHOLDER_QUERY, description="Built from the fields; do not pass it.")
    when_column: str | None = pydantic.Field(None, description="Check only rows where this column …")
    when_values: list[str] | None = pydantic.Field(None, description="… is one of these values.")
    when_multi_value: bool = pydantic.Field(
        False, description="when_column holds several values separated by ';' (any of when_values).")
    report_columns: list[str] | None = pydantic.Field(
        None, description="Columns returned per failing row (default all).")
    sql_dialect: str = pydantic.Field(
        "duckdb", description="The engine the query runs on: duckdb (GX's SQL datasource) or spark.")

    check_fields: ClassVar[tuple[str, ...]] = ()
    """The fields that define the check (passed to its SQL builder)."""

    @classmethod
    def is_abstract(cls) -> bool:
        return cls.__name__ == "PackExpectation" or super().is_abstract()

    @pydantic.root_validator(skip_on_failure=True)
    def _build_query(cls, values: dict) -> dict:
        kwargs = {k: values.get(k) for k in (*cls.check_fields, "when_column", "when_values", "when_multi_value")}
        if kwargs.get("as_of") == TODAY:
            raise ValueError("as_of: pass the run's date, not the placeholder")
        # the engine's own form where the two engines plan a check differently (Dialect.not_in_codes)
        condition = fail_when(cls.__name__, kwargs, dialect(values.get("sql_dialect") or "duckdb"))
        columns = ", ".join(values.get("report_columns") or ["*"])
        # str.format is applied by GX for {batch}: braces of the SQL (regex counts) are doubled.
        query = f"select {columns} from {{batch}} where " + condition.replace("{", "{{").replace("}", "}}")
        values["unexpected_rows_query"] = spark_query(query) if values.get("sql_dialect") == "spark" else query
        return values

    def get_validation_dependencies(self, execution_engine=None, runtime_configuration=None):
        """Below COMPLETE no failing rows are shown, so only the count is asked for: one query
        instead of two (GX's UnexpectedRowsExpectation also fetches up to 200 rows each time)."""
        deps = super().get_validation_dependencies(execution_engine=execution_engine,
                                                   runtime_configuration=runtime_configuration)
        if deps.result_format.get("result_format") != ResultFormat.COMPLETE:
            deps.remove_metric_configuration(_ROWS_METRIC)
        return deps

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine=None):
        if _ROWS_METRIC in metrics:
            return super()._validate(metrics, runtime_configuration, execution_engine)
        count = metrics["unexpected_rows_query.row_count"]
        return {"success": count == 0, "result": {"observed_value": count}}

    @property
    def condition(self) -> str:
        """The SQL predicate of a failing row (DuckDB's SQL, in the form of the engine of ``sql_dialect``)."""
        return fail_when(type(self).__name__, self.check_kwargs(), dialect(self.sql_dialect))

    def check_kwargs(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (*self.check_fields, "when_column", "when_values", "when_multi_value")}


class ExpectColumnValuesToBeValidUscc(PackExpectation):
    """统一社会信用代码 (GB 32100-2015): 18 characters of 0-9 A-H J-N P-R T U W X Y, first 1-9/A/N/Y,
    check character (weights 1,3,9,…,28 mod 31). Codes of departments A, N and Y are valid too.
    ``known_table``: a table (``code`` column) of codes known to be valid, looked up first."""

    column: str
    known_table: str | None = None
    check_fields: ClassVar[tuple[str, ...]] = ("column", "known_table")


class ExpectColumnValuesToHaveValidUsccOrganizationCode(PackExpectation):
    """Positions 9-17 of a well-formed 统一社会信用代码 carry a GB 11714 organisation code with its
    check character (weights 3,7,9,10,5,8,4,2; A=10 … Z=35). The USCC's own check character is left
    to ExpectColumnValuesToBeValidUscc. ``known_table``: codes known to pass, looked up first."""

    column: str
    known_table: str | None = None
    check_fields: ClassVar[tuple[str, ...]] = ("column", "known_table")


class ExpectColumnValuesToBeValidIdNumber(PackExpectation):
    """居民身份证号码 (GB 11643-1999): 17 digits + check (ISO 7064 MOD 11-2) and a real birth date
    from 1900 on. The county is not checked here (see ExpectColumnValuesToHaveKnownIdNumberCounty)."""

    column: str
    check_fields: ClassVar[tuple[str, ...]] = ("column",)


class ExpectColumnValuesToHaveKnownIdNumberCounty(PackExpectation):
    """The first six digits of a valid 身份证号 are a known GB/T 2260 division (current or retired).
    ``codes_table``: a table with a ``code`` column; default the codes python-stdnum knows, inline."""

    column: str
    codes_table: str | None = None
    check_fields: ClassVar[tuple[str, ...]] = ("column", "codes_table")


class ExpectColumnValuesToBeValidRegionCode(PackExpectation):
    """行政区划代码 (GB/T 2260): a known six-digit division code (current or retired).
    ``codes_table``: a table with a ``code`` column; default the codes python-stdnum knows, inline."""

    column: str
    codes_table: str | None = None
    check_fields: ClassVar[tuple[str, ...]] = ("column", "codes_table")


class ExpectColumnValuesToBeMultiValuedInSet(PackExpectation):
    """Every value of a column holding several codes (``警告;罚款``, ``警告、罚款``) is in ``value_set``."""

    column: str
    value_set: list[str]
    separators: list[str] = pydantic.Field(default_factory=lambda: [";", "、"])
    check_fields: ClassVar[tuple[str, ...]] = ("column", "value_set", "separators")


class ExpectColumnValuesToBeParseable(PackExpectation):
    """Text in ``column`` was understood: where it is given, ``parsed_column`` (its typed value) is not null."""

    column: str
    parsed_column: str
    type_name: str | None = None
    check_fields: ClassVar[tuple[str, ...]] = ("column", "parsed_column", "type_name")


class ExpectColumnValuesToNotBeInTheFuture(PackExpectation):
    """Dates (or timestamps) are not after ``as_of`` (default: the database's current date)."""

    column: str
    as_of: dt.date | None = None
    check_fields: ClassVar[tuple[str, ...]] = ("column", "as_of")


class ExpectColumnValuesToNotBeAfterDate(PackExpectation):
    """Dates are not after ``max_date`` (e.g. 2099-12-31, the conventional 'long-term' end)."""

    column: str
    max_date: dt.date
    check_fields: ClassVar[tuple[str, ...]] = ("column", "max_date")


class ExpectColumnValuesToFullyMatchRegex(PackExpectation):
    """The whole value matches ``regex`` (not just a part of it)."""

    column: str
    regex: str
    check_fields: ClassVar[tuple[str, ...]] = ("column", "regex")


class ExpectColumnValuesToNotBeNullWhen(PackExpectation):
    """Conditional required fields: every column of ``column_list`` is filled in the rows selected
    by ``when_column``/``when_values`` (all rows when no condition is given)."""

    column_list: list[str]
    check_fields: ClassVar[tuple[str, ...]] = ("column_list",)


class ExpectColumnValuesToBePositiveWhen(PackExpectation):
    """``column`` is given and greater than zero in the rows selected by ``when_column``/``when_values``."""

    column: str
    check_fields: ClassVar[tuple[str, ...]] = ("column",)


class ExpectColumnPairValuesAToNotBeAfterB(PackExpectation):
    """Where both are given, ``column_a`` ≤ ``column_b`` (有效期自 ≤ 有效期至, 决定日期 ≤ 公示截止期)."""

    column_a: str
    column_b: str
    check_fields: ClassVar[tuple[str, ...]] = ("column_a", "column_b")


PACK: dict[str, type[PackExpectation]] = {
    cls.__name__: cls for cls in PackExpectation.__subclasses__()}
"""The pack's expectation classes by name."""
