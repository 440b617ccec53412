"""Objections to data values (数据异议, DOMAIN.md §6), kept as append-only history.

An objection disputes one value: the authoritative value of a conflict (``gold/conflicts``, by
conflict id), or the value of an item of a resource for one entity (统一社会信用代码 / 身份证号). It
moves through::

    raised ─accept─▶ accepted ─verify─▶ verified ─resolve─▶ resolved ─archive─▶ archived
       └──────────────┴──────reject──────┴────────────────▶ rejected ─archive─▶ archived

While ``accepted`` or ``verified`` the value is marked as disputed (gold ``disputed_attributes``).
``resolve --corrected-value`` records the authority's corrected value: gold takes it on its next
run for as long as the authority's own value is still the disputed one (once the authority's feed
carries a new value, the feed wins). Every step records who (``actor``), when (``at``) and why
(``reason``).

Tables (meta layer):

- ``meta/objections_history`` — append-only, one row per step (:data:`HISTORY_SCHEMA`); the truth.
- ``meta/objections`` — the current state, one row per objection, rebuilt from the history after
  every step (:data:`CURRENT_SCHEMA`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal

import pyarrow as pa

from govlake import contracts, locks, steps, storage
from govlake.catalog import Catalog, Resource, get_catalog
from govlake.config import Settings
from govlake.governance._views import CURRENT, DISPUTED_STATES, HISTORY, OPEN_STATES  # noqa: F401 (re-exported)

State = Literal["raised", "accepted", "verified", "resolved", "rejected", "archived"]
Action = Literal["raise", "accept", "verify", "resolve", "reject", "archive"]

TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "accept": (frozenset({"raised"}), "accepted"),
    "verify": (frozenset({"accepted"}), "verified"),
    "resolve": (frozenset({"verified"}), "resolved"),
    "reject": (frozenset({"raised", "accepted", "verified"}), "rejected"),
    "archive": (frozenset({"resolved", "rejected"}), "archived"),
}
"""action → (states it may start from, the state it leads to)."""

HISTORY_SCHEMA = contracts.OBJECTIONS_HISTORY
CURRENT_SCHEMA = contracts.OBJECTIONS
"""``outcome``: resolved / rejected once decided (kept after archiving); ``disputed``: state is
accepted or verified; ``resolved_at``: when resolved (null otherwise)."""


class ObjectionError(ValueError):
    """An objection step that is not allowed (unknown objection, illegal transition, bad value)."""


@dataclass(frozen=True)
class Objection:
    """The current state of one objection (a row of ``meta/objections``)."""

    objection_id: str
    conflict_id: str | None
    resource: str
    item: str
    entity_key_type: str
    entity_key: str
    disputed_value: str | None
    corrected_value: str | None
    state: str
    outcome: str | None
    disputed: bool
    raised_by: str
    raised_at: dt.datetime
    updated_by: str
    updated_at: dt.datetime
    resolved_at: dt.datetime | None
    last_reason: str
    steps: int


# ---- reading ---------------------------------------------------------------------------------


def history(settings: Settings, objection_id: str | None = None) -> list[dict]:
    """Steps in order (of one objection, or all), as dicts of :data:`HISTORY_SCHEMA`."""
    table = storage.open_table(storage.table_path(settings, "meta", HISTORY))
    if table is None:
        return []
    rows = table.to_pyarrow_table().to_pylist()
    rows = [r for r in rows if objection_id is None or r["objection_id"] == objection_id]
    return sorted(rows, key=lambda r: (r["objection_id"], r["step"]))


def current_state(steps: list[dict]) -> list[Objection]:
    """The current state of every objection from its history (pure)."""
    by_id: dict[str, list[dict]] = {}
    for row in sorted(steps, key=lambda r: (r["objection_id"], r["step"])):
        by_id.setdefault(row["objection_id"], []).append(row)
    out = []
    for oid, rows in by_id.items():
        first, last = rows[0], rows[-1]
        decided = [r for r in rows if r["state"] in ("resolved", "rejected")]
        resolved = [r for r in rows if r["state"] == "resolved"]
        out.append(Objection(
            objection_id=oid, conflict_id=first["conflict_id"], resource=first["resource"], item=first["item"],
            entity_key_type=first["entity_key_type"], entity_key=first["entity_key"],
            disputed_value=first["disputed_value"],
            corrected_value=resolved[-1]["corrected_value"] if resolved else None,
            state=last["state"], outcome=decided[-1]["state"] if decided else None,
            disputed=last["state"] in DISPUTED_STATES,
            raised_by=first["actor"], raised_at=first["at"], updated_by=last["actor"], updated_at=last["at"],
            resolved_at=resolved[-1]["at"] if resolved else None, last_reason=last["reason"], steps=len(rows)))
    return out


def list_objections(settings: Settings, *, states: set[str] | None = None) -> list[Objection]:
    """Current objections (optionally only those in ``states``), oldest first."""
    found = current_state(history(settings))
    return sorted((o for o in found if states is None or o.state in states), key=lambda o: o.raised_at)


# ---- writing ---------------------------------------------------------------------------------


def _write(settings: Settings, make_row, *, run_id: str) -> Objection:
    """Append one step, rebuild the current-state table, refresh the conflicts' status.

    ``make_row`` checks the step against the objection's state and returns its history row; it runs
    under the ``publish`` lock, so two steps on one objection cannot both pass the check. One intent
    of govlake.steps: a crash after the history commit is finished by the next objection command
    (or publish step), without the step written twice.
    """
    from govlake.governance._conflicts import refresh_conflict_status

    def body(intent: steps.Intent) -> Objection:
        row = dict(intent.params["row"], at=dt.datetime.fromisoformat(intent.params["row"]["at"]))
        intent.append_rows(f"meta/{HISTORY}", [row], HISTORY_SCHEMA)
        states = current_state(history(settings))
        table = pa.Table.from_pylist([vars(o) for o in states], schema=CURRENT_SCHEMA)
        intent.write_table(f"meta/{CURRENT}", table, mode="overwrite")
        refresh_conflict_status(settings=settings, run_id=intent.run_id)
        return next(o for o in states if o.objection_id == row["objection_id"])

    def params() -> dict:
        row = make_row()
        return {"row": dict(row, at=row["at"].isoformat())}

    return steps.run(settings, "objections", lock=locks.PUBLISH, run_id=run_id, params=params,
                     reads=lambda _: [f"meta/{HISTORY}", f"meta/{CURRENT}"], body=body)


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)


def _need(text: str | None, what: str) -> str:
    if not text or not text.strip():
        raise ObjectionError(f"{what} is required at every step")
    return text.strip()


def _entity_column(res: Resource) -> str:
    for column in res.key:
        if res.item(column).type in ("uscc", "id_number"):
            return column
    for column in ("uscc", "id_number"):
        if any(i.column == column for i in res.items):
            return column
    raise ObjectionError(f"{res.code} names no entity by 统一社会信用代码 or 身份证号")


def _current_value(settings: Settings, res: Resource, item: str, entity_key: str) -> tuple[str, str | None]:
    """(entity key type, the latest silver value of ``item`` for the entity, as text)."""
    column = _entity_column(res)
    con = storage.connect(settings)
    try:
        if not storage.register(con, "disputed_silver", storage.table_path(settings, "silver", res.slug)):
            raise ObjectionError(f"{res.code} has no silver table yet: nothing to dispute")
        row = con.execute(f"""select cast({item} as varchar) from disputed_silver where {column} = $key
            order by _received_at desc nulls last, _row_number desc nulls last limit 1""",
                          {"key": entity_key}).fetchone()
    finally:
        con.close()
    if row is None:
        raise ObjectionError(f"{res.code} holds no row for that {res.item(column).name}")
    return res.item(column).type, row[0]


def _conflict(settings: Settings, conflict_id: str) -> dict:
    from govlake.governance._conflicts import CONFLICTS

    table = storage.open_table(storage.table_path(settings, "gold", CONFLICTS))
    rows = [] if table is None else table.to_pyarrow_table().to_pylist()
    found = [r for r in rows if r["conflict_id"] == conflict_id]
    if not found:
        raise ObjectionError(f"no conflict {conflict_id!r} in gold/conflicts")
    return found[0]


def raise_objection(*, settings: Settings, by: str, reason: str, conflict_id: str | None = None,
                    resource: str | None = None, item: str | None = None, entity_key: str | None = None,
                    run_id: str, now: dt.datetime | None = None) -> Objection:
    """Raise an objection about a conflict's authoritative value, or about ``resource.item`` of one entity."""
    by, reason = _need(by, "--by"), _need(reason, "--reason")
    catalog = get_catalog(settings.catalog_dir)

    def make_row() -> dict:
        return _raised_row(settings, catalog, by=by, reason=reason, conflict_id=conflict_id, resource=resource,
                           item=item, entity_key=entity_key, run_id=run_id, now=now)

    return _write(settings, make_row, run_id=run_id)


def _raised_row(settings: Settings, catalog: Catalog, *, by: str, reason: str, conflict_id: str | None,
                resource: str | None, item: str | None, entity_key: str | None, run_id: str,
                now: dt.datetime | None) -> dict:
    if conflict_id:
        if resource or item or entity_key:
            raise ObjectionError("give either a conflict id or --resource/--item/--entity, not both")
        c = _conflict(settings, conflict_id)
        subject = {"conflict_id": conflict_id, "resource": c["authority_resource"], "item": c["item"],
                   "entity_key_type": c["entity_key_type"], "entity_key": c["entity_key"],
                   "disputed_value": c["authoritative_value"]}
    else:
        if not (resource and item and entity_key):
            raise ObjectionError("give a conflict id, or --resource, --item and --entity")
        res = catalog.resource(resource)
        res.item(item)
        key_type, value = _current_value(settings, res, item, entity_key)
        subject = {"conflict_id": None, "resource": res.code, "item": item, "entity_key_type": key_type,
                   "entity_key": entity_key, "disputed_value": value}
    at = _now(now)
    return {"objection_id": f"OBJ-{at:%Y%m%d}-{uuid.uuid4().hex[:6]}", "step": 1, "action": "raise",
            "previous_state": None, "state": "raised", "actor": by, "at": at, "reason": reason,
            **subject, "corrected_value": None, "run_id": run_id}


def _check_value(catalog: Catalog, resource: str, item: str, value: str) -> str:
    kind = catalog.resource(resource).item(item).type
    try:
        if kind == "decimal":
            Decimal(value)
        elif kind == "integer":
            int(value)
        elif kind == "date":
            dt.date.fromisoformat(value)
        elif kind == "timestamp":
            dt.datetime.fromisoformat(value)
    except (InvalidOperation, ValueError) as exc:
        raise ObjectionError(f"corrected value {value!r} is not a valid {kind} for {resource}.{item}") from exc
    return value


def transition(objection_id: str, action: str, *, settings: Settings, by: str, reason: str,
               corrected_value: str | None = None, run_id: str, now: dt.datetime | None = None) -> Objection:
    """Move an objection one step (``accept``, ``verify``, ``resolve``, ``reject``, ``archive``).

    Raises ObjectionError for an unknown objection or action, a step its state does not allow
    (naming the state and what is allowed from it), a missing ``by``/``reason``, or a corrected
    value on any step but ``resolve`` or one that does not parse as the item's type.
    """
    by, reason = _need(by, "--by"), _need(reason, "--reason")
    if action not in TRANSITIONS:
        raise ObjectionError(f"unknown action {action!r}; actions are {', '.join(TRANSITIONS)}")
    return _write(settings, lambda: _step_row(settings, objection_id, action, by=by, reason=reason,
                                              corrected_value=corrected_value, run_id=run_id, now=now),
                  run_id=run_id)


def _step_row(settings: Settings, objection_id: str, action: str, *, by: str, reason: str,
              corrected_value: str | None, run_id: str, now: dt.datetime | None) -> dict:
    """The history row of step ``action`` on ``objection_id``, checked against its state."""
    done = history(settings, objection_id)
    if not done:
        raise ObjectionError(f"no objection {objection_id!r}")
    last = done[-1]
    allowed_from, target = TRANSITIONS[action]
    if last["state"] not in allowed_from:
        possible = [a for a, (src, _) in TRANSITIONS.items() if last["state"] in src]
        raise ObjectionError(
            f"{objection_id} is {last['state']}: cannot {action} (allowed from "
            f"{'/'.join(sorted(allowed_from))}); next steps: {', '.join(possible) or 'none (archived)'}")
    if corrected_value is not None:
        if action != "resolve":
            raise ObjectionError("--corrected-value goes with resolve only")
        _check_value(get_catalog(settings.catalog_dir), last["resource"], last["item"], corrected_value)
    return {**last, "step": last["step"] + 1, "action": action, "previous_state": last["state"], "state": target,
            "actor": by, "at": _now(now), "reason": reason, "corrected_value": corrected_value, "run_id": run_id}
