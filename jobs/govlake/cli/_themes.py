"""``govlake themes``: the theme libraries (主题库) declared in catalog/themes.yml, and building them."""

from __future__ import annotations

import typer
from rich.table import Table

from govlake._literal import literal
from govlake.cli._main import Json, app, command

themes_app = typer.Typer(help="Theme libraries (主题库, gold/theme/): list them, build the model-built ones.",
                         no_args_is_help=True)
app.add_typer(themes_app, name="themes")


@themes_app.command("list")
def list_(as_json: Json = False) -> None:
    """Every theme library of catalog/themes.yml: title, owner, what builds it, its tables and their rows."""
    from govlake import storage
    from govlake.themes import load_themes

    with command("themes", as_json=as_json) as ctx:
        libraries = []
        for lib in load_themes(ctx.settings):
            tables = {}
            for name in lib.tables:
                path = storage.table_path(ctx.settings, "gold", name)
                tables[name] = None if storage.open_table(path) is None else storage.row_count(path)
            libraries.append({"theme": lib.id, "title": lib.theme.title.zh, "title_en": lib.theme.title.en,
                              "owner": lib.theme.owner, "built_by": lib.theme.step or "models",
                              "inputs": list(lib.theme.inputs), "tables": tables})
        if ctx.json:
            ctx.emit({"themes": libraries})
            return
        t = Table(title="theme libraries (gold/theme/)", title_justify="left")
        for col in ("theme", "title", "owner", "built by", "table", "rows"):
            t.add_column(col, justify="right" if col == "rows" else "left")
        for lib in libraries:
            for i, (name, rows) in enumerate(lib["tables"].items()):
                first = i == 0
                t.add_row(literal(lib["theme"]) if first else "", literal(lib["title"]) if first else "",
                          literal(lib["owner"]) if first else "", literal(lib["built_by"]) if first else "",
                          literal(name), "not built" if rows is None else str(rows))
        ctx.show(t)


@themes_app.command()
def build(as_json: Json = False) -> None:
    """Run the models of every model-built theme library and overwrite its gold/theme/ tables (also part of
    `govlake run`, after the credit step)."""
    from govlake import pipeline

    with command("themes", as_json=as_json) as ctx:
        rows = pipeline.themes(settings=ctx.settings, run_id=ctx.run_id)
        if ctx.json:
            ctx.emit({"run_id": ctx.run_id, "tables": rows})
            return
        for name, n in rows.items():
            ctx.say(f"gold/theme/{name}: {n} rows")
        if not rows:
            ctx.say("no theme library is built from models (catalog/themes.yml)")
