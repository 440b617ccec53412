"""Masking of personal data (docs/domain.md), driven by the catalog items' ``pii``, ``level`` and ``public_when``.

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

Default-deny: an item with ``pii`` is masked in every row unless the row is positively not about a
natural person. The catalog says when with ``public_when``: columns of the row and the values that
make the item public, e.g. ``public_when: {subject_type: [法人及非法人组织, 法人, 非法人组织]}`` —
the subject is an organisation. A value matches after :func:`normalise_category` (NFKC, which folds
full-width forms and compatibility characters, then surrounding whitespace trimmed) on both sides;
anything else — null, blank, 自然人, 个人, 个体工商户 (often named after its owner), unknown values,
typos — leaves the item masked. Items of level L4 without a ``pii`` kind have no mask and are not
released at all (:func:`is_released`).

Free text (string items without a code list) may carry ID and mobile numbers typed by a clerk
(违法事实, 备注); :func:`scrub_sql` / :func:`scrub_text` mask, wherever they are in the text, 18-digit
身份证号 (check character ``X`` or ``x``) and legacy 15-digit ones with a plausible birth date, and
mobile numbers (``1[3-9]`` + 9 digits, whatever prefix such as ``+86`` or ``0086`` stands before
them), also when written with full-width digits or with single spaces or hyphens between digits
(``370102 19900101 1234``, ``138-0013-8000``). The names of the row's own natural persons are
replaced inside its free text too (:func:`scrub_names`).

The SQL builders emit portable SQL (DuckDB dialect, transpilable to Spark by sqlglot); the
Python functions are the reference the tests hold the SQL to.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import cache
from typing import Any

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

# Numbers in free text. Digits may be full-width; one space or hyphen may stand between any two.
_SEP = "[ \u3000－‐‑‒–—-]"


def _digits_pattern(*parts: str) -> str:
    """Character classes (or groups) in a row, each pair allowed one space or hyphen between them."""
    return f"{_SEP}?".join(parts)


_D = "[0-9０-９]"
_D1 = "[1-9１-９]"
_YEAR = "(?:" + _digits_pattern("[1１]", "[9９]") + "|" + _digits_pattern("[2２]", "[0０]") + ")"
_MONTH = "(?:" + _digits_pattern("[0０]", _D1) + "|" + _digits_pattern("[1１]", "[0-2０-２]") + ")"
_DAY = ("(?:" + _digits_pattern("[0０]", _D1) + "|" + _digits_pattern("[12１２]", _D) + "|"
        + _digits_pattern("[3３]", "[01０１]") + ")")
ID_IN_TEXT = (f"({_digits_pattern(_D1, *[_D] * 5)}){_SEP}?({_digits_pattern(_YEAR, _D, _D, _MONTH, _DAY)})"
              f"{_SEP}?({_digits_pattern(_D, _D, _D, '[0-9０-９XxＸｘ]')})")
"""An 18-digit 身份证号: division (kept), birth date (masked), sequence and check character (kept)."""
ID15_IN_TEXT = (f"({_digits_pattern(_D1, *[_D] * 5)}){_SEP}?({_digits_pattern(_D, _D, _MONTH, _DAY)})"
                f"{_SEP}?({_digits_pattern(_D, _D, _D)})")
"""A legacy 15-digit 身份证号 (two-digit year): division and sequence kept, birth date masked."""
MOBILE_IN_TEXT = (f"({_digits_pattern('[1１]', '[3-9３-９]', _D)}){_SEP}?{_digits_pattern(*[_D] * 4)}{_SEP}?"
                  f"({_digits_pattern(*[_D] * 4)})")
"""A mobile number: first 3 and last 4 digits kept (a prefix such as +86 stays as typed)."""
_TEXT_PATTERNS = ((ID_IN_TEXT, r"\1" + ID_MASK + r"\3"), (ID15_IN_TEXT, r"\1" + ID_MASK + r"\3"),
                  (MOBILE_IN_TEXT, r"\1" + MASK + r"\2"))
ELEVEN_DIGITS = _D + f"(?:{_SEP}?{_D}){{10}}"
"""Eleven digits with at most one space or hyphen between two: every match of the three patterns above holds such a
run (a mobile number 11 digits, a 身份证号 15 or 17 and its check character), so text without one is left as it is
without trying them: one search instead of three (docs/performance.md, "The extract")."""
_ELEVEN_DIGITS_RE = re.compile(ELEVEN_DIGITS)


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
    """Mask 身份证号 (18 and 15 digits) and mobile numbers found inside free text."""
    if value is None or not _ELEVEN_DIGITS_RE.search(value):
        return value
    for pattern, replacement in _TEXT_PATTERNS:
        value = re.sub(pattern, replacement, value)
    return value


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


def is_released(item: Item) -> bool:
    """Whether the item may appear in an extract: L4 only when it has a mask (``pii``)."""
    return item.level != "L4" or item.pii is not None


def normalise_category(value: Any) -> str | None:
    """The form a category is matched in: NFKC (full-width forms and compatibility characters such as
    ``⼈`` folded), surrounding whitespace trimmed. None for anything but a string."""
    if not isinstance(value, str):
        return None
    return unicodedata.normalize("NFKC", value).strip()


@cache
def _public_values(values: tuple[str, ...]) -> tuple[str, ...]:
    normalised = {normalise_category(v) for v in values}
    if "" in normalised:
        raise ValueError(f"public_when: a blank value makes nothing public: {list(values)}")
    return tuple(sorted(normalised))


def is_public(item: Item, row: Mapping[str, Any]) -> bool:
    """Whether ``row`` positively shows that ``item`` is not about a natural person: every column of
    ``public_when`` holds, normalised, one of its values. Python twin of :func:`public_sql`."""
    if not item.public_when:
        return False
    return all(normalise_category(row.get(column)) in _public_values(tuple(values))
               for column, values in item.public_when.items())


def is_personal(item: Item, row: Mapping[str, Any]) -> bool:
    """Whether the item is personal data in this row: it has ``pii`` and the row is not public."""
    return item.pii is not None and not is_public(item, row)


def mask_value(item: Item, value: Any, row: Mapping[str, Any] | None = None) -> Any:
    """The released form of ``value`` of ``item`` in ``row`` (Python twin of :func:`mask_sql`)."""
    if not is_released(item):
        raise ValueError(f"item {item.column} (L4, no mask) is not released")
    if not is_personal(item, row or {}):
        return value
    return PY_MASKS[item.pii](value)


def mask_note(item: Item) -> str | None:
    """How the item is released, for comments: ``masked: person_name unless subject_type is 法人 / …``."""
    if item.pii is None:
        return None
    unless = " and ".join(f"{column} is {' / '.join(_public_values(tuple(values)))}"
                          for column, values in (item.public_when or {}).items())
    return f"masked: {item.pii}" + (f" unless {unless}" if unless else "")


# ---- SQL builders ----------------------------------------------------------------------------


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


NFKC_PLANES = (range(0, 0x40000), range(0xE0000, 0xF0000))
"""The code points :func:`_nfkc_sources` walks: planes 0–3 and 14, where every character NFKC changes lies (the
other planes are unassigned or private use; tests/test_masking.py walks them under the running Unicode database).
The whole range took 0.4 s of every process that masks (an extract, its lineage); these take 0.03 s."""


@cache
def _nfkc_sources() -> dict[str, tuple[str, ...]]:
    """NFKC form → the characters NFKC turns into it (every code point that NFKC changes)."""
    found: dict[str, list[str]] = {}
    for plane in NFKC_PLANES:
        for code in plane:
            char = chr(code)
            if not 0xD800 <= code <= 0xDFFF and not unicodedata.is_normalized("NFKC", char):
                found.setdefault(unicodedata.normalize("NFKC", char), []).append(char)
    return {k: tuple(v) for k, v in found.items()}


WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
              "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
"""What :func:`normalise_category` trims: the characters ``str.strip`` removes (``str.isspace``),
which are also the only ones NFKC turns into whitespace."""


@cache  # every run of the extract asks the same few times; each answer walks the whole NFKC table
def normalise_category_sql(expr: str, values: tuple[str, ...]) -> str:
    """SQL twin of :func:`normalise_category` for comparing with ``values`` (normalised).

    SQL has no NFKC, so the expression folds just the characters whose NFKC form is made of the
    characters of ``values`` (``translate`` for single characters, ``replace`` for the rest), then
    trims :data:`WHITESPACE`. The result may differ from NFKC + trim, but it is one of ``values``
    exactly when NFKC + trim is (tests/test_masking.py holds the two to it).
    """
    alphabet = set("".join(values))
    if any(unicodedata.normalize("NFD", c) != c for c in alphabet):
        raise ValueError(f"public_when: values with composed characters cannot be matched in SQL: {values}")
    singles, multiples = [], []
    for target, sources in sorted(_nfkc_sources().items()):
        if target and set(target) <= alphabet:
            (singles if len(target) == 1 else multiples).extend((s, target) for s in sources)
    for source, target in multiples:
        expr = f"replace({expr}, {sql_string(source)}, {sql_string(target)})"
    if singles:
        expr = (f"translate({expr}, {sql_string(''.join(s for s, _ in singles))}, "
                f"{sql_string(''.join(t for _, t in singles))})")
    return f"trim({expr}, {sql_string(WHITESPACE)})"


def public_sql(item: Item) -> str:
    """SQL condition over the row: true only when the row is positively not about a natural person
    (:func:`is_public`); null, blank and unknown categories give false."""
    if not item.public_when:
        return "false"
    parts = []
    for column, values in item.public_when.items():
        normalised = _public_values(tuple(values))
        listed, col = ", ".join(sql_string(v) for v in normalised), sql_ident(column)
        # Values already in normal form (nearly all) skip the folding.
        parts.append(f"case when {col} in ({listed}) then true "
                     f"else {normalise_category_sql(col, normalised)} in ({listed}) end")
    return f"coalesce({' and '.join(f'({p})' for p in parts)}, false)"


def scrub_names_sql(text_expr: str, names: list[Item]) -> str:
    """SQL twin of :func:`scrub_names` over the columns of the row in scope."""
    for item in names:
        col = sql_ident(item.column)
        personal = f"not {public_sql(item)}" if item.public_when else "true"
        text_expr = (f"case when {personal} and length({col}) > 1 "
                     f"then replace({text_expr}, {col}, {_sql_mask('person_name', col)}) else {text_expr} end")
    return text_expr


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
        body = f"else concat(regexp_extract({x}, {sql_string(ADDRESS_DIVISION_PATTERN)}, 0), '{MASK}')"
    elif kind == "bank_account":
        body = (f"when length({x}) >= {BANK_MIN_LENGTH} then concat('{MASK}', "
                f"substr({x}, length({x}) - 3, 4)) else repeat('*', length({x}))")
    elif kind == "health":
        body = f"else '{MASK}'"
    else:
        raise ValueError(f"no mask for pii kind {kind!r}")
    return f"case when {x} is null then null {body} end"


def mask_sql(item: Item, column_expr: str, *, public: str | None = None) -> str:
    """SQL expression releasing ``column_expr`` of ``item``: masked unless the row is public (then ``public``, or
    the value as it is).

    ``public_when`` is evaluated on the row the expression runs over (its columns must be in
    scope, :func:`public_sql`); a row that is not positively public is masked. Raises ValueError
    for items that are not released at all (L4 without ``pii``).
    """
    if not is_released(item):
        raise ValueError(f"item {item.column} (L4, no mask) is not released")
    if item.pii is None:
        return column_expr
    masked = _sql_mask(item.pii, f"cast({column_expr} as varchar)")
    if not item.public_when:
        return masked
    return f"case when {public_sql(item)} then {public or column_expr} else {masked} end"


def scrub_sql(column_expr: str) -> str:
    """SQL twin of :func:`scrub_text` (DuckDB regexp_replace, RE2: the same patterns as Python's re)."""
    scrubbed = column_expr
    for pattern, replacement in _TEXT_PATTERNS:
        scrubbed = f"regexp_replace({scrubbed}, {sql_string(pattern)}, {sql_string(replacement)}, 'g')"
    found = f"regexp_matches({column_expr}, {sql_string(ELEVEN_DIGITS)})"
    return f"case when {found} then {scrubbed} else {column_expr} end"


def release_item_sql(item: Item, column_expr: str, names: list[Item] | None = None) -> str | None:
    """SQL releasing ``column_expr`` of ``item`` outside the lake (the analyst extract, the returns), or None
    when the item is not released at all: personal items masked (:func:`mask_sql`), free text (strings
    without a code list) scrubbed of ID and mobile numbers and of the row's person names (``names``,
    :func:`scrub_names_sql`), anything else as it is."""
    if not is_released(item):
        return None
    if item.pii:
        # a value left as it is because the row is an organisation's may still hold a person's ID or mobile number
        # (a 身份证号 in a "company" name): scrubbed as free text is
        return mask_sql(item, column_expr, public=scrub_sql(f"cast({column_expr} as varchar)"))
    if item.type == "string" and not item.code_list:
        return scrub_sql(scrub_names_sql(column_expr, names or []))
    return column_expr
