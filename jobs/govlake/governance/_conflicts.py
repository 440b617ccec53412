"""一数一源 conflict detection: every department's copy against the authoritative value.

Values are compared after standardization (silver), and for comparison only:

- ``decimal`` / ``integer`` items numerically (``50.5`` equals ``50.50``), ``date`` / ``timestamp``
  items as dates and timestamps;
- text with full-width forms folded to ASCII, every whitespace removed and Latin letters lower-cased
  (``济南甲（有限）公司`` equals ``济南甲(有限)公司``, ``张 三`` equals ``张三``).

A copy is compared when both values are present and the entity is in the authoritative resource;
a value only the copy has is not a conflict (gold uses it and flags it, see sql/gold).

``gold/conflicts`` holds one row per disagreeing copy record and item (:data:`CONFLICT_SCHEMA`),
merged on ``conflict_id`` by :func:`detect_conflicts`: a new disagreement is inserted (``open``),
one seen again keeps ``first_seen`` and gets ``last_seen`` and the current values, one no longer
seen (the copy agrees again, or is gone) becomes ``resolved``; a conflict an open objection is about
is ``under_objection`` (see :mod:`govlake.governance._objections`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from deltalake import CommitProperties

from govlake import contracts, locks, steps, storage
from govlake.catalog import Catalog, Item, get_catalog
from govlake.compute import open_compute
from govlake.config import Settings
from govlake.engine import step_engine
from govlake.governance._plan import CopyCheck, conflict_plan
from govlake.transform import FULL_WIDTH, HALF_WIDTH, ModelRunner

CONFLICTS = "conflicts"
"""gold/conflicts."""
OPEN, UNDER_OBJECTION, RESOLVED = "open", "under_objection", "resolved"

CONFLICT_SCHEMA = contracts.CONFLICTS
"""One row per (copy resource, copy record, item) that disagreed with the authority at some run.

``entity_key`` is the 统一社会信用代码 or the 身份证号 in clear (the lake holds identifiers; everything
printed or extracted masks a 身份证号, see :func:`govlake.governance.display_row`); ``record_key``
the copy's other key columns (``year=2025``; null when the copy is keyed by the entity alone);
``last_seen`` the last run that saw it disagree; ``resolved_at`` when it stopped.
"""

_NUMERIC = {"decimal", "integer"}
_TEMPORAL = {"date": "date", "timestamp": "timestamp"}


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def comparable_sql(expr: str, item: Item) -> str:
    """``expr`` (a silver value) in the form values of ``item`` are compared in."""
    if item.type in _NUMERIC:
        return f"try_cast({expr} as decimal(38, 10))"
    if item.type in _TEMPORAL:
        return f"try_cast({expr} as {_TEMPORAL[item.type]})"
    folded = f"translate(cast({expr} as varchar), {_q(FULL_WIDTH)}, {_q(HALF_WIDTH)})"
    return rf"lower(regexp_replace({folded}, '[\s\x{{00A0}}]+', '', 'g'))"


def _record_key_sql(check: CopyCheck) -> str:
    if not check.record_key:
        return "cast(null as varchar)"
    parts = ", ".join(f"{_q(k + '=')} || cast(copy.{k} as varchar)" for k in check.record_key)
    return f"concat_ws(';', {parts})"


def comparison_context(check: CopyCheck) -> dict:
    """What sql/governance/comparisons.sql.j2 needs of one copy check: its names and SQL expressions."""
    dept = (f"coalesce(copy._dept, {_q(check.copy.provider)})" if check.copy.department_from
            else _q(check.copy.provider))
    col, auth_col = check.copy_column, check.column
    copy_view = f"silver_{check.copy.slug}"
    return {
        "copy_view": copy_view, "authority_view": f"silver_{check.authority.slug}",
        "source": f"(select * from {copy_view} where {check.when})" if check.when else copy_view,
        "key_id": _q(f"{check.copy.code}|{col}|"), "copy_key": check.copy_key, "authority_key": check.authority_key,
        "record_key": _record_key_sql(check), "item": _q(auth_col), "item_name": _q(check.authority_item.name),
        "entity_key_type": _q(check.entity_key_type), "resource": _q(check.copy.code),
        "authority_department": _q(check.department), "authority_resource": _q(check.authority.code),
        "department": dept, "col": col, "auth_col": auth_col,
        "auth_comparable": comparable_sql(f"auth.{auth_col}", check.authority_item),
        "copy_comparable": comparable_sql(f"copy.{col}", check.authority_item),
    }


def comparisons_context(plan: tuple[CopyCheck, ...]) -> dict:
    """The context of sql/governance/comparisons.sql.j2: every copy check of the plan."""
    return {"checks": [comparison_context(c) for c in plan], "columns": list(_COMPARISON_COLUMNS)}


_COMPARISON_COLUMNS = ("conflict_id", "item", "item_name", "entity_key_type", "entity_key", "resource",
                       "record_key", "authority_department", "authority_resource", "authoritative_value",
                       "department", "other_value")


def compare(con, settings: Settings, catalog: Catalog) -> str:
    """Register silver and materialize table ``comparisons`` in ``con`` (a govlake.compute session, or a
    DuckDB connection); returns its name. The conflicts step compares on its engine; the KPIs read with
    DuckDB whatever the engine."""
    from govlake.silver import register_silver

    register_silver(con, settings, catalog)
    ModelRunner(settings.sql_dir).run(
        con, "governance/comparisons", **comparisons_context(conflict_plan(catalog)))
    return "comparisons"


@dataclass(frozen=True)
class ConflictSummary:
    """What one :func:`detect_conflicts` run found."""

    compared: int
    """Copy values compared with the authority."""
    disagreeing: int
    """Of those, disagreeing now (open or under objection)."""
    new: int
    resolved: int
    """Conflicts that stopped at this run."""
    table_rows: int


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)


def _register_open_objections(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    from govlake.governance._views import register_objection_views

    register_objection_views(con, settings)


_STATUS_SQL = f"""
    case when exists (
        select 1 from governance_open_objections as o
        where o.conflict_id = c.conflict_id
            or (o.item = c.item and o.entity_key = c.entity_key
                and o.resource in (c.authority_resource, c.resource))
    ) then '{UNDER_OBJECTION}' else '{OPEN}' end"""


def detect_conflicts(*, settings: Settings, run_id: str, now: dt.datetime | None = None) -> ConflictSummary:
    """Compare every copy with its authority and merge the disagreements into gold/conflicts.

    Re-runnable: the same silver changes nothing but ``last_seen`` and ``run_id``; so a run
    interrupted before its commit is superseded by the next (govlake.steps, no replay), under the
    ``publish`` lock.
    """
    return steps.run(settings, "conflicts", lock=locks.PUBLISH, run_id=run_id, params=dict, reads=lambda _: [],
                     body=lambda intent: _detect(settings, run_id, now), replay=False)


def _detect(settings: Settings, run_id: str, now: dt.datetime | None) -> ConflictSummary:
    now = _now(now)
    catalog = get_catalog(settings.catalog_dir)
    path = storage.table_path(settings, "gold", CONFLICTS)
    con = open_compute(step_engine(settings, "conflicts"))
    try:
        compare(con, settings, catalog)
        _register_open_objections(con, settings)
        compared, disagreeing = con.one("select count(*), count(*) filter (where not agrees) from comparisons")
        columns = ", ".join(f"c.{c}" for c in _COMPARISON_COLUMNS)
        # the disagreements are few (one row per value in conflict): merged from the driver by delta-rs
        found = con.arrow(f"""
            select {columns}, {_STATUS_SQL} as status
            from comparisons as c
            where not c.agrees""").sort_by("conflict_id")
    finally:
        con.close()
    stamps = {"first_seen": now, "last_seen": now, "resolved_at": None, "run_id": run_id}
    current = pa.Table.from_arrays(
        [found[f.name].cast(f.type) if f.name in found.column_names
         else pa.array([stamps[f.name]] * found.num_rows, f.type) for f in CONFLICT_SCHEMA], schema=CONFLICT_SCHEMA)
    table = storage.open_table(path)
    if table is None:
        storage.write_table(path, current, mode="overwrite", run_id=run_id)
        return ConflictSummary(compared, disagreeing, current.num_rows, 0, current.num_rows)
    before = table.to_pyarrow_table(columns=["conflict_id", "status"]).to_pylist()
    known = {r["conflict_id"] for r in before}
    stopped = {r["conflict_id"] for r in before if r["status"] != RESOLVED} - set(
        current.column("conflict_id").to_pylist())
    stamp = f"'{now.isoformat()}'"
    updates = {c: f"s.{c}" for c in _COMPARISON_COLUMNS if c != "conflict_id"}
    updates |= {"last_seen": "s.last_seen", "status": "s.status", "resolved_at": "null", "run_id": "s.run_id"}
    (
        table.merge(current, predicate="t.conflict_id = s.conflict_id", source_alias="s", target_alias="t",
                    commit_properties=CommitProperties(custom_metadata={"govlake.run_id": run_id}))
        .when_matched_update(updates)
        .when_not_matched_insert_all()
        .when_not_matched_by_source_update(
            {"status": f"'{RESOLVED}'", "resolved_at": f"cast({stamp} as timestamp)", "run_id": _q(run_id)},
            predicate=f"t.status != '{RESOLVED}'")
        .execute()
    )
    new = sum(1 for c in current.column("conflict_id").to_pylist() if c not in known)
    return ConflictSummary(compared, disagreeing, new, len(stopped), storage.row_count(path))


def refresh_conflict_status(*, settings: Settings, run_id: str) -> int:
    """Set ``under_objection`` / ``open`` on the unresolved conflicts from the objections now open.

    Called after every objection step, so the conflicts table follows without a new comparison.
    Returns the number of conflicts whose status changed.
    """
    path = storage.table_path(settings, "gold", CONFLICTS)
    table = storage.open_table(path)
    if table is None:
        return 0
    con = storage.connect(settings)
    try:
        con.register("conflicts_now", table.to_pyarrow_table(columns=list(_COMPARISON_COLUMNS) + ["status"]))
        _register_open_objections(con, settings)
        changed = con.execute(f"""
            select conflict_id, status from (
                select c.conflict_id, {_STATUS_SQL} as status, c.status as was
                from conflicts_now as c
                where c.status != '{RESOLVED}'
            ) where status != was""").to_arrow_table()
    finally:
        con.close()
    if changed.num_rows:
        (
            table.merge(changed, predicate="t.conflict_id = s.conflict_id", source_alias="s", target_alias="t",
                        commit_properties=CommitProperties(custom_metadata={"govlake.run_id": run_id}))
            .when_matched_update({"status": "s.status"})
            .execute()
        )
    return changed.num_rows
