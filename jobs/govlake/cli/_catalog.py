"""``govlake catalog``: validate the catalog; search it, show a resource, follow a table's lineage;
claim (认领) and mount (挂载) resources and list who holds them (``govlake.governance`` claim history).

The answers are ``govlake.browse``'s (``search``, ``show``, ``lineage``: plain data, printed here
as tables and trees, or as JSON). New ``catalog`` subcommands go on ``catalog_app`` in this module.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from govlake._literal import literal
from govlake.cli._context import RunContext
from govlake.cli._main import ERROR, Json, app, command

catalog_app = typer.Typer(help="The data resource catalog (政务数据资源目录).", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@catalog_app.command("validate")
def catalog_validate(as_json: Json = False) -> None:
    """Check the catalog, credit_rules.yml, open_data.yml, themes.yml and expectations/: every problem with its file
    and line;
    warn where a YAML claimed_by disagrees with the claim history (the history counts)."""
    from govlake.catalog import CatalogError, load_catalog
    from govlake.credit import load_credit_rules
    from govlake.governance import claim_history, yaml_disagreements
    from govlake.opendata import load_config
    from govlake.quality import check_expectations
    from govlake.themes import load_themes

    with command("catalog", as_json=as_json) as ctx:
        settings = ctx.settings
        problems: list[str] = []
        cat, checkable, skip = None, None, frozenset()
        try:
            cat = checkable = load_catalog(settings.catalog_dir)
        except CatalogError as exc:
            problems.extend(exc.problems)
            checkable, skip = exc.partial, exc.left_out
        try:
            load_credit_rules(settings.catalog_dir)
        except CatalogError as exc:
            problems.extend(exc.problems)
        if cat is not None:
            for load in (load_config, load_themes):
                try:
                    load(settings)
                except CatalogError as exc:
                    problems.extend(exc.problems)
        if checkable is not None:
            problems.extend(check_expectations(checkable, settings.expectations_dir, skip=skip))
        if problems:
            _print_problems(ctx, problems, expectations_checked=checkable is not None)
            raise typer.Exit(ERROR)
        warnings = yaml_disagreements(cat, claim_history(settings, catalog=cat))
        for w in warnings:
            ctx.say(f"warning: {w}", error=True, wrap=True)
        if ctx.json:
            ctx.emit({"ok": True, "resources": len(cat.resources), "departments": len(cat.departments),
                      "code_lists": len(cat.code_lists), "warnings": warnings})
            return
        ctx.say(f"catalog ok: {len(cat.resources)} resources, {len(cat.departments)} departments, "
                f"{len(cat.code_lists)} code lists; expectations ok", wrap=True)


def _print_problems(ctx: RunContext, problems: list[str], *, expectations_checked: bool) -> None:
    """Every problem on stderr (also with --json), then the count; with --json also a JSON document."""
    summary = f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in the catalog"
    for p in problems:
        ctx.err.print(literal(p), soft_wrap=True)
    if not expectations_checked:
        ctx.err.print(literal(f"{ctx.settings.expectations_dir} not checked: departments, code lists and defaults "
                              "must load first"), soft_wrap=True)
    ctx.err.print(literal(summary))
    if ctx.json:
        ctx.emit({"error": summary, "problems": problems, "expectations_checked": expectations_checked,
                  "exit_code": ERROR})


@catalog_app.command("list")
def catalog_list(
    dags: Annotated[bool, typer.Option("--dags", help="Only the feed DAG ids (feed_<slug>), one a line.")] = False,
    as_json: Json = False,
) -> None:
    """Every resource: code, name, provider, update cycle, source kind; or its feed DAG ids (dags/feeds.py)."""
    from govlake.catalog import load_catalog

    with command("catalog", as_json=as_json) as ctx:
        resources = sorted(load_catalog(ctx.settings.catalog_dir).resources.values(), key=lambda r: r.code)
        rows = [{"code": r.code, "name": r.name, "provider": r.provider, "update_cycle": r.update_cycle,
                 "source": r.source.kind, "dag_id": f"feed_{r.slug}"} for r in resources]
        if dags:
            for row in rows:
                typer.echo(row["dag_id"])
        elif ctx.json:
            ctx.emit(rows)
        else:
            t = Table(title=f"{len(rows)} resources (feed DAG: feed_<code with . as _>)")
            columns = {"code": "code", "name": "name", "provider": "provider", "update_cycle": "cycle",
                       "source": "source"}
            for header in columns.values():
                t.add_column(header, no_wrap=header == "code")
            for row in rows:
                t.add_row(*(literal(row[c]) for c in columns))
            ctx.show(t)


@catalog_app.command("search")
def catalog_search(
    text: Annotated[str, typer.Argument(help="Text in a resource code, a name (zh/en), an item or a department.")],
    as_json: Json = False,
) -> None:
    """Find resources, data items and departments by code or name."""
    from govlake.browse import search

    with command("catalog", as_json=as_json) as ctx:
        hits = search(ctx.settings, text)
        if ctx.json:
            ctx.emit(hits)
            return
        _print_search(ctx, hits, text)


def _print_search(ctx: RunContext, hits: list[dict[str, Any]], text: str) -> None:
    if not hits:
        ctx.say(f"nothing in the catalog matches {text!r}", wrap=True)
        return
    t = Table(title=literal(f"catalog entries matching {text!r}"))
    for col in ("kind", "code", "name", "name_en", "detail"):
        t.add_column(col)
    for h in hits:
        if h["kind"] == "department":
            detail = "provides " + (", ".join(h["resources"]) or "nothing yet")
        elif h["kind"] == "resource":
            detail = f"provider {h['provider']}"
        else:
            detail = f"{h['level']}, authority {h['authority']}"
        t.add_row(*(literal(v) for v in (h["kind"], h["code"], h["name"], h["name_en"], detail)))
    ctx.show(t)


@catalog_app.command("show")
def catalog_show(
    resource: Annotated[str, typer.Argument(help="Resource code, e.g. amr.enterprise.")],
    as_json: Json = False,
) -> None:
    """A resource: items, classification, authority, sharing, freshness, quality, lineage, conflicts."""
    from govlake.browse import show

    with command("catalog", as_json=as_json) as ctx:
        info = show(ctx.settings, resource)
        if ctx.json:
            ctx.emit(info)
            return
        _print_show(ctx, info)


def _print_show(ctx: RunContext, info: dict[str, Any]) -> None:
    ctx.say((info["code"], "bold"), f" {info['name']} ({info['name_en']}) — {info['kind']}, {info['category']}",
            wrap=True)
    ctx.say(f"provider: {info['provider']} {info['provider_name'] or ''}; grain: {info['grain']}; "
            f"key: {' + '.join(info['key'])}", wrap=True)
    ctx.say(f"summary: {info['summary']}", wrap=True)
    share = info["share_type"] + (f" — {info['share_condition']} ({info['share_basis']})"
                                  if info["share_condition"] else "")
    ctx.say(f"sharing: {share}; method {info['share_method']}; opening: {info['open_type']}", wrap=True)
    f = info["freshness"]
    when = f"last landed {f['last_landed']:%Y-%m-%d %H:%M} UTC ({f['age_days']} days ago)" if f["last_landed"] else ""
    ctx.say(f"update cycle: {f['update_cycle']}; freshness: ", (f["status"], "bold"), f" {when}", wrap=True)
    t = Table(title="items (信息项)")
    for col in ("column", "name", "type", "req", "level", "PII", "authority"):
        t.add_column(col)
    for i in info["items"]:
        authority = i["authority"] if i["authority"] != info["provider"] else f"{i['authority']} (provider)"
        if i["copy_of"]:
            authority += f"; copy of {i['copy_of']}" + (f" when {i['copy_when']}" if i["copy_when"] else "")
        t.add_row(*(literal(v) for v in (i["column"], i["name"], i["type"], "yes" if i["required"] else "",
                                          i["level"], i["pii"] or "", authority)))
    ctx.show(t)
    q = info["quality"]
    if q["rules"]:
        t = Table(title=f"latest quality results (run {q['run_id']}, {q['validated_at']:%Y-%m-%d %H:%M} UTC)")
        for col in ("rule", "severity", "failed", "checked", "ok", "description"):
            t.add_column(col, justify="right" if col in ("failed", "checked") else "left")
        for r in q["rules"]:
            t.add_row(literal(r["rule_id"]), literal(r["severity"]), str(r["failed"]), str(r["rows_checked"]),
                      literal(("yes", "green") if r["success"] else ("no", "red")), literal(r["description_zh"]))
        ctx.show(t)
    else:
        ctx.say("quality: not validated yet", wrap=True)
    lin = info["lineage"]
    if not lin["events"]:
        ctx.say("lineage: no OpenLineage events under var/lineage yet (run the pipeline)", wrap=True)
    else:
        ctx.say("lineage upstream: " + (", ".join(lin["upstream"]) or "(none recorded)"), wrap=True)
        ctx.say("lineage downstream: " + (", ".join(lin["downstream"]) or "(none recorded)"), wrap=True)
    _print_conflicts(ctx, info["conflicts"], "一数一源 conflicts on this resource")


def _print_conflicts(ctx: RunContext, found: dict[str, Any] | None, title: str) -> None:
    if found is None:
        ctx.say("conflicts: gold/conflicts has not been built yet", wrap=True)
        return
    if not found["groups"]:
        ctx.say(f"{title}: none", wrap=True)
        return
    t = Table(title=literal(f"{title} (gold/conflicts)"))
    for col in ("item", "authority", "department", "status", "entities", "first seen", "last seen"):
        t.add_column(col, justify="right" if col == "entities" else "left")
    for g in found["groups"]:
        t.add_row(*(literal(v or "") for v in (g["item"], g["authority"], g["department"], g["status"])),
                  str(g["entities"]), _day(g["first_seen"]), _day(g["last_seen"]))
    ctx.show(t)


def _day(value: dt.datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M}"


@catalog_app.command("lineage")
def catalog_lineage(
    target: Annotated[str, typer.Argument(help="TABLE[.COLUMN]: gold.legal_entity.address, amr.enterprise, …")],
    upstream: Annotated[bool, typer.Option("--upstream", help="Only where it comes from.")] = False,
    downstream: Annotated[bool, typer.Option("--downstream", help="Only what it feeds.")] = False,
    indirect: Annotated[bool, typer.Option(help="Also follow columns that only decide a value.")] = False,
    as_json: Json = False,
) -> None:
    """Upstream and downstream of a table or column, down to the source files and database tables."""
    from govlake.browse import lineage

    with command("catalog", as_json=as_json) as ctx:
        both = upstream == downstream
        result = lineage(ctx.settings, target, upstream=upstream or both, downstream=downstream or both,
                         indirect=indirect)
        if ctx.json:
            ctx.emit(result)
            return
        _print_lineage(ctx, result)


def _print_lineage(ctx: RunContext, result: dict[str, Any]) -> None:
    target = result["target"]
    if not result["events"]:
        ctx.say("no OpenLineage events under var/lineage yet (run the pipeline first)", wrap=True)
    root = (target["namespace"], target["name"], target["column"])
    for direction in ("upstream", "downstream"):
        if direction not in result:
            continue
        edges = result[direction]["edges"]
        label = target["dataset"] + (f".{target['column']}" if target["column"] else "")
        tree = Tree(literal((direction, "bold"), " of ", label), highlight=False)
        _grow(tree, root, edges, direction, seen=set())
        ctx.show(tree)
        if not edges:
            ctx.say(f"  (nothing recorded {direction})", wrap=True)
    if "conflicts" in result:
        _print_conflicts(ctx, result["conflicts"], f"departments disagreeing on {target['column']}")


def _key(node: dict[str, Any]) -> tuple[str, str, str | None]:
    return node["namespace"], node["name"], node["column"]


def _grow(tree: Tree, here: tuple, edges: list[dict[str, Any]], direction: str, seen: set) -> None:
    """Branch ``tree`` at ``here`` with the edges walked from it, depth first, each node once."""
    if here in seen:
        return
    seen.add(here)
    near, far = ("to", "from") if direction == "upstream" else ("from", "to")
    for e in edges:
        if _key(e[near]) != here:
            continue
        kind = "" if e["kind"] == "DIRECT" else f", {e['kind'].lower()}"
        branch = tree.add(Text.assemble(_label(e[far]), "  ", literal(f"({e['job']}{kind})", style="dim")),
                          highlight=False)
        _grow(branch, _key(e[far]), edges, direction, seen)


def _label(node: dict[str, Any]) -> Text:
    name = f"{node['dataset']} ({node['namespace']} {node['name']})" if node["kind"] == "db" else node["dataset"]
    column = node["column"]
    return literal(f"{name}.{column}" if column and node["kind"] != "file" else (f"{name} [{column}]" if column
                                                                                 else name))


# ---- 认领 / 挂载 ---------------------------------------------------------------------------------

Resource = Annotated[str, typer.Argument(help="Resource code, e.g. amr.enterprise.")]
Dept = Annotated[str, typer.Option("--dept", help="The department taking the step (code in "
                                                  "catalog/departments.yml).")]
By = Annotated[str, typer.Option("--by", help="Who takes the step: a staff account (recorded; not a "
                                              "person's name).")]
Why = Annotated[str, typer.Option("--why", help="Why (recorded in the history).")]


def _claim_step(action: str, resource: str, dept: str, by: str, why: str, *, table: str | None = None,
                as_json: bool) -> None:
    from govlake.governance import claim_step, display_claim

    with command("catalog", as_json=as_json) as ctx:
        claim = claim_step(action, resource, settings=ctx.settings, department=dept, by=by, reason=why,
                           table=table, run_id=ctx.run_id)
        shown = display_claim(claim)
        if ctx.json:
            ctx.emit(shown)
            return
        where = f" on {shown['mounted_table']}" if shown["mounted_table"] else ""
        holder = f" by {shown['department']}" if shown["department"] else ""
        ctx.say(f"{resource}: {shown['state']}{holder}{where} ({action} recorded, step {shown['steps']})",
                wrap=True)


@catalog_app.command("claim")
def catalog_claim(resource: Resource, dept: Dept, by: By = "", why: Why = "", as_json: Json = False) -> None:
    """认领: DEPT claims an unclaimed resource and answers for it."""
    _claim_step("claim", resource, dept, by, why, as_json=as_json)


@catalog_app.command("release")
def catalog_release(resource: Resource, dept: Dept, by: By = "", why: Why = "", as_json: Json = False) -> None:
    """Release a claim (claimed → unclaimed); only the claiming department, and not while mounted."""
    _claim_step("release", resource, dept, by, why, as_json=as_json)


@catalog_app.command("mount")
def catalog_mount(
    resource: Resource,
    dept: Dept,
    by: By = "",
    why: Why = "",
    table: Annotated[str | None, typer.Option("--table", help="The silver table holding the data (default "
                                                              "silver/<resource with . as _>); must exist.")] = None,
    as_json: Json = False,
) -> None:
    """挂载: the claiming department mounts the data behind its resource (claimed → mounted)."""
    _claim_step("mount", resource, dept, by, why, table=table, as_json=as_json)


@catalog_app.command("unmount")
def catalog_unmount(resource: Resource, dept: Dept, by: By = "", why: Why = "", as_json: Json = False) -> None:
    """Take the data off a resource (mounted → claimed); only the claiming department."""
    _claim_step("unmount", resource, dept, by, why, as_json=as_json)


@catalog_app.command("claims")
def catalog_claims(
    resource: Annotated[str | None, typer.Argument(help="Only this resource (its whole history).")] = None,
    as_json: Json = False,
) -> None:
    """Who claimed and mounted each resource now, and every step (who, when, why); warns where a
    catalog YAML claimed_by disagrees with the history."""
    from govlake.catalog import get_catalog
    from govlake.contracts import CATALOG_CLAIMS as CURRENT_SCHEMA
    from govlake.governance import ClaimError, claim_history, claim_states, display_claim, yaml_disagreements

    with command("catalog", as_json=as_json) as ctx:
        catalog = get_catalog(ctx.settings.catalog_dir)
        if resource is not None and resource not in catalog.resources:
            raise ClaimError(f"no resource {resource!r} in the catalog; try `govlake catalog search {resource}`")
        steps = claim_history(ctx.settings, catalog=catalog)
        states = claim_states(steps)
        codes = [resource] if resource else sorted(catalog.resources)
        never = {name: None for name in CURRENT_SCHEMA.names} | {"state": "unclaimed", "steps": 0}
        current = [display_claim(states[c]) if c in states else never | {"resource": c} for c in codes]
        rows = [display_claim(r) for r in steps if resource is None or r["resource"] == resource]
        warnings = [w for w in yaml_disagreements(catalog, steps) if resource is None or f"/{resource}.yml" in w]
        for w in warnings:
            ctx.say(f"warning: {w}", error=True, wrap=True)
        if ctx.json:
            ctx.emit({"current": current, "history": rows, "warnings": warnings})
            return
        t = Table(title=f"认领 / 挂载 of {len(current)} resources (times UTC)")
        for col in ("resource", "state", "department", "claimed", "mounted", "last step"):
            t.add_column(col, no_wrap=col == "resource")
        for c in current:
            last = (f"{c['last_action']} {_minute(c['updated_at'])} {c['updated_by']}: {c['last_reason']}"
                    if c["steps"] else "")
            t.add_row(*(literal(v or "") for v in (c["resource"], c["state"], c["department"],
                                                    _minute(c["claimed_at"]), c["mounted_table"], last)))
        ctx.show(t)
        t = Table(title="history (seeded: the initial claim a catalog YAML claimed_by states)")
        for col in ("resource", "#", "action", "department", "table", "by", "at", "why"):
            t.add_column(col, no_wrap=col == "resource")
        for r in rows:
            action = r["action"] + (" (seeded)" if r["seeded"] else "")
            t.add_row(*(literal(v or "") for v in (r["resource"], str(r["step"]), action, r["department"],
                                                    r["mounted_table"], r["actor"], _minute(r["at"]), r["reason"])))
        ctx.show(t)


def _minute(iso: str | None) -> str | None:
    """``2026-11-20T09:30:00+00:00`` as ``2026-11-20 09:30`` (the tables say the times are UTC)."""
    return iso and iso[:16].replace("T", " ")
