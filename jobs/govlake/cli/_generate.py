"""``govlake generate``: a sample city's departmental exports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from govlake._literal import literal
from govlake.cli._main import Json, app, command
from govlake.cli._progress import Activity


@app.command()
def generate(
    out: Annotated[Path | None, typer.Option(help="Folder for the departments' exports (default var/city).")] = None,
    scale: Annotated[int, typer.Option(help="Approximate total rows across all resources.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 42,
    defect_rate: Annotated[float, typer.Option(help="Share of rows given each kind of defect.")] = 0.03,
    only: Annotated[str | None, typer.Option(help="Write just this resource (e.g. credit.penalty).")] = None,
    rows: Annotated[int | None, typer.Option(help="With --only: exactly this many rows.")] = None,
    as_json: Json = False,
) -> None:
    """Write a sample city's departmental exports (CSV GBK/UTF-8, XLSX, JSON lines, a database)."""
    from govlake.generate import generate_city, record_business_date

    with command("generate", as_json=as_json) as ctx:
        target = out or ctx.settings.city
        with Activity(ctx, f"generating a sample city in {target}"):
            manifest = generate_city(target, scale=scale, seed=seed, defect_rate=defect_rate, only=only, rows=rows)
        recorded = record_business_date(ctx.settings, target, manifest.as_of)
        if ctx.json:
            ctx.emit({"out": target, "manifest": target / "manifest.json",
                      "resources": {code: {"files": len(info.files), "rows": info.rows,
                                           "invalid_rows": info.invalid_rows}
                                    for code, info in manifest.resources.items()},
                      "skipped": manifest.skipped, "business_date": recorded})
            return
        t = Table(title=literal(f"sample city in {target}"))
        for col in ("resource", "files", "rows", "rows with an invalid defect"):
            t.add_column(col, justify="left" if col == "resource" else "right")
        for code, info in manifest.resources.items():
            t.add_row(literal(code), str(len(info.files)), f"{info.rows:,}", f"{info.invalid_rows:,}")
        ctx.show(t)
        for code, note in manifest.skipped.items():
            ctx.say(f"{code}: skipped, {note}")
        ctx.say(f"every injected defect is listed in {target / 'manifest.json'}")
        ctx.say(recorded)
