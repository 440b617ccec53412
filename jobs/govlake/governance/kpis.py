"""一数一源 conflict rates as KPIs (``govlake kpi``): per department and per data item.

Computed from silver with the same comparison :func:`govlake.governance.detect_conflicts` uses, so
the figures are those of the copies as they are now, whatever the conflicts table's history.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from govlake import storage
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.governance._conflicts import compare
from govlake.kpi import Kpi, KpiValue

_DEFINITION_ZH = "{scope}持有的副本值与权威部门的值（标准化后比较）不一致的个数 ÷ 双方均有值、可比较的副本值个数"
_DEFINITION_EN = ("copies of an item {scope_en} that disagree with the authoritative department's value (compared "
                  "after standardization) ÷ copies compared (both values present, entity held by the authority)")


@dataclass(frozen=True)
class ConflictRates:
    """(disagreeing, compared) per department code and per item (``<authority resource>.<column>``)."""

    by_department: dict[str, tuple[int, int]]
    by_item: dict[str, tuple[int, int]]

    @property
    def total(self) -> tuple[int, int]:
        return (sum(d for d, _ in self.by_department.values()), sum(c for _, c in self.by_department.values()))


def conflict_rates(settings: Settings) -> ConflictRates:
    """Count the comparisons of every declared copy in silver."""
    con = storage.connect(settings)
    try:
        compare(con, settings, get_catalog(settings.catalog_dir))
        rows = con.execute("""select department, authority_resource || '.' || item as item,
                count(*) filter (where not agrees) as disagreeing, count(*) as compared
            from comparisons group by all""").fetchall()
    finally:
        con.close()
    by_dept: Counter = Counter()
    by_dept_n: Counter = Counter()
    by_item: Counter = Counter()
    by_item_n: Counter = Counter()
    for dept, item, disagreeing, compared in rows:
        by_dept[dept] += disagreeing
        by_dept_n[dept] += compared
        by_item[item] += disagreeing
        by_item_n[item] += compared
    return ConflictRates({d: (by_dept[d], by_dept_n[d]) for d in sorted(by_dept_n)},
                         {i: (by_item[i], by_item_n[i]) for i in sorted(by_item_n)})


def _values(counts: dict[str, tuple[int, int]], total: tuple[int, int], period: str) -> tuple[KpiValue, ...]:
    def value(scope: str, n: int, d: int) -> KpiValue:
        return KpiValue(scope, period, n / d if d else None, n, d)
    return tuple(value(s, n, d) for s, (n, d) in counts.items()) + (value("all", *total, ),)


def conflict_kpis(settings: Settings) -> list[Kpi]:
    """一数一源冲突率 per department holding copies, and per data item."""
    rates = conflict_rates(settings)
    period = f"as of {settings.today.isoformat()}"
    inputs = ("catalog/resources (item authority, copy_of)", "silver/<every resource holding a copy>",
              "silver/<its authoritative resource>")
    common = {"inputs": inputs, "period": "snapshot of the copies in silver", "unit": "ratio",
              "target": None, "target_direction": "max"}
    return [
        Kpi(id="governance.conflict_rate_by_department", name_zh="一数一源冲突率（按持有部门）",
            name_en="One-source conflict rate per department holding copies",
            definition_zh=_DEFINITION_ZH.format(scope="该部门"),
            definition_en=_DEFINITION_EN.format(scope_en="held by the department"),
            values=_values(rates.by_department, rates.total, period), **common),
        Kpi(id="governance.conflict_rate_by_item", name_zh="一数一源冲突率（按数据项）",
            name_en="One-source conflict rate per data item",
            definition_zh=_DEFINITION_ZH.format(scope="各部门对该数据项"),
            definition_en=_DEFINITION_EN.format(scope_en="(all departments' copies of the item)"),
            values=_values(rates.by_item, rates.total, period), **common),
    ]
