"""A batch of generated rows (columns of str) and the cell-level defect injection.

Each row is assigned at most one defect kind up front (:meth:`Frame.plan`): the resource
generator applies the kinds that shape generation (future dates, late submissions,
cross-field breaks, disagreements), :func:`inject_cells` the cell edits, and
:func:`inject_duplicates` finally overwrites rows with copies of earlier clean rows.
A planned kind that does not apply to its row (e.g. a USCC defect on a natural person)
is dropped, so the row stays clean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from govlake.catalog import Catalog
from govlake.generate._calendar import variant
from govlake.generate._defects import DefectKind, to_full_width
from govlake.generate._ids import wrong_ric_check, wrong_uscc_check

K = DefectKind
KINDS: list[DefectKind] = list(DefectKind)
CODES: dict[DefectKind, int] = {k: i for i, k in enumerate(KINDS)}
INVALID_CODES = np.array([CODES[k] for k in KINDS if k.invalid], dtype=np.int8)

UNKNOWN_CODES: dict[str, list[str]] = {
    "subject_type": ["企业", "单位"],
    "id_type": ["军官证", "驾驶证"],
    "license_category": ["行政许可", "备案"],
    "penalty_category": ["罚没", "处理"],
    "decision_status": ["暂停", "待审核"],
    "registration_status": ["筹建", "营业中"],
    "tax_rating": ["E", "AA"],
    "sex": ["未知", "X"],
    "performance": ["执行中", "终本"],
}

CELL_KINDS = frozenset({K.USCC_CHECK, K.ID_CHECK, K.FULL_WIDTH, K.DATE_FORMAT, K.BLANK_REQUIRED,
                        K.UNKNOWN_CODE, K.CODE_SYNONYM, K.WHITESPACE})
_SPLIT = re.compile(r"[;；、]")


@dataclass(frozen=True)
class Spec:
    """Which defects a file can carry and the columns each kind may touch."""

    kinds: tuple[DefectKind, ...]
    uscc: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    codes: dict[str, str] = field(default_factory=dict)
    """column → code list name (unknown values and synonyms)."""
    text: tuple[str, ...] = ()
    """columns that may get surrounding whitespace."""
    blank: str | None = ""
    """how a blank cell is written ("" in text files, None in JSON and databases)."""


class Frame:
    """Columns (object arrays of str) of ``n`` rows, with the defect carried by each row."""

    def __init__(self, n: int, start: int):
        self.n = n
        self.start = start
        self.cols: dict[str, np.ndarray] = {}
        self.planned = np.full(n, -1, dtype=np.int8)
        """Code (index in KINDS) of the kind planned for each row; -1 for none."""
        self.kind = np.full(n, -1, dtype=np.int8)
        """Code of the kind each row actually carries; -1 for none."""
        self.column = np.full(n, None, dtype=object)
        self.disagreements: list[dict] = []
        self.constant: set[str] = set()
        """Columns holding one value in every row (set from a scalar and not edited since)."""

    def plan(self, rng: np.random.Generator, kinds: tuple[DefectKind, ...], rate: float) -> None:
        """Draw each row's candidate kind: each kind with probability ``rate``."""
        self.plan_from(rng.random(self.n), kinds, rate)

    def plan_from(self, u: np.ndarray, kinds: tuple[DefectKind, ...], rate: float) -> None:
        """Plan kinds from uniforms ``u``: kind i when ``i*rate <= u < (i+1)*rate``."""
        if not kinds or rate <= 0:
            return
        slot = np.floor(u / rate).astype(np.int64)
        table = np.array([CODES[k] for k in kinds] + [-1], dtype=np.int8)
        self.planned = table[np.minimum(slot, len(kinds))]

    def planned_rows(self, kind: DefectKind) -> np.ndarray:
        return np.flatnonzero(self.planned == CODES[kind])

    def mark(self, rows, kind: DefectKind, column: str) -> None:
        self.kind[rows] = CODES[kind]
        self.column[rows] = column

    def __setitem__(self, name: str, values) -> None:
        """Set a whole column: an array (any dtype; kept as str objects) or one value for all rows."""
        if isinstance(values, str) or values is None:
            self.cols[name] = np.full(self.n, values, dtype=object)
            self.constant.add(name)
            return
        arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
        if arr.dtype != object:
            arr = arr.astype(object)
        self.cols[name] = arr
        self.constant.discard(name)

    def set(self, name: str, rows, values) -> None:
        """Set some cells of a column (the way every edit after generation goes)."""
        self.cols[name][rows] = values
        self.constant.discard(name)

    def __getitem__(self, name: str) -> np.ndarray:
        """A column (object array). Edit cells with :meth:`set`, not in place."""
        return self.cols[name]

    def rows(self, columns: list[str]):
        """Row tuples in the order of ``columns``."""
        return zip(*(self.cols[c].tolist() for c in columns))


def inject_cells(frame: Frame, spec: Spec, columns: list[str], rng: np.random.Generator,
                 catalog: Catalog) -> None:
    """Apply the planned cell-level kinds; columns not in ``columns`` are never touched."""
    present = set(columns)
    for kind in spec.kinds:
        if kind not in CELL_KINDS:
            continue
        rows = frame.planned_rows(kind)
        if not len(rows):
            continue
        cols = [c for c in _columns_for(spec, kind) if c in present]
        if not cols:
            continue
        picks = rng.integers(0, 1 << 30, size=len(rows))
        # candidates: (rows, cols) — the cell is filled (and, for synonyms, has one)
        cand = np.zeros((len(rows), len(cols)), dtype=bool)
        for j, c in enumerate(cols):
            values = frame.cols[c][rows].tolist()
            if kind is K.CODE_SYNONYM:
                cand[:, j] = [bool(v) and _synonym(v, spec.codes[c], catalog, 0) is not None for v in values]
            else:
                cand[:, j] = [bool(v) for v in values]
        count = cand.sum(axis=1)
        ok = count > 0
        nth = np.where(ok, picks % np.maximum(count, 1), 0)
        choice = np.argmax(cand & (np.cumsum(cand, axis=1) == (nth + 1)[:, None]), axis=1)
        for j, c in enumerate(cols):
            sel = ok & (choice == j)
            if not sel.any():
                continue
            target = rows[sel]
            values = frame.cols[c][target].tolist()
            ks = (picks[sel] // 7).tolist()
            frame.set(c, target, [_edit(kind, v, k, spec, c, catalog) for v, k in zip(values, ks)])
            frame.mark(target, kind, c)


def _columns_for(spec: Spec, kind: DefectKind) -> tuple[str, ...]:
    if kind is K.BLANK_REQUIRED:
        return spec.required
    if kind is K.USCC_CHECK:
        return spec.uscc
    if kind is K.FULL_WIDTH:
        return spec.uscc + spec.ids
    if kind is K.ID_CHECK:
        return spec.ids
    if kind is K.DATE_FORMAT:
        return spec.dates
    if kind is K.WHITESPACE:
        return spec.text
    return tuple(spec.codes)  # UNKNOWN_CODE, CODE_SYNONYM


def _edit(kind: DefectKind, value: str, k: int, spec: Spec, col: str, catalog: Catalog) -> str | None:
    """The defective form of ``value``."""
    if kind is K.BLANK_REQUIRED:
        return spec.blank
    if kind is K.USCC_CHECK:
        return wrong_uscc_check(value, k)
    if kind is K.ID_CHECK:
        return wrong_ric_check(value, k)
    if kind is K.FULL_WIDTH:
        return to_full_width(value)
    if kind is K.DATE_FORMAT:
        return variant(value, k)
    if kind is K.WHITESPACE:
        return (" " + value, value + " ", "  " + value + " ")[k % 3]
    if kind is K.UNKNOWN_CODE:
        options = UNKNOWN_CODES[spec.codes[col]]
        return options[k % len(options)]
    return _synonym(value, spec.codes[col], catalog, k)


def _synonym(value: str, code_list: str, catalog: Catalog, k: int) -> str | None:
    """``value`` with one canonical value replaced by a synonym, or None when there is none."""
    for part in _SPLIT.split(value):
        options = _synonyms_of(catalog, code_list).get(part)
        if options:
            return value.replace(part, options[k % len(options)], 1)
    return None


_SYNONYMS: dict[tuple[int, str], dict[str, list[str]]] = {}


def _synonyms_of(catalog: Catalog, code_list: str) -> dict[str, list[str]]:
    """canonical value → its synonyms (sorted), per code list."""
    key = (id(catalog), code_list)
    if key not in _SYNONYMS:
        out: dict[str, list[str]] = {}
        for syn, canon in sorted(catalog.code_lists[code_list].synonyms.items()):
            out.setdefault(canon, []).append(syn)
        _SYNONYMS[key] = out
    return _SYNONYMS[key]


def inject_duplicates(frame: Frame) -> None:
    """Overwrite rows planned as duplicates with the nearest earlier row that carries no defect."""
    dup = frame.planned == CODES[K.DUPLICATE]
    if not dup.any():
        return
    clean = (frame.kind < 0) & ~dup
    last = np.where(clean, np.arange(frame.n), -1)
    last = np.maximum.accumulate(last)
    source = np.concatenate([[-1], last[:-1]])  # nearest clean row strictly before each row
    rows = np.flatnonzero(dup & (source >= 0))
    for arr in frame.cols.values():
        arr[rows] = arr[source[rows]]
    frame.kind[rows] = CODES[K.DUPLICATE]
    frame.column[rows] = None
