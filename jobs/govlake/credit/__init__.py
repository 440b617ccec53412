"""Public credit: 双公示 deadlines and lifecycles, credit repair, withdrawals, 一企一档 profiles, KPIs.

``build_credit`` is the incremental credit step (after gold, before the extract); ``credit_kpis``
is the KPI provider for 合规率 and 及时率; ``load_credit_rules`` reads catalog/credit_rules.yml.
"""

from govlake.credit._build import KINDS, WITHDRAWAL_SCHEMA, CreditResult, build_credit, render, withdrawal_rows
from govlake.credit._rules import CreditRules, load_credit_rules

__all__ = ["KINDS", "WITHDRAWAL_SCHEMA", "CreditResult", "CreditRules", "build_credit", "load_credit_rules",
           "withdrawal_rows", "render"]
