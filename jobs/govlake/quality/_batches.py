"""Held batches (lake/meta/batches): a delivered batch that failed its blocking rule, and what became of it.

Blocking is judged per delivered batch — a file, a database window. A batch whose share of
quarantined rows is over the resource's limit is **held**: none of its rows reaches silver or
quarantine, its file and the rules that blocked it are recorded here, and every other batch goes
on. An operator then either **rejects** it (``govlake batches reject ID --reason …``: its rows are
accounted for as rejected; bronze keeps them) or **releases** it (``govlake batches release ID
--reason …``: the next process run publishes it without judging it again, and records it as
**published**). The table is append-only history; the latest row per batch is its state.

Statuses: ``held`` → ``released`` → ``published``; ``held`` → ``rejected``. Held and released
(not yet published) rows count as held in the reconciliation; rejected rows as rejected.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from dataclasses import dataclass

import pyarrow as pa

from govlake import contracts, storage
from govlake.config import Settings

NAME = "batches"
TABLE = f"meta/{NAME}"
HELD, RELEASED, REJECTED, PUBLISHED = "held", "released", "rejected", "published"
EXCLUDED = (HELD, REJECTED)
"""States whose rows a process run leaves out."""
S = pa.string()
SCHEMA = contracts.BATCHES


class BatchError(ValueError):
    """A batch command that cannot be carried out (unknown id, wrong state, no reason)."""


@dataclass(frozen=True)
class Batch:
    """The latest state of one batch."""

    batch_id: str
    resource: str
    source: str
    rows: int
    quarantined: int
    status: str
    rules: list[dict]
    """[{"rule": id, "rows": n, "first_row": row number}] most-failed first, as judged."""
    limit_rate: float | None
    reason: str | None
    actor: str | None
    at: dt.datetime
    run_id: str | None
    held_at: dt.datetime | None = None


def register_states(con, intent_or_none, settings: Settings, resource: str, name: str = "batch_state") -> None:
    """View ``name`` (batch_id, status, rows): the latest state of each of ``resource``'s batches,
    at the intent's pinned version of meta/batches (latest when ``intent_or_none`` is None)."""
    from govlake.compute import as_compute

    compute, empty = as_compute(con), SCHEMA
    if intent_or_none is not None:
        intent_or_none.register(compute, f"{name}_all", TABLE, empty_schema=empty)
    else:
        compute.register_delta(f"{name}_all", storage.table_path(settings, "meta", NAME), empty_schema=empty)
    compute.create(name, f"""
        select batch_id, status, rows from {name}_all where resource = '{_q(resource)}'
        qualify row_number() over (partition by batch_id order by "at" desc) = 1""", kind="view")


def _q(text: str) -> str:
    return text.replace("'", "''")


def history(settings: Settings, *, resource: str | None = None) -> list[dict]:
    """Every row of meta/batches (oldest first), optionally of one resource."""
    table = storage.open_table(storage.table_path(settings, "meta", NAME))
    if table is None:
        return []
    rows = table.to_pyarrow_table().to_pylist()
    rows = [r for r in rows if resource is None or r["resource"] == resource]
    return sorted(rows, key=lambda r: r["at"])


def states(settings: Settings, *, resource: str | None = None) -> list[Batch]:
    """The latest state of every batch that was ever held (most recent first)."""
    latest: dict[str, dict] = {}
    held_at: dict[str, dt.datetime] = {}
    for r in history(settings, resource=resource):
        latest[r["batch_id"]] = r
        if r["status"] == HELD:
            held_at.setdefault(r["batch_id"], r["at"])
    out = []
    for r in latest.values():
        out.append(Batch(r["batch_id"], r["resource"], r["source"], r["rows"] or 0, r["quarantined"] or 0,
                         r["status"], json.loads(r["rules"] or "[]"), r["limit_rate"], r["reason"], r["actor"],
                         r["at"], r["run_id"], held_at.get(r["batch_id"])))
    return sorted(out, key=lambda b: b.at, reverse=True)


def totals(settings: Settings, resource: str) -> tuple[int, int]:
    """(held, rejected) rows of ``resource`` now: held or released-but-unpublished, and rejected."""
    held = rejected = 0
    for b in states(settings, resource=resource):
        if b.status in (HELD, RELEASED):
            held += b.rows
        elif b.status == REJECTED:
            rejected += b.rows
    return held, rejected


def actor() -> str:
    """Who is acting: GOVLAKE_ACTOR, else the login name."""
    return os.environ.get("GOVLAKE_ACTOR") or getpass.getuser()


def find(settings: Settings, batch_id: str) -> Batch:
    """The batch whose id is (or starts with) ``batch_id``; BatchError when none or several."""
    found = [b for b in states(settings) if b.batch_id == batch_id or b.batch_id.startswith(batch_id)]
    if not found:
        raise BatchError(f"no held batch {batch_id!r}; `govlake batches` lists them")
    if len(found) > 1:
        raise BatchError(f"{batch_id!r} names {len(found)} batches; give more of the id")
    return found[0]


def record_decision(settings: Settings, batch: Batch, *, status: str, reason: str, by: str | None,
                    run_id: str) -> None:
    """Append ``batch``'s new state (rejected or released) with who, when and why (caller holds the lock)."""
    if status not in (REJECTED, RELEASED):
        raise BatchError(f"unknown decision {status!r}")
    if not reason or not reason.strip():
        raise BatchError("--reason is required: say why the batch is set aside or published")
    if batch.status != HELD:
        raise BatchError(f"batch {batch.batch_id} ({batch.source}) is {batch.status}, not held; only a held "
                         "batch can be rejected or released")
    row = {"batch_id": batch.batch_id, "resource": batch.resource, "source": batch.source, "rows": batch.rows,
           "quarantined": batch.quarantined, "status": status, "rules": json.dumps(batch.rules, ensure_ascii=False),
           "limit_rate": batch.limit_rate, "reason": reason.strip(), "actor": (by or actor()).strip(),
           "at": dt.datetime.now(dt.UTC), "run_id": run_id}
    storage.write_table(storage.table_path(settings, "meta", NAME), pa.Table.from_pylist([row], schema=SCHEMA),
                        mode="append", run_id=run_id)
