"""认领 and 挂载 of catalog entries (docs/domain.md, docs/governance.md), kept as append-only history.

A department **claims** (认领) a catalog entry and answers for it; the claiming department then
**mounts** (挂载) the data behind it (a silver table). A resource moves through::

    unclaimed ─claim─▶ claimed ─mount─▶ mounted
        ▲                 │   ◀─unmount─┘
        └─────release─────┘

Only the claiming department mounts, unmounts or releases; a mounted resource is unmounted before
it is released; a claimed resource is released before another department claims it. Every step
records who (``actor``), when (``at``), why (``reason``) and for which department.

A catalog YAML ``claimed_by`` (``claimed_on``) is the resource's initial, *seeded* claim (and
``mounted_on`` its seeded mount of ``silver/<slug>``, at 00:00 UTC of that day): until the
resource has a recorded step, :func:`claim_history` shows it as a ``claim`` step by ``catalog`` at
00:00 UTC of ``claimed_on`` (else of the entry's 发布日期) with ``seeded`` set; the first recorded step
of any resource writes the seeded claims not yet recorded into the history, so the table holds them
as such. From then on the history is the truth and the YAML only describes: :func:`yaml_disagreements`
names every resource whose YAML ``claimed_by`` says otherwise (``govlake catalog validate`` warns).

Tables (meta layer):

- ``meta/catalog_claims_history`` — append-only, one row per step (:data:`HISTORY_SCHEMA`); the truth.
- ``meta/catalog_claims`` — the current state of each resource with a recorded step, rebuilt from
  the history after every step (:data:`CURRENT_SCHEMA`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pyarrow as pa

from govlake import contracts, locks, steps, storage
from govlake.catalog import Catalog, get_catalog
from govlake.config import Settings

HISTORY = "catalog_claims_history"
CURRENT = "catalog_claims"
HISTORY_SCHEMA = contracts.CATALOG_CLAIMS_HISTORY
CURRENT_SCHEMA = contracts.CATALOG_CLAIMS
SEED_ACTOR = "catalog"
"""``actor`` of a seeded claim (the catalog YAML's ``claimed_by``)."""
BEIJING = dt.timezone(dt.timedelta(hours=8))
"""Steps count for the KPIs on their Beijing date (a seeded claim, dated 00:00 UTC, on its own date)."""

TRANSITIONS: dict[str, tuple[str, str]] = {
    "claim": ("unclaimed", "claimed"),
    "mount": ("claimed", "mounted"),
    "unmount": ("mounted", "claimed"),
    "release": ("claimed", "unclaimed"),
}
"""action → (the state it starts from, the state it leads to)."""

_TABLE = re.compile(r"silver/[a-z][a-z0-9_]*")


class ClaimError(ValueError):
    """A claim step that is not allowed (unknown resource or department, illegal transition, bad table)."""


@dataclass(frozen=True)
class Claim:
    """The current 认领/挂载 state of one resource (a row of ``meta/catalog_claims``)."""

    resource: str
    state: str
    department: str | None
    claimed_at: dt.datetime | None
    mounted_table: str | None
    mounted_at: dt.datetime | None
    updated_by: str
    updated_at: dt.datetime
    last_action: str
    last_reason: str
    steps: int


# ---- reading ---------------------------------------------------------------------------------


def recorded(settings: Settings) -> list[dict]:
    """The rows of ``meta/catalog_claims_history`` in order (resource, step)."""
    table = storage.open_table(storage.table_path(settings, "meta", HISTORY))
    rows = [] if table is None else table.to_pyarrow_table().to_pylist()
    return sorted(rows, key=lambda r: (r["resource"], r["step"]))


def seeded_claims(catalog: Catalog, recorded_rows: list[dict]) -> list[dict]:
    """The seeded claim of every resource whose YAML names ``claimed_by`` and that has no recorded step, and
    its seeded mount (of ``silver/<slug>``) when the YAML names ``mounted_on`` too."""
    done = {r["resource"] for r in recorded_rows}
    out = []
    for res in sorted(catalog.resources.values(), key=lambda r: r.code):
        if res.claimed_by is None or res.code in done:
            continue
        day, dated = (res.claimed_on, "") if res.claimed_on else (res.published, " (no claimed_on: dated 发布日期)")
        out.append({"resource": res.code, "step": 1, "action": "claim", "previous_state": "unclaimed",
                    "state": "claimed", "department": res.claimed_by, "mounted_table": None, "actor": SEED_ACTOR,
                    "at": dt.datetime.combine(day, dt.time(), dt.UTC),
                    "reason": f"claimed_by in catalog/resources/{res.code}.yml{dated}",
                    "seeded": True, "run_id": SEED_ACTOR})
        if res.mounted_on:
            out.append({**out[-1], "step": 2, "action": "mount", "previous_state": "claimed", "state": "mounted",
                        "mounted_table": f"silver/{res.slug}",
                        "at": dt.datetime.combine(res.mounted_on, dt.time(), dt.UTC),
                        "reason": f"mounted_on in catalog/resources/{res.code}.yml"})
    return out


def claim_history(settings: Settings, resource: str | None = None, *, catalog: Catalog | None = None) -> list[dict]:
    """Every step (recorded, and the seeded claims not recorded yet) in order, of one resource or all."""
    catalog = catalog or get_catalog(settings.catalog_dir)
    done = recorded(settings)
    rows = sorted(done + seeded_claims(catalog, done), key=lambda r: (r["resource"], r["step"]))
    return [r for r in rows if resource is None or r["resource"] == resource]


def current_state(rows: list[dict], *, as_of: dt.date | None = None) -> dict[str, Claim]:
    """Resource → its state after its steps (only those on or before ``as_of``, Beijing date); pure."""
    by_resource: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["resource"], r["step"])):
        if as_of is None or row["at"].astimezone(BEIJING).date() <= as_of:
            by_resource.setdefault(row["resource"], []).append(row)
    out = {}
    for code, done in by_resource.items():
        last = done[-1]
        claims = [r for r in done if r["action"] == "claim"]
        mounts = [r for r in done if r["action"] == "mount"]
        held = last["state"] != "unclaimed"
        out[code] = Claim(
            resource=code, state=last["state"], department=last["department"] if held else None,
            claimed_at=claims[-1]["at"] if held else None,
            mounted_table=mounts[-1]["mounted_table"] if last["state"] == "mounted" else None,
            mounted_at=mounts[-1]["at"] if last["state"] == "mounted" else None,
            updated_by=last["actor"], updated_at=last["at"], last_action=last["action"],
            last_reason=last["reason"], steps=len(done))
    return out


def yaml_disagreements(catalog: Catalog, rows: list[dict]) -> list[str]:
    """One sentence per resource whose YAML names a ``claimed_by`` other than the department its
    history says holds it now (or released it). A YAML without ``claimed_by`` says nothing about the
    claim and never disagrees; nor does a resource without a recorded step (it follows its YAML)."""
    states = current_state(rows)
    out = []
    for code in sorted(catalog.resources):
        res, state = catalog.resources[code], states.get(code)
        if state is None or res.claimed_by is None or res.claimed_by == state.department:
            continue
        now = (f"{state.department} holds it ({state.state}) since {state.updated_at:%Y-%m-%d}"
               if state.department else f"it is unclaimed since {state.updated_at:%Y-%m-%d}")
        out.append(f"catalog/resources/{code}.yml: claimed_by: {res.claimed_by}, but the claim history "
                   f"(meta/{HISTORY}) says {now}; the history counts — update the YAML")
    return out


# ---- writing ---------------------------------------------------------------------------------


def _need(text: str | None, what: str) -> str:
    if not text or not text.strip():
        raise ClaimError(f"{what} is required at every step")
    return text.strip()


def _mount_table(settings: Settings, catalog: Catalog, resource: str, table: str | None) -> str:
    """``silver/<name>`` (default the resource's own silver table); it must exist."""
    table = table or f"silver/{catalog.resource(resource).slug}"
    if not _TABLE.fullmatch(table):
        raise ClaimError(f"--table {table!r}: give a silver table as silver/<name> (lower case, digits, _)")
    if storage.open_table(storage.table_path(settings, "silver", table.removeprefix("silver/"))) is None:
        raise ClaimError(f"{table} does not exist yet: nothing to mount (run the resource's feed first)")
    return table


def step(action: str, resource: str, *, settings: Settings, department: str, by: str, reason: str,
         table: str | None = None, run_id: str, now: dt.datetime | None = None) -> Claim:
    """Take step ``action`` (claim, mount, unmount, release) on ``resource`` for ``department``.

    Checked under the ``claims`` lock against the resource's current state, so of two concurrent
    claims only one wins. Raises ClaimError for an unknown action, resource or department, a missing
    ``by``/``reason``, a step the state does not allow (naming the state and who holds it), a
    department that does not hold the claim, or a table to mount that is not a silver table or
    does not exist.
    """
    by, reason = _need(by, "--by"), _need(reason, "--why")
    if action not in TRANSITIONS:
        raise ClaimError(f"unknown action {action!r}; actions are {', '.join(TRANSITIONS)}")
    if table is not None and action != "mount":
        raise ClaimError("--table goes with mount only")
    catalog = get_catalog(settings.catalog_dir)
    if resource not in catalog.resources:
        raise ClaimError(f"no resource {resource!r} in the catalog; try `govlake catalog search {resource}`")
    if department not in catalog.departments:
        raise ClaimError(f"unknown department {department!r}; departments (catalog/departments.yml): "
                         f"{', '.join(sorted(catalog.departments))}")

    def params() -> dict:
        done = recorded(settings)
        rows = seeded_claims(catalog, done)
        steps_of = [r for r in done + rows if r["resource"] == resource]
        last = steps_of[-1] if steps_of else None
        row = _check(action, resource, last, department=department)
        if action == "mount":
            row["mounted_table"] = _mount_table(settings, catalog, resource, table)
        row |= {"actor": by, "at": (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC),
                "reason": reason, "seeded": False, "run_id": run_id}
        return {"rows": [dict(r, at=r["at"].isoformat()) for r in [*rows, row]]}

    def body(intent: steps.Intent) -> Claim:
        new = [dict(r, at=dt.datetime.fromisoformat(r["at"])) for r in intent.params["rows"]]
        intent.append_rows(f"meta/{HISTORY}", new, HISTORY_SCHEMA)
        states = current_state(recorded(settings))
        table_ = pa.Table.from_pylist([vars(c) for _, c in sorted(states.items())], schema=CURRENT_SCHEMA)
        intent.write_table(f"meta/{CURRENT}", table_, mode="overwrite")
        return states[new[-1]["resource"]]

    return steps.run(settings, "catalog_claims", lock=locks.CLAIMS, run_id=run_id, params=params,
                     reads=lambda _: [f"meta/{HISTORY}", f"meta/{CURRENT}"], body=body)


def _check(action: str, resource: str, last: dict | None, *, department: str) -> dict:
    """The next history row's resource, step, action and states; ClaimError if ``action`` is not allowed."""
    state = last["state"] if last else "unclaimed"
    holder = last["department"] if last and state != "unclaimed" else None
    start, target = TRANSITIONS[action]
    if state != start:
        since = f" since {last['at']:%Y-%m-%d}" if last else ""
        why = {
            ("claim", "claimed"): f"it is claimed by {holder}{since}; {holder} releases it first",
            ("claim", "mounted"): f"it is claimed and mounted by {holder}{since}; {holder} unmounts and "
                                  "releases it first",
            ("mount", "unclaimed"): f"it is unclaimed; {department} claims it first",
            ("mount", "mounted"): f"it is already mounted on {last and last['mounted_table']} by {holder}; "
                                  "unmount it first",
            ("unmount", "unclaimed"): "it is unclaimed, nothing is mounted",
            ("unmount", "claimed"): f"it is claimed by {holder} but not mounted",
            ("release", "unclaimed"): "it is not claimed",
            ("release", "mounted"): f"it is mounted by {holder}; {holder} unmounts it first",
        }[(action, state)]
        raise ClaimError(f"cannot {action} {resource}: {why}")
    if holder is not None and holder != department:
        raise ClaimError(f"cannot {action} {resource} for {department}: it is claimed by {holder}; only the "
                         "claiming department mounts, unmounts or releases it")
    return {"resource": resource, "step": last["step"] + 1 if last else 1, "action": action,
            "previous_state": state, "state": target, "department": department,
            "mounted_table": last["mounted_table"] if action == "unmount" else None}
