"""The objections as the models read them: views ``governance_open_objections``, ``governance_disputes``
and ``governance_corrections`` (sql/governance) over ``meta/objections``."""

from __future__ import annotations

import duckdb

from govlake import storage
from govlake.config import Settings
from govlake.contracts import OBJECTIONS
from govlake.transform import ModelRunner

CURRENT = "objections"
"""meta/objections: the current state of each objection."""
HISTORY = "objections_history"
OPEN_STATES = frozenset({"raised", "accepted", "verified"})
DISPUTED_STATES = frozenset({"accepted", "verified"})
VIEWS = (
    ("governance/open_objections", "governance_open_objections", {"open_states": sorted(OPEN_STATES)}),
    ("governance/disputes", "governance_disputes", {}),
    ("governance/corrections", "governance_corrections", {}),
)
"""(model, view, context) of each objection view, in the order they are created (also read by infra/lint_models.py)."""


def register_objection_views(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Views over ``meta/objections`` for the models (empty when no objection exists yet):

    - ``governance_open_objections`` (conflict_id, resource, item, entity_key): raised, accepted or verified;
    - ``governance_disputes`` (resource, item, entity_key): accepted or verified (value disputed);
    - ``governance_corrections`` (resource, item, entity_key, disputed_value, corrected_value): the
      latest resolved correction per value.
    """
    from govlake.compute import as_compute

    con = as_compute(con)
    con.register_delta("governance_objections", storage.table_path(settings, "meta", CURRENT), empty_schema=OBJECTIONS)
    runner = ModelRunner(settings.sql_dir)
    for model, view, context in VIEWS:
        runner.run(con, model, into=view, kind="view", **context)
