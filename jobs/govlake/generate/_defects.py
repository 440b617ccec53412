"""The defect kinds the generator injects, and what the pipeline is expected to do with each."""

from __future__ import annotations

from enum import Enum


class DefectEffect(str, Enum):
    """What the pipeline must do with a row that carries a defect."""

    QUARANTINE = "quarantine"
    """The row is invalid: validation moves it to ``quarantine/<slug>``."""
    STANDARDIZE = "standardize"
    """Standardization repairs the value; the row reaches silver."""
    DEDUPLICATE = "deduplicate"
    """An exact copy of an earlier valid row: silver keeps one row per key."""
    FINDING = "finding"
    """A valid row that KPIs or conflict detection report later (not quarantined)."""


class DefectKind(str, Enum):
    """One kind of injected defect. A generated row carries at most one."""

    USCC_CHECK = "uscc_check"
    ID_CHECK = "id_check"
    FULL_WIDTH = "full_width"
    DATE_FORMAT = "date_format"
    BLANK_REQUIRED = "blank_required"
    UNKNOWN_CODE = "unknown_code"
    CODE_SYNONYM = "code_synonym"
    WHITESPACE = "whitespace"
    CROSS_FIELD = "cross_field"
    FUTURE_DATE = "future_date"
    DUPLICATE = "duplicate"
    LATE_SUBMISSION = "late_submission"
    DISAGREEMENT = "disagreement"

    @property
    def effect(self) -> DefectEffect:
        return EFFECTS[self]

    @property
    def invalid(self) -> bool:
        """True when the row must end in quarantine."""
        return EFFECTS[self] is DefectEffect.QUARANTINE

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self]


EFFECTS: dict[DefectKind, DefectEffect] = {
    DefectKind.USCC_CHECK: DefectEffect.QUARANTINE,
    DefectKind.ID_CHECK: DefectEffect.QUARANTINE,
    DefectKind.BLANK_REQUIRED: DefectEffect.QUARANTINE,
    DefectKind.UNKNOWN_CODE: DefectEffect.QUARANTINE,
    DefectKind.CROSS_FIELD: DefectEffect.QUARANTINE,
    DefectKind.FUTURE_DATE: DefectEffect.QUARANTINE,
    DefectKind.FULL_WIDTH: DefectEffect.STANDARDIZE,
    DefectKind.DATE_FORMAT: DefectEffect.STANDARDIZE,
    DefectKind.CODE_SYNONYM: DefectEffect.STANDARDIZE,
    DefectKind.WHITESPACE: DefectEffect.STANDARDIZE,
    DefectKind.DUPLICATE: DefectEffect.DEDUPLICATE,
    DefectKind.LATE_SUBMISSION: DefectEffect.FINDING,
    DefectKind.DISAGREEMENT: DefectEffect.FINDING,
}

DESCRIPTIONS: dict[DefectKind, str] = {
    DefectKind.USCC_CHECK: "统一社会信用代码 with a wrong 18th (check) character",
    DefectKind.ID_CHECK: "身份证号 with a wrong 18th (check) character",
    DefectKind.FULL_WIDTH: "identifier written with full-width digits and letters (９１３７…, Ａ)",
    DefectKind.DATE_FORMAT: "date as 2026年10月9日, 2026/10/09, 20261009 or an Excel serial number (46304)",
    DefectKind.BLANK_REQUIRED: "a required item left blank",
    DefectKind.UNKNOWN_CODE: "a value outside the item's code list (e.g. 处罚类别 = 罚没)",
    DefectKind.CODE_SYNONYM: "a code-list synonym standardization maps (当前状态 = 1, 行政相对人类别 = 法人)",
    DefectKind.WHITESPACE: "leading and/or trailing spaces around a value",
    DefectKind.CROSS_FIELD: "a cross-field rule broken (罚款 without 罚款金额; 有效期自 after 有效期至)",
    DefectKind.FUTURE_DATE: "a decision/establishment/rating date after the as-of date",
    DefectKind.DUPLICATE: "exact copy of an earlier valid row of the same file (same business key)",
    DefectKind.LATE_SUBMISSION: "报送时间 later than 7 working days after the decision date",
    DefectKind.DISAGREEMENT: ("a copy of an item whose authority holds another value (tax, hrss against amr; "
                              "a 自然人's name in the credit and court feeds against psb)"),
}

INVALID_KINDS: frozenset[DefectKind] = frozenset(k for k in DefectKind if k.invalid)
"""Kinds whose rows the pipeline must quarantine."""

FULL_WIDTH_TABLE = {c: chr(ord(c) + 0xFEE0) for c in
                    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}


_FULL_WIDTH = str.maketrans(FULL_WIDTH_TABLE)


def to_full_width(value: str) -> str:
    """ASCII digits and letters to their full-width forms (９１３７０１…)."""
    return value.translate(_FULL_WIDTH)


def kinds_table() -> dict[str, dict]:
    """The kinds as written in manifest.json: effect, invalid and description."""
    return {k.value: {"effect": k.effect.value, "invalid": k.invalid, "description": k.description}
            for k in DefectKind}
