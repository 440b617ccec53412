"""The ``govlake`` command line: generate a city, ingest, run the pipeline, show what was built."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from govlake._literal import literal

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
    from govlake.locks import LockBusy
    from govlake.quality import BatchError, QualityError
    from govlake.steps import RecoveryError
    from govlake.transform import ModelError

    errors: list[type[Exception]] = [SettingsError, CatalogError, QualityError, KeyError, FileNotFoundError,
                                     LockBusy, RecoveryError, BatchError, ModelError]
    try:
        from govlake.ingest import IngestError

        errors.append(IngestError)
    except ImportError:
        pass
    return tuple(errors)


def _fail(exc: Exception) -> None:
    """Print ``error: …`` literally (no markup, no traceback) and exit: 2 for a bad setting, 1 otherwise."""
    from govlake.config import SettingsError

    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    first, *rest = str(message).split("\n")
    err.print(literal(("error: ", "bold red"), first), soft_wrap=True)
    for line in rest:
        err.print(literal(line), soft_wrap=True)
    raise typer.Exit(2 if isinstance(exc, SettingsError) else 1)


@app.callback()
def _settings_first() -> None:
    from govlake.config import SettingsError, get_settings
    from govlake.engine import get_engine

    try:
        get_engine(get_settings())
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
    for code, note in manifest.skipped.items():
        console.print(literal(f"{code}: skipped, {note}"), soft_wrap=True)
    console.print(f"every injected defect is listed in {target / 'manifest.json'}", soft_wrap=True)


@app.command()
def ingest(
    resource: Annotated[str | None, typer.Argument(help="Catalog resource code, e.g. credit.penalty.")] = None,
    file: Annotated[list[Path] | None, typer.Option("--file", help="Ingest this file (repeatable).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Ingest every resource from its source.")] = False,
    run: Annotated[bool, typer.Option("--run/--no-run", help="With --file: also standardize and validate.")] = True,
    full_scan: Annotated[bool, typer.Option("--full-scan", help="Database source: read the whole table, landing "
                                            "what bronze lacks (periodic reconciliation).")] = False,
) -> None:
    """Land raw data in bronze; re-ingesting the same file or database window adds nothing.

    Every source is tried (a failing one does not stop the others); the exit code is 1 when any
    file or window was rejected or a resource failed, 0 otherwise.
    """
    from govlake import pipeline
    from govlake.catalog import get_catalog

    if not resource and not all_:
        _fail(ValueError("name a RESOURCE or pass --all"))
    try:
        catalog = get_catalog()
        codes = list(catalog.resources) if all_ else [catalog.resource(resource or "").code]
    except _known_errors() as exc:
        _error(exc)
    files = [Path(os.path.abspath(f)) for f in file] if file else None  # links are not resolved: ingest refuses them
    outcomes: list[tuple[str, object, str | None]] = []
    for code in codes:
        result, problem = None, None
        try:
            # with --all, --full-scan applies to the database sources only
            scan = full_scan and (not all_ or catalog.resource(code).source.kind == "db")
            result = pipeline.ingest(code, files=files, full_scan=scan)
        except Exception as exc:  # one failing source must not stop the others
            result = getattr(exc, "result", None)
            problem = _shorten(_message(exc), 2000) if result is None else None
        outcomes.append((code, result, problem))
        for b in result.batches if result is not None else []:
            colour = {"landed": "green", "rejected": "red"}.get(b.status, "yellow")
            line = literal(f"{code}: ", (b.status, colour), f" {b.rows} rows from {b.source}",
                           f" ({b.encoding})" if b.encoding else "", f" — {b.error}" if b.error else "")
            (err if b.status == "rejected" else console).print(line, soft_wrap=True)
        if problem:
            err.print(literal(f"{code}: ", ("failed", "bold red"), f" — {problem}"), soft_wrap=True)
        if files and run and result is not None and not result.rejected and problem is None:
            try:
                _print_process(pipeline.process(code))
                _print_rejected_rows(code, [str(f) for f in files])
            except _known_errors() as exc:
                _error(exc)
    if all_:
        _print_ingest_summary(outcomes)
    if any(problem or (result is not None and result.rejected) for _, result, problem in outcomes):
        raise typer.Exit(1)


def _message(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    known = isinstance(exc, _known_errors())
    return str(text) if known else f"{type(exc).__name__}: {text}"


def _error(exc: BaseException) -> NoReturn:
    """Print ``exc`` as data (no markup, control characters escaped) and exit 1."""
    err.print(literal(("error:", "bold red"), " ", _message(exc)), soft_wrap=True)
    raise typer.Exit(1)


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _print_ingest_summary(outcomes: list[tuple[str, object, str | None]]) -> None:
    """One row per resource: landed / skipped / rejected sources, rows landed, the error."""
    t = Table(title="ingest --all")
    for col in ("resource", "landed", "skipped", "rejected", "rows", "error"):
        t.add_column(col, justify="right" if col in ("landed", "skipped", "rejected", "rows") else "left",
                     overflow="fold", no_wrap=col == "resource")
    for code, result, problem in outcomes:
        batches = getattr(result, "batches", [])
        count = {s: sum(1 for b in batches if b.status == s) for s in ("landed", "skipped_already_ingested",
                                                                       "rejected")}
        rejected = [b.error or b.source for b in batches if b.status == "rejected"]
        errors = problem or (_shorten(rejected[0]) + (f" (+{len(rejected) - 1} more above)" if rejected[1:] else "")
                             if rejected else "")
        t.add_row(literal(code), str(count["landed"]), str(count["skipped_already_ingested"]),
                  literal((str(count["rejected"]), "red" if count["rejected"] else "")),
                  f"{getattr(result, 'rows', 0):,}", literal((errors, "red")))
    console.print(t)
    failed = sum(1 for _, r, p in outcomes if p or (r is not None and r.rejected))
    console.print(literal(f"{len(outcomes) - failed} of {len(outcomes)} resources without a rejected source"
                          + (f"; {failed} with a rejected source or failed" if failed else "")), soft_wrap=True)


def _print_process(r) -> None:
    n = r.run
    held = f" + held {n.held}" if n.held else ""
    table_held = f" + held {r.held}" if r.held else ""
    rejected = f" + rejected {r.rejected}" if r.rejected else ""
    console.print(Text(f"{r.resource}: this run read {n.rows} = new silver {n.silver} + quarantined {n.quarantined}"
                       f" + duplicates {n.duplicates}{held}; tables: read {r.rows_read} = silver {r.silver} + "
                       f"quarantined {r.quarantined} + duplicates {r.duplicates}{table_held}{rejected}"))
    for rule, n in sorted(r.rule_failures.items(), key=lambda kv: -kv[1]):
        console.print(Text(f"  quarantined by {rule}: {n}"))
    for h in r.held_batches:
        console.print(Text(f"  {h.describe()}", style="yellow"))


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
        console.print(literal(f"  {source}:{row}: {rules}"), soft_wrap=True)
    if len(rows) > limit:
        console.print(literal(f"  … and {len(rows) - limit} more rows in {path}"), soft_wrap=True)


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
    console.print(f"gold: {summary['gold']}", highlight=False)
    c = summary["credit"]
    console.print(f"credit (as of {c.as_of}{', rebuilt' if c.rebuilt else ''}): re-derived {c.rederived}; "
                  f"withdrawn {c.withdrawn or 'none'}", highlight=False)
    console.print(f"extract: {summary['extract']}", highlight=False)
    _exit_if_held(summary["resources"].values())


HELD_EXIT = 3
"""Exit code of a run that published everything else but held a batch (see ``govlake batches``)."""


def _exit_if_held(results) -> None:
    held = [h for r in results for h in r.held_batches]
    if held:
        err.print(Text(f"{len(held)} batch(es) held; nothing else was stopped. `govlake batches` lists them; "
                       "`govlake batches reject|release ID --reason …` decides.", style="yellow"))
        raise typer.Exit(HELD_EXIT)


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
        held = f" + held {row['held']:,}" if row["held"] else ""
        rejected = f" + rejected {row['rejected']:,}" if row["rejected"] else ""
        pending = f"; pending {row['pending']:,} (landed, not processed yet)" if row["pending"] else ""
        console.print(f"{row['resource']}: read {row['rows_read']:,} = silver {row['silver']:,} + quarantined "
                      f"{row['quarantined']:,} + duplicates {row['duplicates']:,}{held}{rejected} {mark}"
                      f"{pending}", highlight=False)
    for b in info["held_batches"]:
        console.print(Text.assemble(("held: ", "yellow"), f"{b['resource']} batch {b['batch_id']} ({b['source']}): "
                                    f"{b['quarantined']:,} of {b['rows']:,} rows quarantined; {b['status']} — "
                                    "`govlake batches` to reject or release it"))
    for i in info["interrupted_steps"]:
        console.print(Text(f"interrupted: {i['step']} (run {i['run_id']}, {i['started_at']}); the next run of "
                           "that step finishes it first", style="yellow"))
    for name, holder in info["locks"].items():
        console.print(Text(f"lock {name} held by {holder}"))
    if info["fence"]:
        console.print(literal(("fenced: ", "bold red"), info["fence"]), soft_wrap=True)
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


@catalog_app.command("list")
def catalog_list(
    dags: Annotated[bool, typer.Option("--dags", help="Only the feed DAG ids (feed_<slug>), one a line.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every resource: code, name, provider, update cycle, source kind; or its feed DAG ids (dags/feeds.py)."""
    from govlake.catalog import get_catalog

    resources = sorted(get_catalog().resources.values(), key=lambda r: r.code)
    rows = [{"code": r.code, "name": r.name, "provider": r.provider, "update_cycle": r.update_cycle,
             "source": r.source.kind, "dag_id": f"feed_{r.slug}"} for r in resources]
    if dags:
        for row in rows:
            typer.echo(row["dag_id"])
    elif as_json:
        console.print_json(json.dumps(rows, ensure_ascii=False))
    else:
        t = Table(title=f"{len(rows)} resources (feed DAG: feed_<code with . as _>)")
        columns = {"code": "code", "name": "name", "provider": "provider", "update_cycle": "cycle", "source": "source"}
        for header in columns.values():
            t.add_column(header, no_wrap=header == "code")
        for row in rows:
            t.add_row(*(literal(row[c]) for c in columns))
        console.print(t)


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

batches_app = typer.Typer(help="Held batches: a file or database window over its blocking limit.",
                          invoke_without_command=True)
app.add_typer(batches_app, name="batches")


@batches_app.callback()
def batches(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Also batches already rejected or published.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List held batches (file, rows, the rules that blocked them); reject or release one."""
    if ctx.invoked_subcommand is not None:
        return
    from govlake.config import get_settings
    from govlake.quality import _batches

    shown = [b for b in _batches.states(get_settings())
             if all_ or b.status in (_batches.HELD, _batches.RELEASED)]
    if as_json:
        typer.echo(json.dumps([vars(b) for b in shown], ensure_ascii=False, default=str, indent=2))
        return
    if not shown:
        console.print("no held batches")
        return
    for b in shown:
        limit = f", limit {b.limit_rate:.0%}" if b.limit_rate is not None else ""
        console.print(Text.assemble((b.batch_id, "bold"), f"  {b.resource}  {b.status} (held "
                                    f"{b.held_at or b.at:%Y-%m-%d %H:%M})  {b.rows:,} rows, {b.quarantined:,} "
                                    f"quarantined{limit}"))
        console.print(Text(f"  file: {b.source}"), soft_wrap=True)
        for r in b.rules[:5]:
            console.print(Text(f"  rule {r['rule']}: {r['rows']:,} rows (first: row {r['first_row']})"))
        if b.status != _batches.HELD:
            console.print(Text(f"  decided by {b.actor}: {b.reason}"), soft_wrap=True)
    console.print("reject: govlake batches reject ID --reason …   release: govlake batches release ID --reason …",
                  highlight=False)


def _decide(batch_id: str, decision: str, reason: str, by: str | None) -> None:
    from govlake.config import get_settings
    from govlake.pipeline import new_run_id
    from govlake.quality import decide_batch

    try:
        b = decide_batch(get_settings(), batch_id, decision=decision, reason=reason, by=by,
                         run_id=new_run_id("batches"))
    except _known_errors() as exc:
        _fail(exc)
    what = ("its rows are accounted for as rejected; bronze keeps them" if decision == "rejected"
            else "the next `govlake run` (or the feed's process task) publishes it")
    console.print(Text(f"batch {b.batch_id} ({b.resource}, {b.source}, {b.rows:,} rows) {decision} by {b.actor}: "
                       f"{what}"))


@batches_app.command("reject")
def batches_reject(
    batch_id: Annotated[str, typer.Argument(help="The batch id (or its first characters).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is set aside (recorded).")],
    by: Annotated[str | None, typer.Option("--by", help="Who decides (default GOVLAKE_ACTOR or the login).")] = None,
) -> None:
    """Set a held batch aside: its rows count as rejected; nothing is deleted from bronze."""
    _decide(batch_id, "rejected", reason, by)


@batches_app.command("release")
def batches_release(
    batch_id: Annotated[str, typer.Argument(help="The batch id (or its first characters).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is published anyway (recorded).")],
    by: Annotated[str | None, typer.Option("--by", help="Who decides (default GOVLAKE_ACTOR or the login).")] = None,
) -> None:
    """Publish a held batch anyway: the next process run takes it without judging it again."""
    _decide(batch_id, "released", reason, by)


# ---- backup, restore, drill, vacuum (govlake.backup; docs/operations.md) --------------------------


def _backup_errors() -> tuple[type[Exception], ...]:
    from govlake.backup import BackupError

    return (BackupError, OSError, *_known_errors())


def _say(text: str, *, error: bool = False) -> None:
    """One line of a backup command's output, never wrapped (paths stay whole)."""
    (err if error else console).print(literal(text, style="red" if error and not text.startswith(" ") else ""),
                                      soft_wrap=True)


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 100_000 else f"{n / 1e3:,.1f} kB"


@app.command()
def backup(
    to: Annotated[Path, typer.Option("--to", help="Backup folder (created when absent); files an earlier backup "
                                                 "there holds are not copied again.")],
) -> None:
    """Back the whole lake up at one consistent cut: every Delta table, lake/_steps and the extract."""
    from govlake.backup import take_backup
    from govlake.config import get_settings

    try:
        r = take_backup(get_settings(), to=to)
    except _backup_errors() as exc:
        _fail(exc)
    m = r.manifest
    _say(f"backup {m.backup_id} (cut {m.cut}): {len(m.tables)} tables, {m.rows:,} rows; copied {r.copied} files "
         f"({_size(r.copied_bytes)}), reused {r.reused} files ({_size(r.reused_bytes)}) in {r.seconds:.1f}s; "
         f"manifest {r.path}")


def _as_of(text: str):
    import datetime as dt

    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        _fail(ValueError(f"--as-of {text!r}: expected an ISO time such as 2026-11-20T09:30:00+08:00"))
    return moment if moment.tzinfo else moment.astimezone()


@app.command()
def restore(
    source: Annotated[Path | None, typer.Option("--from", help="Backup folder to restore from.")] = None,
    backup_id: Annotated[str | None, typer.Option("--backup", help="With --from: this backup (default the latest).")]
    = None,
    table: Annotated[list[str] | None, typer.Option("--table", help="With --from: only this table (e.g. "
                     "silver/credit_penalty) and what depends on it; repeatable.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Delta time travel to this ISO time (local time "
                     "without a zone) inside the retention window.")] = None,
    resume_: Annotated[bool, typer.Option("--resume", help="Finish a restore that was interrupted.")] = False,
) -> None:
    """Bring the lake back: the whole lake or some tables from a backup, or the lake as of a time."""
    from govlake import backup as bk
    from govlake.config import get_settings

    if sum((source is not None, as_of is not None, resume_)) != 1:
        _fail(ValueError("give one of --from DIR, --as-of TIME or --resume"))
    if source is None and (table or backup_id):
        _fail(ValueError("--table and --backup go with --from DIR"))
    settings = get_settings()
    try:
        if resume_:
            result = bk.resume(settings)
            if result is None:
                console.print("no interrupted restore to finish")
                return
        elif as_of is not None:
            result = bk.restore_as_of(settings, moment=_as_of(as_of))
        elif table:
            result = bk.restore_tables(settings, source=source, tables=table, backup_id=backup_id)
        else:
            result = bk.restore_lake(settings, source=source, backup_id=backup_id)
    except _backup_errors() as exc:
        if bk.read_fence(settings) is not None:
            exc = RuntimeError(f"{exc}. The restore was interrupted: `govlake restore --resume` finishes it")
        _fail(exc)
    what = {"whole": "the whole lake", "table": "tables", "as-of": "the lake"}[result.kind]
    source_text = f"backup {result.backup_id}" if result.backup_id else "time travel"
    checked = f", {result.files} files ({_size(result.bytes)}) checked" if result.files else ""
    _say(f"restored {what} to {result.cut:%Y-%m-%d %H:%M:%S} UTC from {source_text}: {len(result.tables)} tables"
         f"{checked} in {result.seconds:.1f}s")
    if result.kind != "whole" and result.tables:
        _say("  " + ", ".join(result.tables))
    if result.aside_dir is not None:
        _say(f"set aside (never deleted; remove it when no longer needed): {result.aside_dir}")
    for note in result.notes:
        _say(f"note: {note}")
    console.print("next: `govlake ingest --all` and `govlake run` carry on from the restored state")


@app.command()
def drill(
    source: Annotated[Path, typer.Option("--from", help="Backup folder.")],
    backup_id: Annotated[str | None, typer.Option("--backup", help="This backup (default the latest).")] = None,
    scratch: Annotated[Path | None, typer.Option(help="Folder for the scratch lake (default the system's temp).")]
    = None,
    keep: Annotated[bool, typer.Option(help="Leave the scratch lake in place.")] = False,
) -> None:
    """Restore drill (灾备演练): restore a backup into scratch, check every file and table, record it."""
    from govlake.backup import run_drill
    from govlake.config import get_settings

    try:
        r = run_drill(get_settings(), source=source, backup_id=backup_id, scratch=scratch, keep=keep)
    except _backup_errors() as exc:
        _fail(exc)
    m = r.manifest
    what = f"backup {m.backup_id} (cut {m.cut})" if m else str(r.backup_dir)
    counts = (f"{r.tables} tables, {r.rows:,} rows, {r.files} files ({_size(r.bytes)}) restored and checked "
              f"in {r.seconds:.1f}s")
    if r.scratch:
        _say(f"scratch lake kept at {r.scratch}")
    if r.passed:
        _say(f"drill {r.drill_id} of {what}: passed — {counts}; recorded in meta/drills")
        return
    _say(f"drill {r.drill_id} of {what}: FAILED — {counts}; recorded in meta/drills", error=True)
    for problem in r.problems:
        _say(f"  {problem}", error=True)
    raise typer.Exit(1)


@app.command()
def vacuum(
    retain_hours: Annotated[int, typer.Option(help="Keep every file a version of the last H hours needs.")] = 168,
    force: Annotated[bool, typer.Option(help="Allow --retain-hours below the safe minimum (24).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Only list what would be deleted.")] = False,
    compact: Annotated[bool, typer.Option(help="Also compact the meta tables' small files, checkpoint every table "
                                               "and drop old log entries of gold and meta.")] = False,
) -> None:
    """Delete files no version inside the retention window needs (open intents' versions are kept)."""
    from govlake.backup import vacuum as run_vacuum
    from govlake.config import get_settings

    try:
        r = run_vacuum(get_settings(), retain_hours=retain_hours, force=force, dry_run=dry_run, compact=compact)
    except _backup_errors() as exc:
        _fail(exc)
    verb = "would remove" if r.dry_run else "removed"
    for table, (files, size) in sorted(r.removed.items()):
        _say(f"{table}: {verb} {files} files ({_size(size)})")
    for table, (removed, added) in sorted(r.compacted.items()):
        _say(f"{table}: compacted {removed} files into {added}")
    for table, versions in sorted(r.kept_pinned.items()):
        _say(f"{table}: kept versions {', '.join(map(str, versions))} (an interrupted step reads them)")
    for note in r.notes:
        _say(f"note: {note}")
    _say(f"vacuum (retain {r.retain_hours} h): {verb} {r.files} files ({_size(r.bytes)}) in {r.seconds:.1f}s")


def _unexpected(exc: BaseException) -> None:
    from govlake.masking import scrub_text

    text = " ".join(str(exc).split())
    if "No space left on device" in text or "os error 28" in text or getattr(exc, "errno", None) == 28:
        err.print(literal(("error: ", "bold red"), "no space left on device. Free space under GOVLAKE_VAR "
                          "(var/work holds DuckDB spill files; `govlake vacuum` removes old table versions) and "
                          "run the same command again: a step interrupted here is finished by its next run, "
                          "nothing written twice."), soft_wrap=True)
        err.print(literal(f"  ({type(exc).__name__}: {scrub_text(text[:500])})"), soft_wrap=True)
        return
    err.print(literal(("error: ", "bold red"), f"{type(exc).__name__}: {scrub_text(text[:1000])}"), soft_wrap=True)
    err.print(literal("  unexpected: run again with GOVLAKE_DEBUG=1 for the traceback and report it; a step "
                      "interrupted here is finished by its next run"), soft_wrap=True)


def main() -> None:
    """The console script: run the app, then leave without interpreter teardown.

    Native thread pools (delta-rs, Arrow, DuckDB) can abort the process at interpreter exit
    ("terminate called without an active exception", exit 134) after all work is done, which would
    turn a success into a failure. Output is flushed, logging shut down, and the exit code passed
    to ``os._exit`` as the command decided it.

    An error no command expected is printed as one line (ID and mobile numbers masked) with exit
    code 1 — a full disk with what to do about it — and its traceback only with GOVLAKE_DEBUG=1.
    """
    import contextlib
    import logging
    import os
    import sys

    code = 0
    try:
        app(standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:  # noqa: BLE001 — the last line of defence: one clear line, a true exit code
        if os.environ.get("GOVLAKE_DEBUG"):
            raise
        code = 1
        _unexpected(exc)
    finally:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed pipe must not change the exit code
                stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
