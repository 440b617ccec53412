"""``govlake open``: publish the de-identified open datasets (数据开放) under var/open/ (docs/open-data.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from govlake._literal import literal
from govlake.cli._main import HELD, Json, app, command


@app.command("open")
def open_(
    k: Annotated[int | None, typer.Option(min=2, help="k for every dataset (default: catalog/open_data.yml, 5).")]
    = None,
    as_json: Json = False,
) -> None:
    """Publish the open datasets the catalog's open_type allows: personal items out, quasi-identifiers
    generalized to k-anonymity, CSV + JSON + DCAT (JSON-LD) under var/open/. Exit 3 when a dataset is
    withheld (k not reachable)."""
    from govlake import pipeline

    with command("open", as_json=as_json) as ctx:
        result = pipeline.open_data(settings=ctx.settings, run_id=ctx.run_id, k=k)
        if ctx.json:
            ctx.emit({"run_id": result.run_id, "folder": result.folder, "catalog": result.catalog,
                      "datasets": [{key: getattr(d, key) for key in (
                          "dataset", "resource", "source_table", "status", "rows_in", "rows_out", "suppressed", "k",
                          "max_suppression", "quasi_identifiers", "generalization", "reason", "files")}
                          for d in result.datasets],
                      "closed": [{"resource": c.resource, "open_type": c.open_type, "reason": c.reason}
                                 for c in result.closed]})
        else:
            t = Table(title=literal(f"open data · run {result.run_id}"), title_justify="left")
            for col in ("dataset", "status", "rows in", "rows out", "suppressed", "k"):
                t.add_column(col, justify="left" if col in ("dataset", "status") else "right", no_wrap=True)
            for d in result.datasets:
                t.add_row(literal(d.dataset), literal((d.status, "green" if d.status == "published" else "red")),
                          str(d.rows_in), str(d.rows_out), str(d.suppressed), str(d.k))
            ctx.show(t)
            for d in result.datasets:
                levels = ", ".join(f"{c} → {level}" for c, level in d.generalization.items()) or "none"
                ctx.say(f"{d.dataset}: ", (levels, "dim"), wrap=True)
            for d in result.withheld:
                ctx.say((f"withheld {d.dataset}: ", "red"), d.reason or "", wrap=True)
            for c in result.closed:
                ctx.say(f"not opened: {c.resource} — {c.reason}", style="dim", wrap=True)
            ctx.say("catalog: ", (str(result.catalog), "bold"), wrap=True)
        if result.withheld:
            raise typer.Exit(HELD)
