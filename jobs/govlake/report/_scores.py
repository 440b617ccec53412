"""Department scorecards: the measures of scorecard.yml per department and period, the weighted total,
the rank, and the change since the previous period.

A period is a month (``2026-10``) or a quarter (``2026-Q4``). Row measures add their numerators and
denominators over the period's months; the KPI measures do the same with the KPI's monthly values;
snapshot measures (consistency, timeliness) take the current figures for the period that holds the
business date and, for earlier periods, the last figures recorded in meta/kpi_history in that period.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SCORECARD_YML = Path(__file__).with_name("scorecard.yml")


@cache
def load_scorecard(path: Path = SCORECARD_YML) -> dict[str, Any]:
    """The measures, weights and rule dimensions of the scorecard (``scorecard.yml``)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    ids = [m["id"] for m in doc["measures"]]
    if len(set(ids)) != len(ids) or any(float(m["weight"]) < 0 for m in doc["measures"]):
        raise ValueError(f"{path}: measure ids must be unique and weights non-negative")
    return doc


@dataclass(frozen=True)
class Measure:
    num: float
    den: float

    @property
    def score(self) -> float | None:
        return self.num / self.den if self.den else None


@dataclass
class Scorecard:
    dept: str
    period: str
    measures: dict[str, Measure] = field(default_factory=dict)
    total: float | None = None
    rank: int | None = None
    prev_total: float | None = None
    prev_rank: int | None = None

    def score(self, measure: str) -> float | None:
        m = self.measures.get(measure)
        return None if m is None else m.score


def months_of(period: str) -> list[str]:
    """``2026-10`` → [``2026-10``]; ``2026-Q4`` → [``2026-10``, ``2026-11``, ``2026-12``]."""
    if "-Q" in period:
        year, q = period.split("-Q")
        return [f"{year}-{m:02d}" for m in range(3 * int(q) - 2, 3 * int(q) + 1)]
    return [period]


def previous(period: str) -> str:
    if "-Q" in period:
        year, q = map(int, period.split("-Q"))
        return f"{year - 1}-Q4" if q == 1 else f"{year}-Q{q - 1}"
    day = dt.date.fromisoformat(period + "-01") - dt.timedelta(days=1)
    return f"{day:%Y-%m}"


def quarter_of(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def weighted_total(measures: dict[str, Measure], weights: dict[str, float]) -> float | None:
    """100 × Σ weight × score ÷ Σ weight over the measures that have a score; None when none has."""
    scored = [(weights[k], m.score) for k, m in measures.items() if m.score is not None and weights.get(k)]
    total_weight = sum(w for w, _ in scored)
    return None if not total_weight else 100 * sum(w * s for w, s in scored) / total_weight


def rank(cards: list[Scorecard]) -> None:
    """Rank 1 = highest total; equal totals share a rank; departments without a total get none."""
    ordered = sorted((c for c in cards if c.total is not None), key=lambda c: (-round(c.total, 9), c.dept))
    for i, c in enumerate(ordered):
        c.rank = ordered[i - 1].rank if i and round(ordered[i - 1].total, 9) == round(c.total, 9) else i + 1


def _kpi_measure(values: dict[tuple[str, str], tuple[float | None, float | None]], dept: str,
                 months: list[str]) -> Measure | None:
    pairs = [values[(dept, m)] for m in months if (dept, m) in values]
    pairs = [(n, d) for n, d in pairs if d]
    if not pairs:
        return None
    return Measure(sum(n or 0 for n, _ in pairs), sum(d for _, d in pairs))


def department_measures(data, period: str) -> dict[str, dict[str, Measure]]:
    """Every department's measures in ``period`` (see the module docstring)."""
    months = months_of(period)
    current = f"{data.as_of:%Y-%m}" in months
    out: dict[str, dict[str, Measure]] = {}

    def put(dept: str, measure: str, m: Measure | None) -> None:
        if m is not None and m.den:
            out.setdefault(dept, {})[measure] = m

    depts = {d for d, m in data.rows_by_dept_month if m in months}
    for dept in sorted(depts):
        sums: dict[str, int] = {}
        for m in months:
            for k, v in data.rows_by_dept_month.get((dept, m), {}).items():
                sums[k] = sums.get(k, 0) + v
        rows = sums.get("rows", 0)
        for dim in ("completeness", "standardization", "accuracy"):
            put(dept, dim, Measure(rows - sums.get(f"fail_{dim}", 0), rows))
        put(dept, "quarantine", Measure(rows - sums.get("quarantined", 0), rows))

    kpis = {k.id: k for k in data.kpis}
    for kid, measure in (("credit.compliance_rate", "credit_compliance"), ("credit.timeliness_rate",
                                                                          "credit_timeliness")):
        if kid not in kpis:
            continue
        values = {(v.scope, v.period): (v.numerator, v.denominator) for v in kpis[kid].values if v.scope != "all"}
        for dept in sorted({s for s, _ in values}):
            put(dept, measure, _kpi_measure(values, dept, months))

    # Snapshot measures: now for the current period, else the period's last recorded figures.
    def snapshot(kid: str) -> dict[str, tuple[float | None, float | None, float | None]]:
        if current and kid in kpis:
            return {v.scope: (v.value, v.numerator, v.denominator) for v in kpis[kid].values}
        found: dict[str, tuple] = {}
        for m in months:
            for (k, scope, month), figures in data.kpi_history_last.items():
                if k == kid and month == m:
                    found[scope] = figures
        return found

    for scope, (_value, n, d) in snapshot("governance.conflict_rate_by_department").items():
        if scope != "all" and d:
            put(scope, "consistency", Measure(d - (n or 0), d))
    fresh: dict[str, list[int]] = {}
    for scope, (value, _n, _d) in snapshot("sharing.freshness").items():
        res = data.catalog.resources.get(scope)
        if res is not None and value is not None:
            counts = fresh.setdefault(res.provider, [0, 0])
            counts[0] += value <= 0
            counts[1] += 1
    for dept, (ok, total) in fresh.items():
        put(dept, "timeliness", Measure(ok, total))
    return out


def scorecards(data, period: str, scoring: dict[str, Any]) -> list[Scorecard]:
    """Scorecards of every department with a measure in ``period``, ranked, with the previous period's
    total and rank."""
    weights = {m["id"]: float(m["weight"]) for m in scoring["measures"]}

    def build(p: str) -> list[Scorecard]:
        cards = [Scorecard(dept, p, measures, weighted_total(measures, weights))
                 for dept, measures in department_measures(data, p).items()]
        rank(cards)
        return cards

    now, before = build(period), {c.dept: c for c in build(previous(period))}
    for c in now:
        if c.dept in before:
            c.prev_total, c.prev_rank = before[c.dept].total, before[c.dept].rank
    return sorted(now, key=lambda c: (c.rank is None, c.rank or 0, c.dept))
