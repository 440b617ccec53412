"""Every KPI govlake reports, one model and one registry: ``govlake kpi`` prints them all.

A KPI provider is a function ``(settings) -> list[Kpi]`` listed in :data:`PROVIDERS` (as a
``"module:function"`` path, imported lazily so a provider's dependencies load only when used).
Each :class:`Kpi` carries its definition, inputs, period and target next to its values, so a
figure is never printed without what it means (docs/domain.md, policy goals and KPIs).
"""

from govlake.kpi._model import Kpi, KpiValue, compute_kpis, kpis_to_json, record_kpis

__all__ = ["Kpi", "KpiValue", "compute_kpis", "kpis_to_json", "record_kpis"]
