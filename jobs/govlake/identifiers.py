"""Chinese identifiers: 统一社会信用代码, 居民身份证号码, 行政区划代码.

Python checks wrap python-stdnum and fill its gap (``stdnum.cn.uscc`` rejects valid codes
whose first eight characters are not all digits, i.e. codes of registration departments
A, N and Y). The ``sql_*`` functions build the same checks as portable SQL expressions
(DuckDB dialect, transpiled for Spark by sqlglot) so that validation runs inside the engine
at full speed; tests hold the two implementations to the same answers.
"""

from __future__ import annotations

import functools
import re

from stdnum.cn import ric as _ric
from stdnum.cn import uscc as _uscc
from stdnum.exceptions import ValidationError

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
USCC_PATTERN = "^[1-9ANY][0-9A-HJ-NP-RTUWXY]{17}$"
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
ORG_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""GB 11714 character values: digits 0-9, letters A=10 … Z=35 (the whole Latin alphabet, unlike GB 32100)."""
RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RIC_CHECK = "10X98765432"
RIC_PATTERN = "^[0-9]{17}[0-9X]$"


def uscc_check_char(first17: str) -> str:
    """The 18th character of a 统一社会信用代码 (GB 32100-2015)."""
    return _uscc.calc_check_digit(first17)


def is_valid_uscc(code: str | None) -> bool:
    """Format, registration-department letter and check character, for every prefix."""
    if not code or len(code) != 18 or any(c not in USCC_ALPHABET for c in code):
        return False
    if code[0] not in "123456789ANY":
        return False
    if code[:8].isdigit():
        return _uscc.is_valid(code)
    # stdnum refuses non-digit prefixes; the check character is computed the same way.
    return code[17] == uscc_check_char(code[:17])


def org_code_check_char(first8: str) -> str:
    """GB 11714 check of positions 9-17 (a warning only when wrong); letters count A=10 … Z=35."""
    total = sum(ORG_ALPHABET.index(c) * w for c, w in zip(first8, ORG_WEIGHTS))
    c = 11 - total % 11
    return {10: "X", 11: "0"}.get(c, str(c))


def is_valid_id_number(number: str | None) -> bool:
    """18-digit 身份证号: birth date and ISO 7064 MOD 11-2 check (county list not enforced)."""
    if not number or len(number) != 18:
        return False
    try:
        _ric.validate(number)
    except ValidationError as exc:
        # An unknown county is only a warning (divisions change); everything else is an error.
        return type(exc).__name__ == "InvalidComponent" and _county_only_problem(number)
    return True


def _county_only_problem(number: str) -> bool:
    try:
        _ric.get_birth_date(number)
    except ValidationError:
        return False
    return number[-1] == ric_check_char(number[:17])


def ric_check_char(first17: str) -> str:
    return RIC_CHECK[sum(int(d) * w for d, w in zip(first17, RIC_WEIGHTS)) % 11]


def upgrade_id15(number: str) -> str:
    """Convert a legacy 15-digit 身份证号 to 18 digits (century 19, computed check)."""
    first17 = number[:6] + "19" + number[6:]
    return first17 + ric_check_char(first17)


@functools.cache
def region_codes() -> dict[str, tuple[str, bool]]:
    """GB/T 2260 county-level codes known to python-stdnum: code → (name, still current)."""
    from stdnum import numdb

    out: dict[str, tuple[str, bool]] = {}
    for _len, prov, _hi, _props, children in numdb.get("cn/loc").prefixes:
        for _l, rest, _h, props, _c in children:
            name = props.get("county", "")
            # "[-2010]崇文区" retired in 2010; "[1986-]房山区" or no bracket: current.
            spans = re.findall(r"\[(\d*)-(\d*)\]", name)
            current = not spans or any(end == "" for _start, end in spans)
            out[prov + rest] = (re.sub(r"\[[^\]]*\]", "", name.split(",")[-1]), current)
    return out


# ---- the same checks as SQL expressions -------------------------------------------------


def _char_value(col: str, pos: int) -> str:
    return f"(instr('{USCC_ALPHABET}', substr({col}, {pos}, 1)) - 1)"


def sql_uscc_valid(col: str, d) -> str:
    """SQL boolean: ``col`` is a valid 统一社会信用代码 (null stays null); ``d`` is the Dialect."""
    terms = " + ".join(f"{w} * {_char_value(col, i + 1)}" for i, w in enumerate(USCC_WEIGHTS))
    check = f"substr('{USCC_ALPHABET}', ((31 - (({terms}) % 31)) % 31) + 1, 1)"
    return f"({d.full_match(col, USCC_PATTERN)} and substr({col}, 18, 1) = {check})"


def sql_ric_check_char(first17: str) -> str:
    """SQL: the ISO 7064 MOD 11-2 check character of the 17-digit text ``first17``: a digit's value is its
    code less 48 (a third cheaper than casting each to an integer), so the caller makes sure they are digits (both
    test a regex first)."""
    terms = " + ".join(
        f"{w} * (ascii(substr({first17}, {i + 1}, 1)) - 48)" for i, w in enumerate(RIC_WEIGHTS))
    return f"substr('{RIC_CHECK}', (({terms}) % 11) + 1, 1)"


def sql_id_number_valid(col: str, d) -> str:
    """SQL boolean: ``col`` is a valid 18-digit 身份证号 with a real birth date; ``d`` is the Dialect."""
    birth = d.try_parse_date(f"substr({col}, 7, 8)", "%Y%m%d")
    return (
        f"({d.full_match(col, RIC_PATTERN)} and substr({col}, 18, 1) = {sql_ric_check_char(col)}"
        f" and {birth} is not null and substr({col}, 7, 4) >= '1900')"
    )


def sql_org_code_valid(col: str) -> str:
    """SQL boolean: the 9-character GB 11714 organisation code ``col`` carries its check character
    (8 body characters of 0-9 A-Z, then the check: 11 − Σ mod 11, 10 → X, 11 → 0)."""
    terms = " + ".join(f"{w} * (instr('{ORG_ALPHABET}', substr({col}, {i + 1}, 1)) - 1)"
                       for i, w in enumerate(ORG_WEIGHTS))
    check = f"substr('0123456789X0', 11 - (({terms}) % 11) + 1, 1)"
    return f"(substr({col}, 9, 1) = {check})"
