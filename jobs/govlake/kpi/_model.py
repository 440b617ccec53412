"""The KPI model and the provider registry."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
from dataclasses import dataclass, field
from typing import Literal

from govlake import contracts
from govlake.config import Settings

Unit = Literal["ratio", "rows", "days", "count"]

PROVIDERS: tuple[str, ...] = (
    "govlake.credit.kpis:credit_kpis",
    "govlake.governance.kpis:conflict_kpis",
    "govlake.sharing.kpis:sharing_kpis",
)
"""``module:function`` of every KPI provider, in the order ``govlake kpi`` prints them."""


@dataclass(frozen=True)
class KpiValue:
    """One figure of a KPI: for one scope (a department code, a resource, or ``all``) and period."""

    scope: str
    period: str
    """``2026-11`` (month), ``2026-Q4`` (quarter), or ``as of 2026-11-20`` (a snapshot)."""
    value: float | None
    """The ratio (0–1), row count or days; None when the denominator is 0."""
    numerator: float | None = None
    denominator: float | None = None
    provisional: bool = False
    """Computed with an assumption that may change (e.g. a calendar year not covered yet)."""
    meets_target: bool | None = None
    note: str | None = None
    """What the figure rests on when it departs from the definition, shown next to it (e.g. a feed
    without 报送时间 judged by its received time)."""


@dataclass(frozen=True)
class Kpi:
    id: str
    """Stable id, e.g. ``credit.compliance_rate``."""
    name_zh: str
    name_en: str
    definition_zh: str
    definition_en: str
    inputs: tuple[str, ...]
    """Tables and files the figures are computed from (e.g. ``gold/penalty_record``)."""
    period: str
    """What a period is for this KPI (e.g. 'calendar month of the decision date')."""
    unit: Unit
    target: float | None = None
    """The plans' target (a ratio for ``ratio``), None when the plans set none."""
    target_direction: Literal["min", "max"] = "min"
    """``min``: the value must be at least the target; ``max``: at most."""
    values: tuple[KpiValue, ...] = field(default_factory=tuple)

    def with_target_status(self) -> Kpi:
        """Fill ``meets_target`` on every value from :attr:`target`."""
        if self.target is None:
            return self
        def ok(v: KpiValue) -> bool | None:
            if v.value is None:
                return None
            return v.value >= self.target if self.target_direction == "min" else v.value <= self.target
        return dataclasses.replace(self, values=tuple(dataclasses.replace(v, meets_target=ok(v))
                                                      for v in self.values))

    def below_target(self, period: str | None = None) -> list[str]:
        """Scopes (other than ``all``) whose value misses the target, for ``period`` or any period."""
        return sorted({v.scope for v in self.with_target_status().values
                       if v.meets_target is False and v.scope != "all" and (period is None or v.period == period)})


def compute_kpis(settings: Settings) -> list[Kpi]:
    """Every KPI from every provider, with target status filled in."""
    kpis: list[Kpi] = []
    for path in PROVIDERS:
        module, func = path.split(":")
        kpis.extend(k.with_target_status() for k in getattr(importlib.import_module(module), func)(settings))
    return kpis


HISTORY_SCHEMA = contracts.KPI_HISTORY


def record_kpis(settings: Settings, kpis: list[Kpi], *, run_id: str) -> int:
    """Append every value of ``kpis`` to lake/meta/kpi_history (the report's trends); returns the count."""

    from govlake import locks, steps

    at = dt.datetime.now(dt.UTC)
    rows = [{"kpi_id": k.id, "name_zh": k.name_zh, "scope": v.scope, "period": v.period, "value": v.value,
             "numerator": v.numerator, "denominator": v.denominator, "provisional": v.provisional,
             "meets_target": v.meets_target, "target": k.target, "as_of": settings.today, "run_id": run_id,
             "recorded_at": at} for k in kpis for v in k.values]
    # one stamped commit: a run interrupted around it is superseded by the next (values are per run)
    steps.run(settings, "kpis", lock=locks.PUBLISH, run_id=run_id, params=dict, reads=lambda _: [], replay=False,
              body=lambda intent: intent.append_rows("meta/kpi_history", rows, HISTORY_SCHEMA))
    return len(rows)


def kpis_to_json(kpis: list[Kpi], *, as_of: str) -> dict:
    """The ``govlake kpi --json`` document."""
    return {
        "as_of": as_of,
        "kpis": [dataclasses.asdict(k) | {"below_target": k.below_target()} for k in kpis],
    }
