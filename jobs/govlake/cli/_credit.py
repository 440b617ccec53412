"""``govlake credit …``: the publicity regimes of catalog/credit_rules.yml and what changing one would do.

What is printed is masked: a subject's name unless 行政相对人类别 shows a legal entity; ID numbers never.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from govlake._literal import literal
from govlake.cli._main import Json, app, command

credit_app = typer.Typer(help="Public credit (双公示): publicity regimes (法规) and their impact.",
                         no_args_is_help=True)
app.add_typer(credit_app, name="credit")


@credit_app.command()
def regimes(as_json: Json = False) -> None:
    """The publicity regimes: id, dates, classes (轻微/一般/严重) with their periods, and sources."""
    from govlake.credit import load_credit_rules, regime_listing

    with command("credit", as_json=as_json) as ctx:
        listing = regime_listing(load_credit_rules(ctx.settings.catalog_dir))
        if ctx.json:
            ctx.emit(listing)
            return
        for r in listing:
            until = r["until"] or "open"
            t = Table(title=literal(f"{r['id']}: {r['name']} — decided {r['effective_from']} … {until} "
                                    f"(by {r['regime_date']})"))
            for col in ("class", "when", "months", "published", "source"):
                t.add_column(col, no_wrap=col in ("class", "months", "published"))
            for c in r["classes"]:
                t.add_row(*(literal(v) for v in (c["class"], c["when"], f"{c['min_months']}–{c['max_months']}",
                                                  "yes" if c["published"] else "no", c["source"])))
            ctx.show(t)
            for note in r["notes"]:
                ctx.say(f"  {note}", wrap=True)


@credit_app.command()
def impact(
    regime: Annotated[str, typer.Option("--regime", help="The regime id (see `govlake credit regimes`).")],
    as_json: Json = False,
) -> None:
    """The penalty records whose publication end or status would change under --regime instead of
    the regime their decision date chooses, judged on the business date; nothing is written."""
    from govlake.credit import regime_impact
    from govlake.gold import GoldError

    with command("credit", as_json=as_json, known=(GoldError,)) as ctx:
        rows = regime_impact(ctx.settings, regime, ctx.as_of)
        if ctx.json:
            ctx.emit(rows)
            return
        t = Table(title=literal(f"records {regime} would change, judged on {ctx.as_of} ({len(rows)})"))
        for col in ("decision", "authority", "subject", "decided", "now", "under " + regime, "rules that differ"):
            t.add_column(col)
        for r in rows:
            t.add_row(*(literal(v) for v in (
                r["decision_no"], r["authority_uscc"], r["subject"] or r["uscc"] or "", r["decision_date"],
                f"{r['regime']} {r['severity']} {r['publicity_status']} until {r['publish_end']}",
                f"{r['new_severity']} {r['new_publicity_status']} until {r['new_publish_end']}",
                "; ".join(r["rules"]))))
        ctx.show(t)
