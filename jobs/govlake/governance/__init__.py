"""Governance: 一数一源 conflict detection against the catalog's authorities, and objections (数据异议).

- :func:`detect_conflicts` compares every department's copy of an item with the authoritative
  department's value in silver and merges the disagreements into ``gold/conflicts``.
- :func:`raise_objection` / :func:`transition` move an objection through raised → accepted →
  verified → resolved / rejected → archived, with who, when and why in ``meta/objections_history``;
  gold applies resolved corrections and marks disputed values (sql/gold/int_entity_attributes).
- :func:`claim_step` takes a catalog entry through 认领 / 挂载 (claim, mount, unmount, release), with
  who, when and why in ``meta/catalog_claims_history``; the sharing KPIs count claims and mounts from it.
- ``govlake.governance.kpis:conflict_kpis`` gives the conflict rates to ``govlake kpi``.
"""

from govlake.governance._claims import Claim, ClaimError, claim_history, yaml_disagreements
from govlake.governance._claims import current_state as claim_states
from govlake.governance._claims import step as claim_step
from govlake.governance._conflicts import (
    CONFLICT_SCHEMA,
    CONFLICTS,
    ConflictSummary,
    comparisons_context,
    detect_conflicts,
    refresh_conflict_status,
)
from govlake.governance._display import display_claim, display_conflict, display_objection, mask_entity_key
from govlake.governance._objections import (
    CURRENT_SCHEMA,
    HISTORY_SCHEMA,
    TRANSITIONS,
    Objection,
    ObjectionError,
    current_state,
    history,
    list_objections,
    raise_objection,
    transition,
)
from govlake.governance._plan import ConflictPlanError, CopyCheck, conflict_plan
from govlake.governance._views import register_objection_views

__all__ = ["CONFLICTS", "CONFLICT_SCHEMA", "CURRENT_SCHEMA", "Claim", "ClaimError", "ConflictPlanError",
           "ConflictSummary", "CopyCheck", "HISTORY_SCHEMA", "Objection", "ObjectionError", "TRANSITIONS",
           "claim_history", "claim_states", "claim_step", "comparisons_context", "conflict_plan", "current_state",
           "detect_conflicts", "display_claim", "display_conflict", "display_objection", "history", "lineage_plan",
           "list_objections", "mask_entity_key", "raise_objection", "refresh_conflict_status",
           "register_objection_views", "transition", "yaml_disagreements"]


def lineage_plan(settings):
    """What this step reads and writes, for lineage (see govlake.governance._lineage); imported on use."""
    from govlake.governance._lineage import lineage_plan as plan

    return plan(settings)
