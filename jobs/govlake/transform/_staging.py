"""Render the standardizing model of a resource from the catalog and sql/staging/standardize.sql.j2."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from govlake.catalog import Catalog, Item, Resource
from govlake.config import Settings
from govlake.identifiers import sql_ric_check_char
from govlake.transform._dialect import WHITESPACE, Dialect
from govlake.transform._models import ModelRunner

# U+FF01..U+FF5E are the full-width forms of U+0021..U+007E; U+3000 is the ideographic space.
FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALF_WIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " "

DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y年%m月%d日", "%Y%m%d", "%Y.%m.%d")
TIMESTAMP_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M",
                     "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f", "%Y%m%d%H%M%S", "%Y.%m.%d %H:%M:%S")
MULTI_SEPARATORS = ("；", "、", "，", ",")
KNOWN_SPELLINGS = 32
"""At most this many of a code list's spellings are compared before a value is trimmed (each is a comparison of
the values not matched yet)."""
EXCEL_SERIAL = r"[1-9][0-9]{4}(\.0+)?"
DECIMAL = "decimal(18,4)"
INTEGER = r"-?[0-9]+(\.0+)?"

# Types whose text is normalized to half-width before parsing or checking.
_NORMALIZED = {"date", "timestamp", "decimal", "integer", "uscc", "id_number", "region_code",
               "industry_code", "phone"}


_FOLD = str.maketrans(FULL_WIDTH, HALF_WIDTH)


def half_width(text: str) -> str:
    """Python twin of the SQL full-width folding."""
    return text.translate(_FOLD)


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class ColumnSql:
    column: str
    strip: str
    """The raw value trimmed (and folded): an expression over ``bronze`` (the model's ``stripped``)."""
    clean: str
    """The cleaned text (<item>__in): an expression over ``stripped.<item>``, a column, so that what it tests
    and rewrites is not computed again for each use."""
    typed: str
    norm: str | None = None
    """Multi-value items: the cleaned text as ';a;b;' (computed once, used by typing and rules)."""


def tokens_of(cl_values: list[str], synonyms: dict[str, str]) -> list[tuple[str, str]]:
    """(spelling, canonical) pairs, longest spelling first so replacements do not nibble."""
    pairs = [(v, v) for v in cl_values] + list(synonyms.items())
    return sorted(pairs, key=lambda p: -len(p[0]))


def multi_normalized(expr: str) -> str:
    """';' + values separated by ';' + ';' so that each token can be found by ``like``. ``expr`` is the
    cleaned text (a column, as it is tested before it is rewritten), whose full-width forms are folded already:
    the full-width separators are the ASCII ones."""
    changes = {sep: ";" for sep in (half_width(s) for s in MULTI_SEPARATORS) if sep != ";"}
    changes[" "] = ""
    return f"concat(';', {_replaced(expr, changes)}, ';')"


def _replaced(col: str, changes: dict[str, str]) -> str:
    """``col`` (a column: it is named more than once) with each key replaced by its value; replace() copies the
    value whether it finds the text or not, so only values holding one of the keys are rewritten."""
    expr = col
    for old, new in changes.items():
        expr = f"replace({expr}, {_q(old)}, {_q(new)})"
    holds = " or ".join(f"contains({col}, {_q(old)})" for old in changes)
    return f"case when {holds} then {expr} else {col} end"


class StagingRenderer:
    """Builds the standardize model for one resource in one dialect."""

    def __init__(self, catalog: Catalog, dialect: Dialect, settings: Settings):
        self.catalog = catalog
        self.d = dialect
        self.runner = ModelRunner(settings.sql_dir)

    # -- cleaning: text in, text out ---------------------------------------------------
    def fold(self, item: Item, *, is_key: bool = False) -> bool:
        """Identifiers, codes, numbers, dates and business keys are made half-width."""
        return item.type in _NORMALIZED or bool(item.code_list) or is_key or item.pii in ("id_number", "phone")

    def clean(self, item: Item) -> str:
        """The cleaned text from the stripped value (``stripped.<item>``): identifiers without blanks and in
        capitals, phone numbers without punctuation, numbers without separators, synonyms as their code."""
        col = f"stripped.{item.column}"
        expr = col
        if item.type in ("uscc", "id_number", "industry_code") or item.pii == "id_number":
            expr = f"upper({_replaced(col, {' ': ''})})"
        elif item.type == "phone":
            expr = self.d.remove_all(col, "[ ()+-]")
        elif item.type == "decimal":
            expr = _replaced(col, {",": "", " ": ""})
        if item.code_list and not item.multi_value:
            cl = self.catalog.code_lists[item.code_list]
            if cl.synonyms:
                # Synonym spellings are compared after the same half-width folding as the value.
                whens = " ".join(f"when {_q(half_width(k))} then {_q(v)}" for k, v in cl.synonyms.items())
                expr = f"case {expr} {whens} else {expr} end"
        return f"nullif({expr}, '')"

    def stripped(self, col: str, *, fold: bool, known: Sequence[str] = ()) -> str:
        """Column ``col`` trimmed and, with ``fold``, its full-width forms made ASCII.

        trim() copies every value and translate() is slow, so only the values that need them pay for them: a
        value with a full-width form (a regex) is folded and trimmed, one with whitespace at an end (tested by
        bytes, :meth:`Dialect.edged`) trimmed, and every other value is the column's as it is. Folding makes no
        whitespace at an end that was not there (U+3000 becomes a space; the other full-width forms are
        printable), so this is trim(fold(col)). At 1 million penalty records the checked model took 6.2 s with
        trim() on every value, 5.1 s so.

        ``known``: spellings a value is usually one of (a code list's), compared first: a value equal to one that
        the trim and the fold leave as it is, is itself, where the search for a full-width form in Chinese text
        costs ~50 ns (subject_type over 1 million rows 0.115 → 0.013 s)."""
        if not fold:
            expr = f"case when {self.d.edged(col)} then {self.d.strip(col)} else {col} end"
        else:
            full_width = self.d.contains_match(col, f"[{FULL_WIDTH[0]}-{FULL_WIDTH[-2]}{FULL_WIDTH[-1]}]")
            folded = f"translate({col}, {_q(FULL_WIDTH)}, {_q(HALF_WIDTH)})"
            expr = (f"case when ({self.d.non_ascii(col)} and {full_width}) or {self.d.edged(col)} "
                    f"then {self.d.strip(folded)} else {col} end")
        same = [v for v in dict.fromkeys(known)
                if v.strip(WHITESPACE) == v and (not fold or half_width(v) == v)][:KNOWN_SPELLINGS]
        if not same:
            return expr
        return f"case {col} {' '.join(f'when {_q(v)} then {col}' for v in same)} else {expr} end"

    # -- typing: text → typed value, null when it does not parse ------------------------
    def typed(self, item: Item) -> str:
        col = f"cleaned.{item.column}__in"
        t = item.type
        if t == "date":
            return self._date(col)
        if t == "timestamp":
            parses = [self.d.try_parse_timestamp(col, f) for f in TIMESTAMP_FORMATS]
            date_only = f"cast({self._date(col)} as timestamp)"
            return f"coalesce({', '.join(parses)}, {date_only})"
        if t == "decimal":
            return f"try_cast({col} as {DECIMAL})"
        if t == "integer":
            return (f"case when {self.d.full_match(col, INTEGER)} "
                    f"then cast(cast({col} as {DECIMAL}) as bigint) end")
        if t == "id_number":
            return self._id_number(col)
        if t == "phone":
            return (f"case when {self.d.full_match(col, '86[0-9]{11}')} "
                    f"then substr({col}, 3) else {col} end")
        if item.code_list and item.multi_value:
            return self._multi(item, col, f"cleaned.{item.column}__norm")
        return col

    def _date(self, col: str) -> str:
        head = f"substr({col}, 1, 10)"
        parses = [self.d.try_parse_date(col, f) for f in DATE_FORMATS]
        parses.append(self.d.try_parse_date(head, "%Y-%m-%d"))
        parses.append(self.d.try_parse_date(head, "%Y/%m/%d"))
        serial = (f"case when {self.d.full_match(col, EXCEL_SERIAL)} "
                  f"then {self.d.excel_serial_to_date(col)} end")
        return f"coalesce({', '.join(parses)}, {serial})"

    def _id_number(self, col: str) -> str:
        """Legacy 15-digit numbers are upgraded to 18 digits (century 19, computed check)."""
        first17 = f"concat(substr({col}, 1, 6), '19', substr({col}, 7, 9))"
        return (f"case when {self.d.full_match(col, '[0-9]{15}')} "
                f"then concat({first17}, {sql_ric_check_char(first17)}) else {col} end")

    def _multi(self, item: Item, col: str, norm: str) -> str:
        """Canonical values, in code-list order, joined by ';' (unknown tokens dropped here,
        reported by the code-list rule). A value that is one spelling alone (most are) is looked up by its
        text; the others look for each spelling in it (at 1 million penalty records 0.45 s of the
        standardizing pass, 0.15 s so)."""
        cl = self.catalog.code_lists[item.code_list]
        parts, alone = [], []
        for value in cl.values:
            spellings = [value] + [k for k, v in cl.synonyms.items() if v == value]
            cond = " or ".join(f"{norm} like {_q('%;' + s + ';%')}" for s in spellings)
            parts.append(f"case when {cond} then {_q(value)} end")
            alone += [f"when {_q(';' + s + ';')} then {_q(value)}" for s in spellings]
        every = f"nullif(concat_ws(';', {', '.join(parts)}), '')"
        return f"case when {col} is not null then case {norm} {' '.join(alone)} else {every} end end"

    def columns(self, resource: Resource) -> list[ColumnSql]:
        out = []
        for i in resource.items:
            known: list[str] = []
            if i.code_list:
                cl = self.catalog.code_lists[i.code_list]
                known = ["", *cl.values, *(half_width(k) for k in cl.synonyms)]
            strip = self.stripped(f"bronze.{i.column}", fold=self.fold(i, is_key=i.column in resource.key),
                                  known=known)
            clean = self.clean(i)
            # a multi-value item's cleaned text is its stripped one (a code list's, so folded), less the empty text
            norm = multi_normalized(f"stripped.{i.column}") if i.code_list and i.multi_value else None
            out.append(ColumnSql(i.column, strip, clean, self.typed(i), norm))
        return out

    def context(self, resource: Resource, *, input: str | None = None) -> dict:
        """What sql/staging/standardize.sql.j2 is rendered with; ``input``: the relation of bronze rows it
        standardizes (default ``bronze_<slug>``)."""
        return {"resource": resource, "columns": self.columns(resource), "input": input or f"bronze_{resource.slug}"}

    def render(self, resource: Resource) -> str:
        """The model's SQL in this dialect (the model runner renders it)."""
        return self.d.to_engine(self.runner.render("staging/standardize", **self.context(resource)).sql)
