"""``govlake objection …``: raise an objection (数据异议) and move it through its steps.

Every step needs ``--by`` (who) and ``--reason`` (why); the time is recorded. What is printed is
masked (:mod:`govlake.governance._display`): no 身份证号, mobile number or person's full name.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from govlake._literal import literal
from govlake.catalog import get_catalog
from govlake.config import get_settings
from govlake.governance._conflicts import CONFLICTS
from govlake.governance._display import display_conflict, display_objection
from govlake.governance._objections import (
    OPEN_STATES,
    Objection,
    ObjectionError,
    history,
    list_objections,
    raise_objection,
    transition,
)

objection_app = typer.Typer(help="Objections to data values (数据异议): raise, accept, verify, resolve, reject.",
                            no_args_is_help=True)
console = Console()
err = Console(stderr=True)

By = Annotated[str, typer.Option("--by", help="Who takes the step (a department code or staff account).")]
Reason = Annotated[str, typer.Option("--reason", help="Why (recorded in the history).")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _run_id() -> str:
    from govlake.pipeline import new_run_id

    return new_run_id("objection")


def _fail(exc: Exception) -> None:
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    err.print(literal(("error:", "bold red"), f" {message}"), soft_wrap=True)
    raise typer.Exit(1)


def _done(objection: Objection) -> None:
    shown = display_objection(objection, get_catalog(get_settings().catalog_dir))
    flag = " (value marked as disputed)" if objection.disputed else ""
    console.print(literal(f"{shown['objection_id']}: {shown['state']}{flag} — {shown['resource']}.{shown['item']} "
                          f"of {shown['entity_key']}"), soft_wrap=True)


@objection_app.command("raise")
def raise_(
    conflict_id: Annotated[str | None, typer.Argument(help="Conflict id (gold/conflicts) whose authoritative "
                                                           "value is disputed.")] = None,
    resource: Annotated[str | None, typer.Option(help="Or: the resource holding the disputed value.")] = None,
    item: Annotated[str | None, typer.Option(help="… its item (column).")] = None,
    entity: Annotated[str | None, typer.Option(help="… and the entity (统一社会信用代码 or 身份证号).")] = None,
    by: By = "",
    reason: Reason = "",
) -> None:
    """Raise an objection about a conflict, or about one value (--resource --item --entity)."""
    try:
        _done(raise_objection(settings=get_settings(), by=by, reason=reason, conflict_id=conflict_id,
                              resource=resource, item=item, entity_key=entity, run_id=_run_id()))
    except (ObjectionError, KeyError) as exc:
        _fail(exc)


def _step(action: str, objection_id: str, by: str, reason: str, corrected_value: str | None = None) -> None:
    try:
        _done(transition(objection_id, action, settings=get_settings(), by=by, reason=reason,
                         corrected_value=corrected_value, run_id=_run_id()))
    except (ObjectionError, KeyError) as exc:
        _fail(exc)


ObjectionId = Annotated[str, typer.Argument(help="Objection id (OBJ-…).")]


@objection_app.command()
def accept(objection_id: ObjectionId, by: By = "", reason: Reason = "") -> None:
    """raised → accepted: the authority takes it up; the value is marked as disputed."""
    _step("accept", objection_id, by, reason)


@objection_app.command()
def verify(objection_id: ObjectionId, by: By = "", reason: Reason = "") -> None:
    """accepted → verified: the authority has checked the value."""
    _step("verify", objection_id, by, reason)


@objection_app.command()
def resolve(
    objection_id: ObjectionId,
    by: By = "",
    reason: Reason = "",
    corrected_value: Annotated[str | None, typer.Option(help="The authority's corrected value (gold takes it "
                                                             "on its next run).")] = None,
) -> None:
    """verified → resolved: handled (optionally with the corrected value); the dispute mark is removed."""
    _step("resolve", objection_id, by, reason, corrected_value)


@objection_app.command()
def reject(objection_id: ObjectionId, by: By = "", reason: Reason = "") -> None:
    """raised / accepted / verified → rejected: the value stands."""
    _step("reject", objection_id, by, reason)


@objection_app.command()
def archive(objection_id: ObjectionId, by: By = "", reason: Reason = "") -> None:
    """resolved / rejected → archived."""
    _step("archive", objection_id, by, reason)


@objection_app.command("list")
def list_(
    state: Annotated[list[str] | None, typer.Option(help="Only these states (repeatable).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include archived objections.")] = False,
    as_json: Json = False,
) -> None:
    """Current objections (not archived unless --all), oldest first."""
    settings = get_settings()
    catalog = get_catalog(settings.catalog_dir)
    wanted = set(state) if state else None
    rows = [display_objection(o, catalog) for o in list_objections(settings, states=wanted)
            if all_ or wanted or o.state != "archived"]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    t = Table(title=f"objections ({len(rows)})")
    for col in ("objection", "state", "value", "entity", "disputed", "corrected", "raised", "last step"):
        t.add_column(col)
    for r in rows:
        t.add_row(*(literal(v) for v in (
            r["objection_id"], r["state"] + (" *" if r["disputed"] else ""), f"{r['resource']}.{r['item']}",
            r["entity_key"], r["disputed_value"] or "", r["corrected_value"] or "",
            f"{r['raised_at']} {r['raised_by']}", f"{r['updated_at']} {r['updated_by']}: {r['last_reason']}")))
    console.print(t)
    console.print("* value marked as disputed (accepted or verified)", highlight=False)


@objection_app.command("history")
def history_(objection_id: ObjectionId, as_json: Json = False) -> None:
    """Every step of one objection: who, when, why."""
    settings = get_settings()
    catalog = get_catalog(settings.catalog_dir)
    rows = [display_objection(r, catalog) for r in history(settings, objection_id)]
    if not rows:
        _fail(ObjectionError(f"no objection {objection_id!r}"))
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    t = Table(title=literal(f"{objection_id}: {rows[0]['resource']}.{rows[0]['item']} of {rows[0]['entity_key']}"))
    for col in ("step", "action", "state", "by", "at", "reason", "corrected value"):
        t.add_column(col)
    for r in rows:
        t.add_row(*(literal(v) for v in (r["step"], r["action"], r["state"], r["actor"], r["at"], r["reason"],
                                          r["corrected_value"] or "")))
    console.print(t)


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

    settings = get_settings()
    table = storage.open_table(storage.table_path(settings, "gold", CONFLICTS))
    rows = [] if table is None else table.to_pyarrow_table().to_pylist()
    wanted = set(status) if status else {"open", "under_objection"}
    rows = [r for r in rows if r["status"] in wanted and (item is None or r["item"] == item)
            and (entity is None or r["entity_key"] == entity)]
    rows.sort(key=lambda r: (r["item"], r["entity_key"], r["resource"], r["record_key"] or ""))
    catalog = get_catalog(settings.catalog_dir)
    shown = [display_conflict(r, catalog) for r in rows]
    if as_json:
        typer.echo(json.dumps(shown, ensure_ascii=False, indent=1))
        return
    t = Table(title=f"conflicts ({len(shown)})")
    for col in ("conflict", "item", "entity", "authority", "other", "record", "since", "last seen", "status"):
        t.add_column(col)
    for r in shown:
        t.add_row(*(literal(v) for v in (
            r["conflict_id"], r["item"], r["entity_key"], f"{r['authority_department']}: {r['authoritative_value']}",
            f"{r['department']}: {r['other_value']}", r["record_key"] or "", r["first_seen"], r["last_seen"],
            r["status"])))
    console.print(t)


__all__ = ["OPEN_STATES", "objection_app"]
