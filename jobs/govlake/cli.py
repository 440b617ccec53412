"""The ``govlake`` command line: generate a city, ingest, run the pipeline, show what was built."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="govlake: the city big data bureau's lakehouse pipeline.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
catalog_app = typer.Typer(help="The data resource catalog (政务数据资源目录).", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
from govlake.governance._objections_cli import objection_app  # noqa: E402

app.add_typer(objection_app, name="objection")
console = Console()
err = Console(stderr=True)

def _known_errors() -> tuple[type[Exception], ...]:
    from govlake.catalog import CatalogError
    from govlake.config import SettingsError
    from govlake.quality import QualityError

    errors: list[type[Exception]] = [SettingsError, CatalogError, QualityError, KeyError, FileNotFoundError]
    try:
        from govlake.ingest import IngestError

        errors.append(IngestError)
    except ImportError:
        pass
    return tuple(errors)


def _fail(exc: Exception) -> None:
    """Print ``error: …`` (no traceback) and exit: 2 for a bad setting, 1 for anything else."""
    from rich.markup import escape

    from govlake.config import SettingsError

    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2 if isinstance(exc, SettingsError) else 1)


@app.callback()
def _settings_first() -> None:
    from govlake.config import SettingsError, get_settings

    try:
        get_settings()
    except SettingsError as exc:
        _fail(exc)


@app.command()
def generate(
    out: Annotated[Path | None, typer.Option(help="Folder for the departments' exports (default var/city).")] = None,
    scale: Annotated[int, typer.Option(help="Approximate total rows across all resources.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 42,
    defect_rate: Annotated[float, typer.Option(help="Share of rows given each kind of defect.")] = 0.03,
    only: Annotated[str | None, typer.Option(help="Write just this resource (e.g. credit.penalty).")] = None,
    rows: Annotated[int | None, typer.Option(help="With --only: exactly this many rows.")] = None,
) -> None:
    """Write a sample city's departmental exports (CSV GBK/UTF-8, XLSX, JSON lines, a database)."""
    from govlake.config import get_settings
    from govlake.generate import generate_city

    target = out or get_settings().city
    manifest = generate_city(target, scale=scale, seed=seed, defect_rate=defect_rate, only=only, rows=rows)
    t = Table(title=f"sample city in {target}")
    for col in ("resource", "files", "rows", "rows with an invalid defect"):
        t.add_column(col, justify="left" if col == "resource" else "right")
    for code, info in manifest.resources.items():
        t.add_row(code, str(len(info.files)), f"{info.rows:,}", f"{info.invalid_rows:,}")
    console.print(t)
    console.print(f"every injected defect is listed in {target / 'manifest.json'}", soft_wrap=True)


@app.command()
def ingest(
    resource: Annotated[str | None, typer.Argument(help="Catalog resource code, e.g. credit.penalty.")] = None,
    file: Annotated[list[Path] | None, typer.Option("--file", help="Ingest this file (repeatable).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Ingest every resource from its source.")] = False,
    run: Annotated[bool, typer.Option("--run/--no-run", help="With --file: also standardize and validate.")] = True,
) -> None:
    """Land raw data in bronze; re-ingesting the same file or database window adds nothing."""
    from govlake import pipeline
    from govlake.catalog import get_catalog

    if not resource and not all_:
        _fail(ValueError("name a RESOURCE or pass --all"))
    codes = list(get_catalog().resources) if all_ else [resource]
    try:
        for code in codes:
            result = pipeline.ingest(code, files=[f.resolve() for f in file] if file else None)
            for b in result.batches:
                colour = {"landed": "green", "rejected": "red"}.get(b.status, "yellow")
                console.print(f"{code}: [{colour}]{b.status}[/] {b.rows} rows from {b.source}"
                              + (f" ({b.encoding})" if getattr(b, "encoding", None) else "")
                              + (f" — {b.error}" if b.error else ""), highlight=False)
            if file and run:
                _print_process(pipeline.process(code))
                _print_rejected_rows(code, [str(f.resolve()) for f in file])
    except _known_errors() as exc:
        _fail(exc)


def _print_process(r) -> None:
    n = r.run
    console.print(f"{r.resource}: this run read {n.rows} = new silver {n.silver} + quarantined {n.quarantined}"
                  f" + duplicates {n.duplicates}; tables: read {r.rows_read} = silver {r.silver} + quarantined "
                  f"{r.quarantined} + duplicates {r.duplicates}", highlight=False)
    for rule, n in sorted(r.rule_failures.items(), key=lambda kv: -kv[1]):
        console.print(f"  quarantined by {rule}: {n}", highlight=False)


def _print_rejected_rows(code: str, sources: list[str], limit: int = 20) -> None:
    """Each quarantined row of the given files as file:row and the rules it failed."""
    import duckdb

    from govlake import storage
    from govlake.catalog import get_catalog
    from govlake.config import get_settings

    path = storage.table_path(get_settings(), "quarantine", get_catalog().resource(code).slug)
    table = storage.open_table(path)
    if table is None:
        return
    con = duckdb.connect()
    con.register("q", table.to_pyarrow_dataset())
    listed = ", ".join("'" + s.replace("'", "''") + "'" for s in sources)
    rows = con.execute(f"""select _source, _row_number, array_to_string(_failed_rules, ', ')
        from q where _source in ({listed}) order by _source, _row_number""").fetchall()
    for source, row, rules in rows[:limit]:
        console.print(f"  {source}:{row}: {rules}", highlight=False, soft_wrap=True)
    if len(rows) > limit:
        console.print(f"  … and {len(rows) - limit} more rows in {path}", highlight=False, soft_wrap=True)


@app.command()
def run(
    rebuild: Annotated[bool, typer.Option(help="Reprocess all of bronze (after a rule or catalog change) "
                                               "instead of what is new since the last run.")] = False,
) -> None:
    """Everything after ingest over what has landed: silver, quarantine, gold, credit, extract."""
    from govlake import pipeline

    try:
        summary = pipeline.run(rebuild=rebuild)
    except _known_errors() as exc:
        _fail(exc)
    for r in summary["resources"].values():
        _print_process(r)
    console.print(f"gold: {summary['gold']}")
    c = summary["credit"]
    console.print(f"credit (as of {c.as_of}{', rebuilt' if c.rebuilt else ''}): re-derived {c.rederived}; "
                  f"withdrawn {c.withdrawn or 'none'}", highlight=False)
    console.print(f"extract: {summary['extract']}")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Tables with row counts, quarantine counts per rule, and the extract path."""
    from govlake.status import lake_status

    info = lake_status()
    if as_json:
        console.print_json(json.dumps(info, ensure_ascii=False, default=str))
        return
    t = Table(title="govlake tables (Delta, under " + info["lake"] + ")")
    for col in ("layer", "table", "rows", "version"):
        t.add_column(col, justify="right" if col in ("rows", "version") else "left")
    for row in info["tables"]:
        t.add_row(row["layer"], row["table"], f"{row['rows']:,}", str(row["version"]))
    console.print(t)
    q = Table(title="quarantined rows per rule")
    for col in ("table", "rule", "rows"):
        q.add_column(col, justify="right" if col == "rows" else "left")
    for row in info["quarantine_by_rule"]:
        q.add_row(row["table"], row["rule"], f"{row['rows']:,}")
    console.print(q)
    for row in info["reconciliation"]:
        mark = "[green]balanced[/]" if row["balanced"] else "[red]NOT balanced[/]"
        console.print(f"{row['resource']}: read {row['rows_read']:,} = silver {row['silver']:,} + quarantined "
                      f"{row['quarantined']:,} + duplicates {row['duplicates']:,} {mark}", highlight=False)
    console.print(f"analyst extract: [bold]{info['extract'] or '(not built yet)'}[/]")


@app.command()
def kpi(
    as_json: Annotated[bool, typer.Option("--json", help="Every KPI with every value, machine-readable.")] = False,
    period: Annotated[str | None, typer.Option(help="Show this period (e.g. 2026-10); default each KPI's latest.")]
    = None,
) -> None:
    """Every KPI (双公示 credit, 一数一源, sharing) with its definition, inputs, period, values and target."""
    from govlake.config import get_settings
    from govlake.kpi import compute_kpis, kpis_to_json

    settings = get_settings()
    try:
        kpis = compute_kpis(settings)
    except _known_errors() as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(kpis_to_json(kpis, as_of=settings.today.isoformat()), ensure_ascii=False, indent=2,
                              default=str))
        return
    for k in kpis:
        periods = sorted({v.period for v in k.values})
        shown = period if period in periods else (periods[-1] if periods else None)
        target = "" if k.target is None else (f" — target {'≥' if k.target_direction == 'min' else '≤'} "
                                              + (f"{k.target:.0%}" if k.unit == "ratio" else f"{k.target:g}"))
        console.print(f"\n[bold]{k.name_zh}[/] {k.name_en} [dim]({k.id})[/]{target}", highlight=False)
        console.print(f"  {k.definition_zh}\n  {k.definition_en}\n  period: {k.period}; inputs: "
                      f"{', '.join(k.inputs)}", highlight=False, soft_wrap=True)
        if shown is None:
            console.print("  no data yet", style="dim")
            continue
        t = Table(title=f"{k.id} · {shown}", title_justify="left")
        for col in ("scope", "value", "numerator", "denominator", "status"):
            t.add_column(col, justify="left" if col in ("scope", "status") else "right")
        for v in (v for v in k.values if v.period == shown):
            value = "—" if v.value is None else (f"{v.value:.2%}" if k.unit == "ratio" else f"{v.value:,.2f}")
            status = {True: "[green]meets target[/]", False: "[red]below target[/]", None: ""}[v.meets_target]
            if v.provisional:
                status += " provisional"
            t.add_row(v.scope, value, "" if v.numerator is None else f"{v.numerator:g}",
                      "" if v.denominator is None else f"{v.denominator:g}", status)
        console.print(t)
        below = k.below_target(shown)
        if below:
            console.print(f"  [red]below target in {shown}:[/] {', '.join(below)}", highlight=False)


@app.command()
def report(
    out: Annotated[Path | None, typer.Option(help="Folder of the site (default var/reports/quality).")] = None,
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Print the bulletin to PDF (headless Chromium).")]
    = True,
) -> None:
    """The auditor's quality report: a static site (overview, scorecards, trends, drill-down, 季度通报)."""
    from govlake.report import build_report

    try:
        result = build_report(out=out, pdf=pdf)
    except _known_errors() as exc:
        _fail(exc)
    console.print(f"quality report: {len(result.pages)} pages, {len(result.csv_files)} CSV files in "
                  f"{result.seconds:.1f}s; open [bold]{result.path}[/]", highlight=False, soft_wrap=True)
    if result.pdf:
        console.print(f"bulletin PDF: {result.pdf}", highlight=False, soft_wrap=True)
    for note in result.notes:
        console.print(f"note: {note}", style="dim", highlight=False, soft_wrap=True)


@app.command()
def rules(
    resource: Annotated[str | None, typer.Argument(help="Catalog resource code; every resource when omitted.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="The 双公示 rule pack as docs/rules.md.")] = False,
) -> None:
    """The quality rules: id, severity, Great Expectations class, Chinese and English description."""
    from govlake.quality import rule_listing, rules_markdown

    if markdown:
        typer.echo(rules_markdown(), nl=False)
        return
    try:
        listing = rule_listing(resource)
    except _known_errors() as exc:
        _fail(exc)
    if as_json:
        console.print_json(json.dumps(listing, ensure_ascii=False))
        return
    t = Table(title=f"quality rules of {resource or 'every resource'}")
    for col in (["resource"] if not resource else []) + ["id", "severity", "expectation", "说明", "description"]:
        t.add_column(col, no_wrap=col in ("resource", "id", "severity", "expectation"))
    for r in listing:
        t.add_row(*([r["resource"]] if not resource else []), r["id"], r["severity"], r["expectation"] or "—",
                  r["zh"], r["en"])
    console.print(t)


@catalog_app.command("validate")
def catalog_validate() -> None:
    """Check the catalog, credit_rules.yml and expectations/: every problem with its file and line."""
    from govlake.catalog import CatalogError, load_catalog
    from govlake.config import get_settings
    from govlake.credit._rules import load_credit_rules
    from govlake.quality import check_expectations

    settings = get_settings()
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
    if checkable is not None:
        problems.extend(check_expectations(checkable, settings.expectations_dir, skip=skip))
    if problems:
        for p in problems:
            err.print(p, highlight=False, markup=False, soft_wrap=True)
        if checkable is None:
            err.print(f"{settings.expectations_dir} not checked: departments, code lists and defaults must load first",
                      highlight=False, soft_wrap=True)
        err.print(f"{len(problems)} problem{'s' if len(problems) > 1 else ''} in the catalog", highlight=False)
        raise typer.Exit(1)
    console.print(f"catalog ok: {len(cat.resources)} resources, {len(cat.departments)} departments, "
                  f"{len(cat.code_lists)} code lists; expectations ok", highlight=False)


@catalog_app.command("search")
def catalog_search(
    text: Annotated[str, typer.Argument(help="Text in a resource code, a name (zh/en), an item or a department.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Find resources, data items and departments by code or name."""
    from govlake.catalog._browse import print_search, search
    from govlake.config import get_settings

    hits = search(get_settings(), text)
    if as_json:
        console.print_json(json.dumps(hits, ensure_ascii=False, default=str))
    else:
        print_search(console, hits, text)


@catalog_app.command("show")
def catalog_show(
    resource: Annotated[str, typer.Argument(help="Resource code, e.g. amr.enterprise.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """A resource: items, classification, authority, sharing, freshness, quality, lineage, conflicts."""
    from govlake.catalog._browse import BrowseError, print_show, show
    from govlake.config import get_settings

    try:
        info = show(get_settings(), resource)
    except BrowseError as exc:
        _fail(exc)
    if as_json:
        console.print_json(json.dumps(info, ensure_ascii=False, default=str))
    else:
        print_show(console, info)


@catalog_app.command("lineage")
def catalog_lineage(
    target: Annotated[str, typer.Argument(help="TABLE[.COLUMN]: gold.legal_entity.address, amr.enterprise, …")],
    upstream: Annotated[bool, typer.Option("--upstream", help="Only where it comes from.")] = False,
    downstream: Annotated[bool, typer.Option("--downstream", help="Only what it feeds.")] = False,
    indirect: Annotated[bool, typer.Option(help="Also follow columns that only decide a value.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Upstream and downstream of a table or column, down to the source files and database tables."""
    from govlake.catalog._browse import BrowseError, jsonable, lineage, print_lineage
    from govlake.config import get_settings

    settings = get_settings()
    both = upstream == downstream
    try:
        result = lineage(settings, target, upstream=upstream or both, downstream=downstream or both,
                         indirect=indirect)
    except BrowseError as exc:
        _fail(exc)
    if as_json:
        console.print_json(json.dumps(jsonable(result), ensure_ascii=False, default=str))
    else:
        print_lineage(console, settings, result)

if __name__ == "__main__":
    app()
