"""``govlake objection …``: raise an objection (数据异议) and move it through its steps.

Every step needs ``--by`` (who) and ``--reason`` (why); the time is recorded. What is printed is
masked (``govlake.governance.display_objection``): no 身份证号, mobile number or person's full name.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from govlake._literal import literal
from govlake.cli._context import RunContext
from govlake.cli._main import Json, app, command

objection_app = typer.Typer(help="Objections to data values (数据异议): raise, accept, verify, resolve, reject.",
                            no_args_is_help=True)
app.add_typer(objection_app, name="objection")

By = Annotated[str, typer.Option("--by", help="Who takes the step (a department code or staff account).")]
Reason = Annotated[str, typer.Option("--reason", help="Why (recorded in the history).")]
ObjectionId = Annotated[str, typer.Argument(help="Objection id (OBJ-…).")]


def _done(ctx: RunContext, objection) -> None:
    from govlake.catalog import get_catalog
    from govlake.governance import display_objection

    shown = display_objection(objection, get_catalog(ctx.settings.catalog_dir))
    if ctx.json:
        ctx.emit(shown)
        return
    flag = " (value marked as disputed)" if objection.disputed else ""
    ctx.say(f"{shown['objection_id']}: {shown['state']}{flag} — {shown['resource']}.{shown['item']} "
            f"of {shown['entity_key']}")


@objection_app.command("raise")
def raise_(
    conflict_id: Annotated[str | None, typer.Argument(help="Conflict id (gold/conflicts) whose authoritative "
                                                           "value is disputed.")] = None,
    resource: Annotated[str | None, typer.Option(help="Or: the resource holding the disputed value.")] = None,
    item: Annotated[str | None, typer.Option(help="… its item (column).")] = None,
    entity: Annotated[str | None, typer.Option(help="… and the entity (统一社会信用代码 or 身份证号).")] = None,
    by: By = "",
    reason: Reason = "",
    as_json: Json = False,
) -> None:
    """Raise an objection about a conflict, or about one value (--resource --item --entity)."""
    from govlake.governance import raise_objection

    with command("objection", as_json=as_json) as ctx:
        _done(ctx, raise_objection(settings=ctx.settings, by=by, reason=reason, conflict_id=conflict_id,
                                   resource=resource, item=item, entity_key=entity, run_id=ctx.run_id))


def _step(action: str, objection_id: str, by: str, reason: str, *, corrected_value: str | None = None,
          as_json: bool) -> None:
    from govlake.governance import transition

    with command("objection", as_json=as_json) as ctx:
        _done(ctx, transition(objection_id, action, settings=ctx.settings, by=by, reason=reason,
                              corrected_value=corrected_value, run_id=ctx.run_id))


@objection_app.command()
def accept(objection_id: ObjectionId, by: By = "", reason: Reason = "", as_json: Json = False) -> None:
    """raised → accepted: the authority takes it up; the value is marked as disputed."""
    _step("accept", objection_id, by, reason, as_json=as_json)


@objection_app.command()
def verify(objection_id: ObjectionId, by: By = "", reason: Reason = "", as_json: Json = False) -> None:
    """accepted → verified: the authority has checked the value."""
    _step("verify", objection_id, by, reason, as_json=as_json)


@objection_app.command()
def resolve(
    objection_id: ObjectionId,
    by: By = "",
    reason: Reason = "",
    corrected_value: Annotated[str | None, typer.Option(help="The authority's corrected value (gold takes it "
                                                             "on its next run).")] = None,
    as_json: Json = False,
) -> None:
    """verified → resolved: handled (optionally with the corrected value); the dispute mark is removed."""
    _step("resolve", objection_id, by, reason, corrected_value=corrected_value, as_json=as_json)


@objection_app.command()
def reject(objection_id: ObjectionId, by: By = "", reason: Reason = "", as_json: Json = False) -> None:
    """raised / accepted / verified → rejected: the value stands."""
    _step("reject", objection_id, by, reason, as_json=as_json)


@objection_app.command()
def archive(objection_id: ObjectionId, by: By = "", reason: Reason = "", as_json: Json = False) -> None:
    """resolved / rejected → archived."""
    _step("archive", objection_id, by, reason, as_json=as_json)


@objection_app.command("list")
def list_(
    state: Annotated[list[str] | None, typer.Option(help="Only these states (repeatable).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include archived objections.")] = False,
    as_json: Json = False,
) -> None:
    """Current objections (not archived unless --all), oldest first."""
    from govlake.catalog import get_catalog
    from govlake.governance import display_objection, list_objections

    with command("objection", as_json=as_json) as ctx:
        catalog = get_catalog(ctx.settings.catalog_dir)
        wanted = set(state) if state else None
        rows = [display_objection(o, catalog) for o in list_objections(ctx.settings, states=wanted)
                if all_ or wanted or o.state != "archived"]
        if ctx.json:
            ctx.emit(rows)
            return
        t = Table(title=f"objections ({len(rows)})")
        for col in ("objection", "state", "value", "entity", "disputed", "corrected", "raised", "last step"):
            t.add_column(col)
        for r in rows:
            t.add_row(*(literal(v) for v in (
                r["objection_id"], r["state"] + (" *" if r["disputed"] else ""), f"{r['resource']}.{r['item']}",
                r["entity_key"], r["disputed_value"] or "", r["corrected_value"] or "",
                f"{r['raised_at']} {r['raised_by']}", f"{r['updated_at']} {r['updated_by']}: {r['last_reason']}")))
        ctx.show(t)
        ctx.say("* value marked as disputed (accepted or verified)", wrap=True)


@objection_app.command("history")
def history_(objection_id: ObjectionId, as_json: Json = False) -> None:
    """Every step of one objection: who, when, why."""
    from govlake.catalog import get_catalog
    from govlake.governance import ObjectionError, display_objection, history

    with command("objection", as_json=as_json) as ctx:
        catalog = get_catalog(ctx.settings.catalog_dir)
        rows = [display_objection(r, catalog) for r in history(ctx.settings, objection_id)]
        if not rows:
            raise ObjectionError(f"no objection {objection_id!r}")
        if ctx.json:
            ctx.emit(rows)
            return
        t = Table(title=literal(f"{objection_id}: {rows[0]['resource']}.{rows[0]['item']} of "
                                f"{rows[0]['entity_key']}"))
        for col in ("step", "action", "state", "by", "at", "reason", "corrected value"):
            t.add_column(col)
        for r in rows:
            t.add_row(*(literal(v) for v in (r["step"], r["action"], r["state"], r["actor"], r["at"], r["reason"],
                                              r["corrected_value"] or "")))
        ctx.show(t)


@objection_app.command()
def conflicts(
    status: Annotated[list[str] | None, typer.Option(help="Only these statuses: open, under_objection, "
                                                          "resolved (repeatable).")] = None,
    item: Annotated[str | None, typer.Option(help="Only this item (column), e.g. address.")] = None,
    entity: Annotated[str | None, typer.Option(help="Only this entity (统一社会信用代码 or 身份证号).")] = None,
    as_json: Json = False,
) -> None:
    """The 一数一源 conflicts (gold/conflicts) an objection can be raised about; open ones by default."""
    from govlake import storage
    from govlake.catalog import get_catalog
    from govlake.governance import CONFLICTS, display_conflict

    with command("objection", as_json=as_json) as ctx:
        table = storage.open_table(storage.table_path(ctx.settings, "gold", CONFLICTS))
        rows = [] if table is None else table.to_pyarrow_table().to_pylist()
        wanted = set(status) if status else {"open", "under_objection"}
        rows = [r for r in rows if r["status"] in wanted and (item is None or r["item"] == item)
                and (entity is None or r["entity_key"] == entity)]
        rows.sort(key=lambda r: (r["item"], r["entity_key"], r["resource"], r["record_key"] or ""))
        catalog = get_catalog(ctx.settings.catalog_dir)
        shown = [display_conflict(r, catalog) for r in rows]
        if ctx.json:
            ctx.emit(shown)
            return
        t = Table(title=f"conflicts ({len(shown)})")
        for col in ("conflict", "item", "entity", "authority", "other", "record", "since", "last seen", "status"):
            t.add_column(col)
        for r in shown:
            t.add_row(*(literal(v) for v in (
                r["conflict_id"], r["item"], r["entity_key"],
                f"{r['authority_department']}: {r['authoritative_value']}", f"{r['department']}: {r['other_value']}",
                r["record_key"] or "", r["first_seen"], r["last_seen"], r["status"])))
        ctx.show(t)
