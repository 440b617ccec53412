"""amr.enterprise: the market-regulation registry database (table ``amr_enterprise``)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from govlake.generate._calendar import day_number, day_text
from govlake.generate._context import City
from govlake.generate._defects import DefectKind
from govlake.generate._frame import INVALID_CODES, Frame, Spec, inject_cells
from govlake.generate._random import batch_rng

K = DefectKind
RESOURCE = "amr.enterprise"
TABLE = "amr_enterprise"

SPEC = Spec(
    kinds=(K.USCC_CHECK, K.ID_CHECK, K.FULL_WIDTH, K.DATE_FORMAT, K.BLANK_REQUIRED, K.UNKNOWN_CODE,
           K.CODE_SYNONYM, K.WHITESPACE, K.FUTURE_DATE),
    uscc=("uscc",), ids=("legal_rep_id",), dates=("established",),
    required=("uscc", "name", "legal_rep", "established", "address", "region_code", "status"),
    codes={"status": "registration_status"},
    text=("name", "legal_rep", "address", "uscc"),
    blank=None,
)


def planned_kinds(city: City, idx: np.ndarray) -> np.ndarray:
    """Codes of the defect kinds planned for registry rows ``idx`` (-1 = clean, see _frame.CODES).

    Drawn from a hash of the index, so other resources can prefer enterprises whose
    registry row is valid and record disagreements only against clean registry rows.
    """
    frame = Frame(len(idx), 0)
    frame.plan_from(city.amr_defect_draw(idx), SPEC.kinds, city.defect_rate)
    out = frame.planned
    out[np.asarray(idx) >= city.n_ent] = -1
    return out


def prefer_valid(city: City, idx: np.ndarray, tries: int = 4) -> np.ndarray:
    """Registry indices moved on to the next enterprise while their registry row is planned invalid
    (a few tries), so that other resources mostly name enterprises the registry really holds."""
    for _ in range(tries):
        bad = np.isin(planned_kinds(city, idx), INVALID_CODES)
        if not bad.any():
            break
        idx = np.where(bad, (idx + 1) % city.n_ent, idx)
    return idx


def registry_columns(city: City) -> list[str]:
    return [item.column for item in city.resource(RESOURCE).items]


def registry_frames(city: City, *, batch_size: int, rows: int | None = None) -> Iterator[Frame]:
    """Registry rows (all ``city.n_ent``, or the first ``rows``) in ``updated_at`` order, in
    batches, with their injected defects."""
    columns = registry_columns(city)
    today = day_number(city.as_of)
    total = city.n_ent if rows is None else min(rows, city.n_ent)
    for start in range(0, total, batch_size):
        idx = np.arange(start, min(start + batch_size, total))
        rng = batch_rng(city.seed, RESOURCE, start)
        ent = city.enterprises(idx)
        frame = Frame(len(idx), start)
        frame.plan_from(ent["amr_kind"], SPEC.kinds, city.defect_rate)
        for c in columns:
            frame[c] = ent[c].copy()
        future = frame.planned_rows(K.FUTURE_DATE)
        frame.set("established", future, day_text(today + rng.integers(1, 200, len(future))))
        frame.mark(future, K.FUTURE_DATE, "established")
        inject_cells(frame, SPEC, columns, rng, city.catalog)
        yield frame


def registry_rows(city: City, *, batch_size: int = 50_000) -> Iterator[dict[str, str | None]]:
    columns = registry_columns(city)
    for frame in registry_frames(city, batch_size=batch_size):
        for row in frame.rows(columns):
            yield dict(zip(columns, row))
