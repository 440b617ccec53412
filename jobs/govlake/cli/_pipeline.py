"""``govlake ingest``, ``run`` and ``status``: land, process and look at the lake."""

from __future__ import annotations

import collections
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from govlake import pipeline
from govlake._literal import literal
from govlake.cli._context import RunContext
from govlake.cli._main import ERROR, HELD, OK, Json, UsageError, app, command, describe
from govlake.cli._progress import Activity

QUARANTINED_SHOWN = 20
"""Quarantined rows of the ingested files listed by ``ingest --file``."""


@dataclass
class _Outcome:
    """What ``govlake ingest`` did for one resource."""

    code: str
    result: Any = None
    """The IngestResult (also when a source was rejected), None when the resource failed."""
    problem: str | None = None
    processed: Any = None
    """The ProcessResult of ``--file`` with processing."""
    quarantined: list[dict] = field(default_factory=list)
    more: int = 0

    @property
    def failed(self) -> bool:
        return bool(self.problem or (self.result is not None and self.result.rejected))


@app.command()
def ingest(
    resource: Annotated[str | None, typer.Argument(help="Catalog resource code, e.g. credit.penalty.")] = None,
    file: Annotated[list[Path] | None, typer.Option("--file", help="Ingest this file (repeatable).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Ingest every resource from its source.")] = False,
    run: Annotated[bool, typer.Option("--run/--no-run", help="With --file: also standardize and validate.")] = True,
    full_scan: Annotated[bool, typer.Option("--full-scan", help="Database source: read the whole table, landing "
                                            "what bronze lacks (periodic reconciliation).")] = False,
    as_json: Json = False,
) -> None:
    """Land raw data in bronze; re-ingesting the same file or database window adds nothing.

    Every source is tried (a failing one does not stop the others). Exit code 1 when any file or
    window was rejected or a resource failed; with --file, 3 when processing held a batch; else 0.
    """
    from govlake.catalog import get_catalog

    with command("ingest", as_json=as_json) as ctx:
        if not resource and not all_:
            raise UsageError("name a RESOURCE or pass --all")
        catalog = get_catalog(ctx.settings.catalog_dir)
        codes = list(catalog.resources) if all_ else [catalog.resource(resource or "").code]
        # links are not resolved: ingest refuses them
        files = [Path(os.path.abspath(f)) for f in file] if file else None
        outcomes: list[_Outcome] = []
        with Activity(ctx, "ingest", total=len(codes) if all_ else None,
                      unit="resources" if all_ else "files") as activity:
            for code in codes:
                # with --all, --full-scan applies to the database sources only
                scan = full_scan and (not all_ or catalog.resource(code).source.kind == "db")
                outcome = _land(ctx, code, files, full_scan=scan, activity=activity)
                outcomes.append(outcome)
                _print_landing(ctx, outcome)
                if files and run and outcome.result is not None and not outcome.failed:
                    activity.doing(f"process {code}")
                    outcome.processed = pipeline.process(code, settings=ctx.settings, run_id=ctx.run_id)
                    _print_process(ctx, outcome.processed)
                    outcome.quarantined, outcome.more = _quarantined_rows(ctx, code, [str(f) for f in files])
                    _print_quarantined(ctx, outcome)
                if all_:
                    activity.done()
        if all_:
            _print_ingest_summary(ctx, outcomes)
        failed = sum(1 for o in outcomes if o.failed)
        held = [h for o in outcomes if o.processed is not None for h in o.processed.held_batches]
        code = ERROR if failed else (HELD if held else OK)
        if ctx.json:
            doc: dict[str, Any] = {"run_id": ctx.run_id, "resources": [_outcome_json(o) for o in outcomes],
                                   "exit_code": code}
            if failed:
                doc["error"] = f"{failed} of {len(outcomes)} resources with a rejected source or failed"
            ctx.emit(doc)
        if code == HELD:
            _say_held(ctx, held)
        raise typer.Exit(code)


def _land(ctx: RunContext, code: str, files: list[Path] | None, *, full_scan: bool, activity: Activity) -> _Outcome:
    activity.doing(code)
    try:
        return _Outcome(code, pipeline.ingest(code, files=files, full_scan=full_scan, settings=ctx.settings,
                                              run_id=ctx.run_id, on_source=activity.on_source))
    except Exception as exc:  # one failing source must not stop the others
        result = getattr(exc, "result", None)
        return _Outcome(code, result, _shorten(describe(exc), 2000) if result is None else None)


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _print_landing(ctx: RunContext, outcome: _Outcome) -> None:
    """One line per file or window (rejected ones on stderr), and the resource's failure."""
    for b in outcome.result.batches if outcome.result is not None else []:
        colour = {"landed": "green", "rejected": "red"}.get(b.status, "yellow")
        ctx.say(f"{outcome.code}: ", (b.status, colour), f" {b.rows} rows from {b.source}",
                f" ({b.encoding})" if b.encoding else "", f" — {b.error}" if b.error else "",
                error=b.status == "rejected")
    if outcome.problem:
        ctx.say(f"{outcome.code}: ", ("failed", "bold red"), f" — {outcome.problem}", error=True)


def _print_ingest_summary(ctx: RunContext, outcomes: list[_Outcome]) -> None:
    """One row per resource: landed / skipped / rejected sources, rows landed, the error."""
    t = Table(title="ingest --all")
    for col in ("resource", "landed", "skipped", "rejected", "rows", "error"):
        t.add_column(col, justify="right" if col in ("landed", "skipped", "rejected", "rows") else "left",
                     overflow="fold", no_wrap=col == "resource")
    for o in outcomes:
        batches = getattr(o.result, "batches", [])
        count = {s: sum(1 for b in batches if b.status == s) for s in ("landed", "skipped_already_ingested",
                                                                       "rejected")}
        rejected = [b.error or b.source for b in batches if b.status == "rejected"]
        errors = o.problem or (_shorten(rejected[0]) + (f" (+{len(rejected) - 1} more above)" if rejected[1:] else "")
                               if rejected else "")
        t.add_row(literal(o.code), str(count["landed"]), str(count["skipped_already_ingested"]),
                  literal((str(count["rejected"]), "red" if count["rejected"] else "")),
                  f"{getattr(o.result, 'rows', 0):,}", literal((errors, "red")))
    ctx.show(t)
    failed = sum(1 for o in outcomes if o.failed)
    ctx.say(f"{len(outcomes) - failed} of {len(outcomes)} resources without a rejected source"
            + (f"; {failed} with a rejected source or failed" if failed else ""))


def _outcome_json(o: _Outcome) -> dict[str, Any]:
    return {"resource": o.code, "rows": getattr(o.result, "rows", 0),
            "batches": [dataclasses.asdict(b) for b in getattr(o.result, "batches", [])], "error": o.problem,
            "processed": None if o.processed is None else dataclasses.asdict(o.processed),
            "quarantined_rows": o.quarantined, "quarantined_rows_not_listed": o.more}


def _print_process(ctx: RunContext, r) -> None:
    n = r.run
    held = f" + held {n.held}" if n.held else ""
    table_held = f" + held {r.held}" if r.held else ""
    rejected = f" + rejected {r.rejected}" if r.rejected else ""
    ctx.say(f"{r.resource}: this run read {n.rows} = new silver {n.silver} + quarantined {n.quarantined}"
            f" + duplicates {n.duplicates}{held}; tables: read {r.rows_read} = silver {r.silver} + "
            f"quarantined {r.quarantined} + duplicates {r.duplicates}{table_held}{rejected}", wrap=True)
    for rule, count in sorted(r.rule_failures.items(), key=lambda kv: -kv[1]):
        ctx.say(f"  quarantined by {rule}: {count}", wrap=True)
    for h in r.held_batches:
        ctx.say(f"  {h.describe()}", style="yellow", wrap=True)


def _quarantined_rows(ctx: RunContext, code: str, sources: list[str]) -> tuple[list[dict], int]:
    """The first quarantined rows of the given files (file, row, rules) and how many more there are."""
    import duckdb

    from govlake import storage
    from govlake.catalog import get_catalog

    path = storage.table_path(ctx.settings, "quarantine", get_catalog(ctx.settings.catalog_dir).resource(code).slug)
    table = storage.open_table(path)
    if table is None:
        return [], 0
    con = duckdb.connect()
    con.register("q", table.to_pyarrow_dataset())
    listed = ", ".join("'" + s.replace("'", "''") + "'" for s in sources)
    rows = con.execute(f"""select _source, _row_number, array_to_string(_failed_rules, ', ')
        from q where _source in ({listed}) order by _source, _row_number""").fetchall()
    shown = [{"source": s, "row": n, "rules": rules, "table": str(path)} for s, n, rules in rows[:QUARANTINED_SHOWN]]
    return shown, max(0, len(rows) - QUARANTINED_SHOWN)


def _print_quarantined(ctx: RunContext, outcome: _Outcome) -> None:
    """Each quarantined row of the ingested files as file:row and the rules it failed."""
    for q in outcome.quarantined:
        ctx.say(f"  {q['source']}:{q['row']}: {q['rules']}")
    if outcome.more:
        ctx.say(f"  … and {outcome.more} more rows in {outcome.quarantined[0]['table']}")


@app.command()
def run(
    rebuild: Annotated[bool, typer.Option(help="Reprocess all of bronze (after a rule or catalog change) "
                                               "instead of what is new since the last run.")] = False,
    as_json: Json = False,
) -> None:
    """Everything after ingest over what has landed: silver, quarantine, gold, credit, themes, extract.

    Exit code 3 when a batch was held (everything else was published), 1 on an error, else 0.
    """
    with command("run", as_json=as_json) as ctx:
        with Activity(ctx, "run", unit="steps") as activity:
            summary = pipeline.run(settings=ctx.settings, run_id=ctx.run_id, rebuild=rebuild,
                                   on_step=activity.on_step)
        held = [h for r in summary["resources"].values() for h in r.held_batches]
        code = HELD if held else OK
        if ctx.json:
            ctx.emit(_run_json(summary, code))
        for r in summary["resources"].values():
            _print_process(ctx, r)
        ctx.say(f"gold: {summary['gold']}", wrap=True)
        c = summary["credit"]
        ctx.say(f"credit (as of {c.as_of}{', rebuilt' if c.rebuilt else ''}): re-derived {c.rederived}; "
                f"withdrawn {c.withdrawn or 'none'}", wrap=True)
        ctx.say(f"themes: {summary['themes'] or 'none declared'}", wrap=True)
        ctx.say(f"extract: {summary['extract']}", wrap=True)
        if held:
            _say_held(ctx, held)
        raise typer.Exit(code)


def _run_json(summary: dict, code: int) -> dict[str, Any]:
    def data(value: Any) -> Any:
        return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value

    return {"run_id": summary["run_id"], "resources": {k: data(r) for k, r in summary["resources"].items()},
            "gold": summary["gold"], "credit": data(summary["credit"]), "themes": summary["themes"],
            "conflicts": data(summary["conflicts"]),
            "extract": summary["extract"], "kpi_values": summary["kpi_values"],
            "held_batches": [dataclasses.asdict(h) for r in summary["resources"].values() for h in r.held_batches],
            "exit_code": code}


def _say_held(ctx: RunContext, held: list) -> None:
    ctx.say(f"{len(held)} batch(es) held; nothing else was stopped. `govlake batches` lists them; "
            "`govlake batches reject|release ID --reason …` decides.", style="yellow", error=True, wrap=True)


@app.command()
def status(as_json: Json = False) -> None:
    """Tables with row counts, quarantine counts per rule, and the extract path."""
    from govlake.status import lake_status

    with command("status", as_json=as_json) as ctx:
        info = lake_status(ctx.settings)
        if ctx.json:
            ctx.emit(info)
            return
        _print_status(ctx, info)


def _print_status(ctx: RunContext, info: dict) -> None:
    t = Table(title=literal("govlake tables (Delta, under " + info["lake"] + ")"))
    for col in ("layer", "table", "rows", "version"):
        t.add_column(col, justify="right" if col in ("rows", "version") else "left")
    for row in info["tables"]:
        t.add_row(row["layer"], literal(row["table"]), f"{row['rows']:,}", str(row["version"]))
    ctx.show(t)
    q = Table(title="quarantined rows per rule")
    for col in ("table", "rule", "rows"):
        q.add_column(col, justify="right" if col == "rows" else "left")
    for row in info["quarantine_by_rule"]:
        q.add_row(literal(row["table"]), literal(row["rule"]), f"{row['rows']:,}")
    ctx.show(q)
    for row in info["reconciliation"]:
        mark = ("balanced", "green") if row["balanced"] else ("NOT balanced", "red")
        held = f" + held {row['held']:,}" if row["held"] else ""
        rejected = f" + rejected {row['rejected']:,}" if row["rejected"] else ""
        pending = f"; pending {row['pending']:,} (landed, not processed yet)" if row["pending"] else ""
        ctx.say(f"{row['resource']}: read {row['rows_read']:,} = silver {row['silver']:,} + quarantined "
                f"{row['quarantined']:,} + duplicates {row['duplicates']:,}{held}{rejected} ", mark, pending, wrap=True)
    for b in info["held_batches"]:
        ctx.say(("held: ", "yellow"), f"{b['resource']} batch {b['batch_id']} ({b['source']}): "
                f"{b['quarantined']:,} of {b['rows']:,} rows quarantined; {b['status']} — "
                "`govlake batches` to reject or release it", wrap=True)
    if info["open_alerts"]:
        alerts = info["open_alerts"]
        critical = sum(a["severity"] == "critical" for a in alerts)
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(collections.Counter(a["kind"] for a in alerts).items()))
        ctx.say(("alerts: ", "bold red" if critical else "yellow"),
                f"{len(alerts)} open or acknowledged ({critical} critical; {kinds}) — `govlake alerts list`", wrap=True)
    for i in info["interrupted_steps"]:
        ctx.say(f"interrupted: {i['step']} (run {i['run_id']}, {i['started_at']}); the next run of "
                "that step finishes it first", style="yellow", wrap=True)
    for name, holder in info["locks"].items():
        ctx.say(f"lock {name} held by {holder}", wrap=True)
    if info["fence"]:
        ctx.say(("fenced: ", "bold red"), info["fence"])
    ctx.say("analyst extract: ", (info["extract"] or "(not built yet)", "bold"), wrap=True)
