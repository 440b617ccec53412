"""``govlake kpi``, ``report`` and ``rules``: the KPIs against their targets, the auditor's report, the rules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from govlake._literal import literal
from govlake.cli._context import RunContext
from govlake.cli._main import Json, app, command
from govlake.cli._progress import Activity


@app.command()
def kpi(
    as_json: Annotated[bool, typer.Option("--json", help="Every KPI with every value, machine-readable.")] = False,
    period: Annotated[str | None, typer.Option(help="Show this period (e.g. 2026-10); default each KPI's latest.")]
    = None,
) -> None:
    """Every KPI (双公示 credit, 一数一源, sharing) with its definition, inputs, period, values and target."""
    from govlake.kpi import compute_kpis, kpis_to_json

    with command("kpi", as_json=as_json) as ctx:
        kpis = compute_kpis(ctx.settings)
        if ctx.json:
            ctx.emit(kpis_to_json(kpis, as_of=ctx.as_of.isoformat()))
            return
        for k in kpis:
            _print_kpi(ctx, k, period)


def _print_kpi(ctx: RunContext, k, period: str | None) -> None:
    periods = sorted({v.period for v in k.values})
    shown = period if period in periods else (periods[-1] if periods else None)
    target = "" if k.target is None else (f" — target {'≥' if k.target_direction == 'min' else '≤'} "
                                          + (f"{k.target:.0%}" if k.unit == "ratio" else f"{k.target:g}"))
    ctx.say("", wrap=True)
    ctx.say((k.name_zh, "bold"), f" {k.name_en} ", (f"({k.id})", "dim"), target, wrap=True)
    ctx.say(f"  {k.definition_zh}")
    ctx.say(f"  {k.definition_en}")
    ctx.say(f"  period: {k.period}; inputs: {', '.join(k.inputs)}")
    if shown is None:
        ctx.say("  no data yet", style="dim", wrap=True)
        return
    t = Table(title=literal(f"{k.id} · {shown}"), title_justify="left")
    for col in ("scope", "value", "numerator", "denominator", "status"):
        t.add_column(col, justify="left" if col in ("scope", "status") else "right")
    for v in (v for v in k.values if v.period == shown):
        value = "—" if v.value is None else (f"{v.value:.2%}" if k.unit == "ratio" else f"{v.value:,.2f}")
        status = literal({True: ("meets target", "green"), False: ("below target", "red"), None: ""}[v.meets_target],
                         " provisional" if v.provisional else "",
                         # e.g. no 报送时间: the received time stood in
                         f" · {v.note}" if v.note else "")
        t.add_row(literal(v.scope), value, "" if v.numerator is None else f"{v.numerator:g}",
                  "" if v.denominator is None else f"{v.denominator:g}", status)
    ctx.show(t)
    below = k.below_target(shown)
    if below:
        ctx.say("  ", (f"below target in {shown}:", "red"), f" {', '.join(below)}", wrap=True)


@app.command()
def report(
    out: Annotated[Path | None, typer.Option(help="Folder of the site (default var/reports/quality).")] = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Print the bulletin to PDF (headless Chromium).")]
    = True,
    as_json: Json = False,
) -> None:
    """The auditor's quality report: a static site (overview, scorecards, trends, drill-down, 季度通报)."""
    from govlake.report import build_report

    with command("report", as_json=as_json) as ctx:
        with Activity(ctx, "building the quality report"):
            result = build_report(ctx.settings, out=out, pdf=pdf)
        if ctx.json:
            ctx.emit({"path": result.path, "pages": len(result.pages), "csv_files": len(result.csv_files),
                      "pdf": result.pdf, "seconds": round(result.seconds, 1), "notes": result.notes})
            return
        ctx.say(f"quality report: {len(result.pages)} pages, {len(result.csv_files)} CSV files in "
                f"{result.seconds:.1f}s; open ", (str(result.path), "bold"))
        if result.pdf:
            ctx.say(f"bulletin PDF: {result.pdf}")
        for note in result.notes:
            ctx.say(f"note: {note}", style="dim")


@app.command()
def rules(
    resource: Annotated[str | None, typer.Argument(help="Catalog resource code; every resource when omitted.")] = None,
    as_json: Json = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="The 双公示 rule pack as docs/rules.md.")] = False,
) -> None:
    """The quality rules: id, severity, Great Expectations class, Chinese and English description."""
    from govlake.quality import rule_listing, rules_markdown

    with command("rules", as_json=as_json) as ctx:
        if markdown:
            typer.echo(rules_markdown(settings=ctx.settings), nl=False)
            return
        listing = rule_listing(resource, settings=ctx.settings)
        if ctx.json:
            ctx.emit(listing)
            return
        t = Table(title=literal(f"quality rules of {resource or 'every resource'}"))
        for col in (["resource"] if not resource else []) + ["id", "severity", "expectation", "说明", "description"]:
            t.add_column(col, no_wrap=col in ("resource", "id", "severity", "expectation"))
        for r in listing:
            t.add_row(*(literal(v) for v in ([r["resource"]] if not resource else []) + [
                r["id"], r["severity"], r["expectation"] or "—", r["zh"], r["en"]]))
        ctx.show(t)
