"""Public credit: 双公示 deadlines and lifecycles, credit repair, withdrawals, 一企一档 profiles, KPIs.

``build_credit`` is the incremental credit step (after gold, before the extract); ``credit_kpis``
is the KPI provider for 合规率 and 及时率; ``load_credit_rules`` reads catalog/credit_rules.yml;
``regime_listing`` and ``regime_impact`` describe its publicity regimes and what changing one would do.
"""

from govlake.credit._build import (
    KINDS,
    OUTPUTS,
    WITHDRAWAL_SCHEMA,
    CreditResult,
    build_credit,
    render,
    withdrawal,
    withdrawal_rows,
)
from govlake.credit._impact import regime_impact, regime_listing
from govlake.credit._rules import CreditRules, Regime, load_credit_rules

__all__ = ["OUTPUTS", "CreditResult", "CreditRules", "KINDS", "WITHDRAWAL_SCHEMA", "Regime", "build_credit",
           "lineage_plan", "load_credit_rules", "regime_impact", "regime_listing", "render", "withdrawal",
           "withdrawal_rows"]


def lineage_plan(settings, *, rebuild=False):
    """What this step reads and writes, for lineage (see govlake.credit._lineage); imported on use."""
    from govlake.credit._lineage import lineage_plan as plan

    return plan(settings, rebuild=rebuild)
