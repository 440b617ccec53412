"""The city being generated: seed, sizes, as-of date, catalog, and cached lookups."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from govlake.catalog import Catalog, Resource
from govlake.generate._enterprises import enterprise_columns
from govlake.generate._people import person_columns
from govlake.generate._random import hash_unit

CACHE_LIMIT = 100_000
"""Enterprises/persons are held in memory up to this many; beyond, computed per batch."""

EXTERNAL_SHARE = 0.05
"""Share of legal-entity 双公示 subjects registered outside the city's registry."""


@dataclass
class City:
    seed: int
    as_of: dt.date
    n_ent: int
    n_pop: int
    defect_rate: float
    catalog: Catalog
    n_pen: int = 0
    """Penalty rows of the city (what credit repairs refer to)."""
    _ent: dict | None = field(default=None, repr=False)
    _pop: dict | None = field(default=None, repr=False)

    @property
    def n_external(self) -> int:
        return max(20, self.n_ent // 10)

    def resource(self, code: str) -> Resource:
        return self.catalog.resource(code)

    def enterprises(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """Enterprise attributes of ``idx`` (registry and external indices)."""
        total = self.n_ent + self.n_external
        if total <= CACHE_LIMIT:
            if self._ent is None:
                self._ent = self._enterprise_columns(np.arange(total))
            return {k: v[idx] for k, v in self._ent.items()}
        return self._enterprise_columns(idx)

    def _enterprise_columns(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        cols = enterprise_columns(self.seed, idx, n_pop=self.n_pop, as_of=self.as_of, n_ent=self.n_ent)
        cols["amr_kind"] = self.amr_defect_draw(idx)
        return cols

    def persons(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        if self.n_pop <= CACHE_LIMIT:
            if self._pop is None:
                self._pop = person_columns(self.seed, np.arange(self.n_pop))
            return {k: v[idx] for k, v in self._pop.items()}
        return person_columns(self.seed, idx)

    def amr_defect_draw(self, idx: np.ndarray) -> np.ndarray:
        """Uniform draw deciding the registry row's defect (by index, so others can avoid it)."""
        return hash_unit(self.seed, "amr-defect", idx)


AS_OF = dt.date(2026, 11, 20)
SHARES: dict[str, float] = {
    "amr.enterprise": 0.15, "credit.penalty": 0.35, "credit.license": 0.25,
    "psb.population": 0.15, "hrss.social_insurance": 0.08, "tax.credit_rating": 0.02,
}
"""Share of ``scale`` (total rows) each resource gets."""
DERIVED: dict[str, tuple[str, float]] = {
    "credit.repair": ("credit.penalty", 0.02),
    "court.dishonest": ("amr.enterprise", 0.01),
}
"""Resources sized from another one: credit repairs ~2% of penalties, 失信 entries ~1% of enterprises."""
GENERATED = (*SHARES, *DERIVED)
"""The resources this generator can write; a catalog resource outside it is skipped (see ``skipped``)."""
MIN_ROWS = 20
MAX_KINDS = 12
"""Most defect kinds one file can carry; ``defect_rate`` must stay at or below 1/MAX_KINDS."""


def plan_rows(scale: int) -> dict[str, int]:
    """Rows per resource for a city of ``scale`` rows in total (at least MIN_ROWS each); the
    ``DERIVED`` resources come on top, as a share of the resource they refer to."""
    rows = {code: max(MIN_ROWS, round(scale * share)) for code, share in SHARES.items()}
    for code, (base, share) in DERIVED.items():
        rows[code] = max(MIN_ROWS, round(rows[base] * share))
    return rows


def skipped(catalog: Catalog, *, only: str | None = None) -> dict[str, str]:
    """Catalog resources (``only``, when given) the generator has no generator for, each with a note:
    they are left out of the city, and their departments' files must be put in the inbox by hand."""
    notes = {}
    for code in sorted(catalog.resources):
        if code in GENERATED or only not in (None, code):
            continue
        src = catalog.resource(code).source
        if src.kind == "db":
            notes[code] = f"no generator for it; fill table {src.table} of the source database yourself"
        else:
            notes[code] = f"no generator for it; put its {src.kind} files in the inbox yourself ({src.pattern})"
    return notes


def make_city(*, scale: int, seed: int, defect_rate: float, as_of: dt.date, only: str | None,
              rows: int | None, catalog: Catalog) -> tuple[City, dict[str, int]]:
    """The city and the rows to write per resource (only ``only`` when given; nothing when ``only`` is a
    catalog resource without a generator, see :func:`skipped`)."""
    if not 0 <= defect_rate <= 1 / MAX_KINDS:
        raise ValueError(f"defect_rate must be within [0, {1 / MAX_KINDS:.4f}] (one defect per row, "
                         f"up to {MAX_KINDS} kinds), not {defect_rate}")
    if scale < 1:
        raise ValueError(f"scale must be positive, not {scale}")
    if rows is not None and only is None:
        raise ValueError("rows needs only= (the resource to write)")
    if rows is not None and rows < 0:
        raise ValueError(f"rows must be >= 0, not {rows}")
    planned = plan_rows(scale)
    if only is not None:
        if only not in planned and only not in catalog.resources:
            raise ValueError(f"unknown resource {only!r}; choose one of {', '.join(planned)}")
        planned = {only: planned[only] if rows is None else rows} if only in planned else {}
    full = plan_rows(scale)
    n_ent = planned.get("amr.enterprise", full["amr.enterprise"]) or 1
    n_pop = planned.get("psb.population", full["psb.population"]) or 1
    n_pen = planned.get("credit.penalty", full["credit.penalty"])
    city = City(seed=seed, as_of=as_of, n_ent=n_ent, n_pop=n_pop, defect_rate=defect_rate,
                catalog=catalog, n_pen=n_pen)
    return city, planned
