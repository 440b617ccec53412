"""Alerts kept as append-only history, like objections (govlake.governance._objections).

An alert moves through::

    open ─ack─▶ acknowledged ─resolve─▶ resolved
      └──────────resolve───────────────▶ resolved

Every check that finds its condition again appends a ``seen`` step (last seen, latest evidence); a
condition the check no longer finds is resolved by ``govlake`` ("cleared"). A resolved alert stays
resolved: a condition with the same key found after it cleared is a new alert, but one resolved by hand
is not raised again (its key names one occurrence — a due date, a batch, a run, a month — and someone
dealt with it). Every step records who (``actor``), when
(``at``) and why (``reason``).

Tables (meta layer):

- ``meta/alerts_history`` — append-only, one row per step (:data:`HISTORY_SCHEMA`); the truth.
- ``meta/alerts`` — the current state, one row per alert, rebuilt from the history after every
  write (:data:`CURRENT_SCHEMA`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyarrow as pa

from govlake import contracts, locks, steps, storage
from govlake.alerts._detect import Condition
from govlake.config import Settings

HISTORY, CURRENT = "alerts_history", "alerts"
HISTORY_SCHEMA, CURRENT_SCHEMA = contracts.ALERTS_HISTORY, contracts.ALERTS
LOCK = locks.ALERTS
OPEN, ACKNOWLEDGED, RESOLVED = "open", "acknowledged", "resolved"
LIVE = (OPEN, ACKNOWLEDGED)
"""States of an alert whose condition still counts: found again, it is the same alert."""
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "ack": (frozenset({OPEN}), ACKNOWLEDGED),
    "resolve": (frozenset(LIVE), RESOLVED),
}
"""Operator action → (states it may start from, the state it leads to); the check's own steps are
``raise``, ``seen`` (the state kept) and ``resolve``."""
SUBJECT = ("kind", "dedup_key", "resource", "department", "severity", "message_zh", "message_en", "evidence")
SYSTEM = "govlake"
"""The actor of steps the check takes itself (raise, seen, resolve when cleared)."""


class AlertError(ValueError):
    """An alert step that is not allowed (unknown alert, illegal transition, no --by or --why)."""


@dataclass(frozen=True)
class Alert:
    """The current state of one alert (a row of ``meta/alerts``)."""

    alert_id: str
    kind: str
    dedup_key: str
    resource: str | None
    department: str | None
    severity: str
    message_zh: str
    message_en: str
    evidence: str
    state: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    acknowledged_by: str | None
    acknowledged_at: dt.datetime | None
    acknowledged_why: str | None
    resolved_by: str | None
    resolved_at: dt.datetime | None
    resolved_why: str | None
    steps: int


def history(settings: Settings, alert_id: str | None = None) -> list[dict]:
    """Steps in order (of one alert, or all), as dicts of :data:`HISTORY_SCHEMA`."""
    table = storage.open_table(storage.table_path(settings, "meta", HISTORY))
    rows = [] if table is None else table.to_pyarrow_table().to_pylist()
    return sorted((r for r in rows if alert_id is None or r["alert_id"] == alert_id),
                  key=lambda r: (r["alert_id"], r["step"]))


def current_state(rows: Iterable[dict]) -> list[Alert]:
    """The current state of every alert from its history (pure)."""
    by_id: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["alert_id"], r["step"])):
        by_id.setdefault(row["alert_id"], []).append(row)
    out = []
    for aid, steps_ in by_id.items():
        first, last = steps_[0], steps_[-1]
        acks = [r for r in steps_ if r["action"] == "ack"]
        resolved = [r for r in steps_ if r["action"] == "resolve"]
        out.append(Alert(
            alert_id=aid, **{k: last[k] for k in SUBJECT}, state=last["state"], first_seen=first["at"],
            last_seen=max(r["at"] for r in steps_ if r["action"] in ("raise", "seen")),
            acknowledged_by=acks[-1]["actor"] if acks else None, acknowledged_at=acks[-1]["at"] if acks else None,
            acknowledged_why=acks[-1]["reason"] if acks else None,
            resolved_by=resolved[-1]["actor"] if resolved else None,
            resolved_at=resolved[-1]["at"] if resolved else None,
            resolved_why=resolved[-1]["reason"] if resolved else None, steps=len(steps_)))
    return out


def list_alerts(settings: Settings, *, states: Iterable[str] | None = None) -> list[Alert]:
    """Current alerts (optionally only those in ``states``), critical first, then newest first."""
    wanted = None if states is None else set(states)
    found = [a for a in current_state(history(settings)) if wanted is None or a.state in wanted]
    found.sort(key=lambda a: a.first_seen, reverse=True)
    return sorted(found, key=lambda a: a.severity != "critical")


def write_steps(settings: Settings, make_rows: Callable[[list[dict]], list[dict]], *, run_id: str) -> list[Alert]:
    """Append the steps ``make_rows`` derives from the history (read under the ``alerts`` lock) and rebuild
    ``meta/alerts``; returns the alerts those steps touched. One intent of govlake.steps: a crash after
    the history commit is finished by the next alerts command, without the steps written twice."""

    def params() -> dict:
        rows = make_rows(history(settings))
        return {"rows": [dict(r, at=r["at"].isoformat()) for r in rows]}

    def body(intent: steps.Intent) -> list[Alert]:
        rows = [dict(r, at=dt.datetime.fromisoformat(r["at"])) for r in intent.params["rows"]]
        if rows:
            intent.append_rows(f"meta/{HISTORY}", rows, HISTORY_SCHEMA)
        states = current_state(history(settings))
        table = pa.Table.from_pylist([vars(a) for a in states], schema=CURRENT_SCHEMA)
        intent.write_table(f"meta/{CURRENT}", table, mode="overwrite")
        touched = {r["alert_id"] for r in rows}
        return [a for a in states if a.alert_id in touched]

    return steps.run(settings, "alerts", lock=LOCK, run_id=run_id, params=params,
                     reads=lambda _: [f"meta/{HISTORY}", f"meta/{CURRENT}"], body=body)


def _row(*, alert_id: str, step: int, action: str, previous: str | None, state: str, actor: str, at: dt.datetime,
         reason: str, subject: dict, run_id: str) -> dict:
    return {"alert_id": alert_id, "step": step, "action": action, "previous_state": previous, "state": state,
            "actor": actor, "at": at, "reason": reason, **{k: subject[k] for k in SUBJECT}, "run_id": run_id}


def _subject(c: Condition) -> dict:
    return {"kind": c.kind, "dedup_key": c.dedup_key, "resource": c.resource, "department": c.department,
            "severity": c.severity, "message_zh": c.message_zh, "message_en": c.message_en,
            "evidence": c.evidence_json}


def reconcile_rows(done: list[dict], found: list[Condition], *, resolvable: Iterable[str], at: dt.datetime,
                   run_id: str) -> list[dict]:
    """The steps that bring the history in line with what a check ``found`` (pure): ``raise`` a condition
    with no live alert, ``seen`` one with a live alert, ``resolve`` a live alert of a ``resolvable`` kind
    whose condition is no longer found. A condition whose alert someone resolved by hand is not raised
    again: its key names one occurrence (a due date, a batch, a run, a month), which that person dealt with."""
    states = current_state(done)
    live = {a.dedup_key: a for a in states if a.state in LIVE}
    dealt_with = {a.dedup_key for a in states if a.state == RESOLVED and a.resolved_by != SYSTEM}
    resolvable = set(resolvable)
    rows, keys = [], set()
    for c in found:
        if c.dedup_key in keys or (c.dedup_key in dealt_with and c.dedup_key not in live):
            continue
        keys.add(c.dedup_key)
        if (a := live.get(c.dedup_key)) is None:
            rows.append(_row(alert_id=f"ALR-{at:%Y%m%d}-{uuid.uuid4().hex[:6]}", step=1, action="raise",
                             previous=None, state=OPEN, actor=SYSTEM, at=at, reason="found by the check",
                             subject=_subject(c), run_id=run_id))
        else:
            rows.append(_row(alert_id=a.alert_id, step=a.steps + 1, action="seen", previous=a.state, state=a.state,
                             actor=SYSTEM, at=at, reason="found again", subject=_subject(c), run_id=run_id))
    for key, a in live.items():
        if key not in keys and a.kind in resolvable:
            rows.append(_row(alert_id=a.alert_id, step=a.steps + 1, action="resolve", previous=a.state,
                             state=RESOLVED, actor=SYSTEM, at=at, reason="cleared: the check no longer finds it",
                             subject=vars(a), run_id=run_id))
    return rows


def step_rows(done: list[dict], alert_id: str, action: str, *, by: str, why: str, at: dt.datetime,
              run_id: str) -> list[dict]:
    """The history row of ``action`` (ack, resolve) on the alert whose id is (or starts with) ``alert_id``."""
    if not (by or "").strip() or not (why or "").strip():
        raise AlertError("--by and --why are required: say who acts and why")
    ids = sorted({r["alert_id"] for r in done if r["alert_id"] == alert_id or r["alert_id"].startswith(alert_id)})
    if not ids:
        raise AlertError(f"no alert {alert_id!r}; `govlake alerts list --all` lists them")
    if len(ids) > 1 and alert_id not in ids:
        raise AlertError(f"{alert_id!r} names {len(ids)} alerts; give more of the id")
    aid = alert_id if alert_id in ids else ids[0]
    last = max((r for r in done if r["alert_id"] == aid), key=lambda r: r["step"])
    allowed_from, target = TRANSITIONS[action]
    if last["state"] not in allowed_from:
        raise AlertError(f"{aid} is {last['state']}: cannot {action} (allowed from {'/'.join(sorted(allowed_from))})")
    return [_row(alert_id=aid, step=last["step"] + 1, action=action, previous=last["state"], state=target,
                 actor=by.strip(), at=at, reason=why.strip(), subject=last, run_id=run_id)]
