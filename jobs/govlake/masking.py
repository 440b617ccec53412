"""Masking of personal data (DOMAIN.md §5), driven by the catalog items' ``pii``, ``level`` and ``pii_when``.

Rules, by ``pii`` kind (a null stays null in every rule):

- ``id_number`` — first 6 + ``********`` + last 4 (``370102********123X``) when the value has at
  least 15 characters (18-digit and legacy 15-digit 身份证号); anything shorter (passport and
  permit numbers) becomes all ``*`` of the same length. A 10- to 14-character value would keep
  6 + 4 visible characters and hide 0–4 of them, so it is not given the 6 + 4 form.
- ``phone`` — first 3 + ``****`` + last 4 (``138****5678``) when the value has at least 11
  characters; shorter numbers (landlines without area code) become all ``*``.
- ``person_name`` — the first character (the surname) + ``*`` (``张*``; a compound surname keeps
  only its first character: ``欧*``).
- ``address`` — the division part kept, the rest replaced: province (…省/自治区), prefecture
  (…市/自治州/盟/地区) and county (…区/县/旗/市), each optional and at most 7 characters before
  its suffix, and none containing digits or street-level characters (路 街 道 号 巷 弄 村 镇 乡
  楼 室 栋 幢 座 层); then ``****``. ``山东省济南市历下区泉城路1号`` → ``山东省济南市历下区****``;
  an address without a recognisable division becomes ``****``. When in doubt it keeps less.
- ``bank_account`` — ``****`` + last 4 when at least 12 characters, else all ``*``.
- ``health`` — ``****`` (nothing of the value is released).

An item is personal when it has ``pii`` and its ``pii_when`` condition (SQL over the row, e.g.
``subject_type = '自然人'``) is true or unknown (null): unknown counts as personal. Items of
level L4 without a ``pii`` kind have no mask and are not released at all (:func:`is_released`).

Free text (string items without a code list) may carry ID and mobile numbers typed by a clerk
(违法事实, 备注); :func:`scrub_sql` / :func:`scrub_text` mask every 18-digit 身份证号 and
mobile number found inside such text.

The SQL builders emit portable SQL (DuckDB dialect, transpilable to Spark by sqlglot); the
Python functions are the reference the tests hold the SQL to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlglot
from sqlglot import expressions as exp

from govlake.catalog import Item

MASK = "****"
ID_MASK = "********"
ID_MIN_LENGTH = 15
PHONE_MIN_LENGTH = 11
BANK_MIN_LENGTH = 12

_STREET = "0-9０-９路街道号巷弄村镇乡楼室栋幢座层"
ADDRESS_DIVISION_PATTERN = (
    f"^(?:[^省市{_STREET}]{{2,7}}(?:省|自治区))?"
    f"(?:[^市盟{_STREET}]{{2,7}}(?:市|自治州|盟|地区))?"
    f"(?:[^区县旗{_STREET}]{{1,7}}?(?:区|县|旗|市))?"
)
_ADDRESS_RE = re.compile(ADDRESS_DIVISION_PATTERN)

# In free text: an 18-digit 身份证号 (plausible birth date) and an 11-digit mobile number.
ID_IN_TEXT = (
    r"([1-9][0-9]{5})((?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01]))([0-9]{3}[0-9Xx])"
)
MOBILE_IN_TEXT = r"(1[3-9][0-9])[0-9]{4}([0-9]{4})"


# ---- Python reference ----------------------------------------------------------------------


def mask_id_number(value: str | None) -> str | None:
    """``370102199001011234`` → ``370102********1234``; shorter than 15 characters → all ``*``."""
    if value is None:
        return None
    if len(value) >= ID_MIN_LENGTH:
        return value[:6] + ID_MASK + value[-4:]
    return "*" * len(value)


def mask_phone(value: str | None) -> str | None:
    """``13812345678`` → ``138****5678``; shorter than 11 characters → all ``*``."""
    if value is None:
        return None
    if len(value) >= PHONE_MIN_LENGTH:
        return value[:3] + MASK + value[-4:]
    return "*" * len(value)


def mask_person_name(value: str | None) -> str | None:
    """``张三丰`` → ``张*``: the surname (first character) and one ``*``."""
    if value is None or value == "":
        return value
    return value[:1] + "*"


def mask_address(value: str | None) -> str | None:
    """Keep province / prefecture / county, replace the rest with ``****``."""
    if value is None:
        return None
    return _ADDRESS_RE.match(value).group(0) + MASK


def mask_bank_account(value: str | None) -> str | None:
    """``6222020200112233445`` → ``****3445``; shorter than 12 characters → all ``*``."""
    if value is None:
        return None
    if len(value) >= BANK_MIN_LENGTH:
        return MASK + value[-4:]
    return "*" * len(value)


def mask_health(value: str | None) -> str | None:
    """Health information is never released: ``****``."""
    return None if value is None else MASK


PY_MASKS = {
    "id_number": mask_id_number,
    "phone": mask_phone,
    "person_name": mask_person_name,
    "address": mask_address,
    "bank_account": mask_bank_account,
    "health": mask_health,
}


def scrub_text(value: str | None) -> str | None:
    """Mask 18-digit 身份证号 and mobile numbers found inside free text."""
    if value is None:
        return None
    value = re.sub(ID_IN_TEXT, r"\1" + ID_MASK + r"\3", value)
    return re.sub(MOBILE_IN_TEXT, r"\1" + MASK + r"\2", value)


def name_items(items: list[Item]) -> list[Item]:
    """The person-name items of a row: their values are scrubbed from the row's free text too."""
    return [i for i in items if i.pii == "person_name"]


def scrub_names(value: str | None, row: Mapping[str, Any], names: list[Item]) -> str | None:
    """Replace, inside free text, the natural persons' names the same row holds (the subject named in
    its own 违法事实, say) by their masks. Python twin of :func:`scrub_names_sql`."""
    if value is None:
        return None
    for item in names:
        name = row.get(item.column)
        if isinstance(name, str) and len(name) > 1 and is_personal(item, row):
            value = value.replace(name, mask_person_name(name))
    return value


def scrub_names_sql(text_expr: str, names: list[Item]) -> str:
    """SQL twin of :func:`scrub_names` over the columns of the row in scope."""
    for item in names:
        col = item.column
        personal = f"coalesce(({item.pii_when}), true)" if item.pii_when else "true"
        text_expr = (f"case when {personal} and length({col}) > 1 "
                     f"then replace({text_expr}, {col}, {_sql_mask('person_name', col)}) else {text_expr} end")
    return text_expr


def is_released(item: Item) -> bool:
    """Whether the item may appear in an extract: L4 only when it has a mask (``pii``)."""
    return item.level != "L4" or item.pii is not None


def is_personal(item: Item, row: Mapping[str, Any]) -> bool:
    """Whether the item is personal data in this row (``pii`` and ``pii_when`` true or unknown)."""
    if item.pii is None:
        return False
    if item.pii_when is None:
        return True
    result = _evaluate(sqlglot.parse_one(item.pii_when, read="duckdb"), row)
    return result is None or bool(result)


def mask_value(item: Item, value: Any, row: Mapping[str, Any] | None = None) -> Any:
    """The released form of ``value`` of ``item`` in ``row`` (Python twin of :func:`mask_sql`)."""
    if not is_released(item):
        raise ValueError(f"item {item.column} (L4, no mask) is not released")
    if item.pii is None or not is_personal(item, row or {}):
        return value
    return PY_MASKS[item.pii](value)


def _evaluate(node: exp.Expression, row: Mapping[str, Any]) -> Any:
    """Three-valued evaluation of the small SQL subset used in ``pii_when`` (None = unknown)."""
    if isinstance(node, exp.Paren):
        return _evaluate(node.this, row)
    if isinstance(node, exp.Column):
        return row.get(node.name)
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else float(node.this)
    if isinstance(node, exp.Null):
        return None
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, exp.Not):
        inner = _evaluate(node.this, row)
        return None if inner is None else not inner
    if isinstance(node, (exp.And, exp.Or)):
        left, right = _evaluate(node.left, row), _evaluate(node.right, row)
        if isinstance(node, exp.And):
            if left is False or right is False:
                return False
            return None if left is None or right is None else True
        if left is True or right is True:
            return True
        return None if left is None or right is None else False
    if isinstance(node, exp.Is):
        return _evaluate(node.this, row) is None
    if isinstance(node, (exp.EQ, exp.NEQ)):
        left, right = _evaluate(node.left, row), _evaluate(node.right, row)
        if left is None or right is None:
            return None
        return (left == right) if isinstance(node, exp.EQ) else (left != right)
    if isinstance(node, exp.In):
        left = _evaluate(node.this, row)
        if left is None:
            return None
        return left in [_evaluate(e, row) for e in node.expressions]
    raise ValueError(f"pii_when: unsupported SQL in Python evaluation: {node.sql()}")


# ---- SQL builders ----------------------------------------------------------------------------


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_mask(kind: str, x: str) -> str:
    """SQL expression masking the string expression ``x`` (portable: substr, length, concat)."""
    if kind == "id_number":
        body = (f"when length({x}) >= {ID_MIN_LENGTH} then concat(substr({x}, 1, 6), "
                f"'{ID_MASK}', substr({x}, length({x}) - 3, 4)) else repeat('*', length({x}))")
    elif kind == "phone":
        body = (f"when length({x}) >= {PHONE_MIN_LENGTH} then concat(substr({x}, 1, 3), "
                f"'{MASK}', substr({x}, length({x}) - 3, 4)) else repeat('*', length({x}))")
    elif kind == "person_name":
        body = f"when {x} = '' then {x} else concat(substr({x}, 1, 1), '*')"
    elif kind == "address":
        body = f"else concat(regexp_extract({x}, {_quote(ADDRESS_DIVISION_PATTERN)}, 0), '{MASK}')"
    elif kind == "bank_account":
        body = (f"when length({x}) >= {BANK_MIN_LENGTH} then concat('{MASK}', "
                f"substr({x}, length({x}) - 3, 4)) else repeat('*', length({x}))")
    elif kind == "health":
        body = f"else '{MASK}'"
    else:
        raise ValueError(f"no mask for pii kind {kind!r}")
    return f"case when {x} is null then null {body} end"


def mask_sql(item: Item, column_expr: str) -> str:
    """SQL expression releasing ``column_expr`` of ``item``: masked when personal, else unchanged.

    ``pii_when`` is evaluated on the row the expression runs over (its columns must be in
    scope); a null condition counts as personal. Raises ValueError for items that are not
    released at all (L4 without ``pii``).
    """
    if not is_released(item):
        raise ValueError(f"item {item.column} (L4, no mask) is not released")
    if item.pii is None:
        return column_expr
    masked = _sql_mask(item.pii, f"cast({column_expr} as varchar)")
    if item.pii_when is None:
        return masked
    return f"case when coalesce(({item.pii_when}), true) then {masked} else {column_expr} end"


def scrub_sql(column_expr: str) -> str:
    """SQL expression masking 身份证号 and mobile numbers inside free text (DuckDB regexp_replace)."""
    ids = (f"regexp_replace({column_expr}, {_quote(ID_IN_TEXT)}, "
           f"'\\1{ID_MASK}\\3', 'g')")
    return f"regexp_replace({ids}, {_quote(MOBILE_IN_TEXT)}, '\\1{MASK}\\2', 'g')"
