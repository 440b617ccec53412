"""``govlake batches``: list held batches, reject or release one (who, when and why recorded)."""

from __future__ import annotations

from typing import Annotated

import typer

from govlake.cli._context import RunContext
from govlake.cli._main import Json, app, command

batches_app = typer.Typer(help="Held batches: a file or database window over its blocking limit.",
                          invoke_without_command=True)
app.add_typer(batches_app, name="batches")


@batches_app.callback()
def batches(
    invoked: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Also batches already rejected or published.")] = False,
    as_json: Json = False,
) -> None:
    """List held batches (file, rows, the rules that blocked them); reject or release one."""
    if invoked.invoked_subcommand is not None:
        return
    from govlake.quality import BATCH_HELD, BATCH_RELEASED, batch_states

    with command("batches", as_json=as_json) as ctx:
        shown = [b for b in batch_states(ctx.settings) if all_ or b.status in (BATCH_HELD, BATCH_RELEASED)]
        if ctx.json:
            ctx.emit([vars(b) for b in shown])
            return
        _print_batches(ctx, shown)


def _print_batches(ctx: RunContext, shown: list) -> None:
    from govlake.quality import BATCH_HELD

    if not shown:
        ctx.say("no held batches", wrap=True)
        return
    for b in shown:
        limit = f", limit {b.limit_rate:.0%}" if b.limit_rate is not None else ""
        ctx.say((b.batch_id, "bold"), f"  {b.resource}  {b.status} (held {b.held_at or b.at:%Y-%m-%d %H:%M})  "
                f"{b.rows:,} rows, {b.quarantined:,} quarantined{limit}", wrap=True)
        ctx.say(f"  file: {b.source}")
        for r in b.rules[:5]:
            ctx.say(f"  rule {r['rule']}: {r['rows']:,} rows (first: row {r['first_row']})", wrap=True)
        if b.status != BATCH_HELD:
            ctx.say(f"  decided by {b.actor}: {b.reason}")
    ctx.say("reject: govlake batches reject ID --reason …   release: govlake batches release ID --reason …", wrap=True)


def _decide(batch_id: str, decision: str, reason: str, by: str | None, *, as_json: bool) -> None:
    from govlake.quality import decide_batch

    with command("batches", as_json=as_json) as ctx:
        b = decide_batch(ctx.settings, batch_id, decision=decision, reason=reason, by=by, run_id=ctx.run_id)
        if ctx.json:
            ctx.emit(vars(b))
            return
        what = ("its rows are accounted for as rejected; bronze keeps them" if decision == "rejected"
                else "the next `govlake run` (or the feed's process task) publishes it")
        ctx.say(f"batch {b.batch_id} ({b.resource}, {b.source}, {b.rows:,} rows) {decision} by {b.actor}: {what}",
                wrap=True)


@batches_app.command("reject")
def batches_reject(
    batch_id: Annotated[str, typer.Argument(help="The batch id (or its first characters).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is set aside (recorded).")],
    by: Annotated[str | None, typer.Option("--by", help="Who decides (default GOVLAKE_ACTOR or the login).")] = None,
    as_json: Json = False,
) -> None:
    """Set a held batch aside: its rows count as rejected; nothing is deleted from bronze."""
    _decide(batch_id, "rejected", reason, by, as_json=as_json)


@batches_app.command("release")
def batches_release(
    batch_id: Annotated[str, typer.Argument(help="The batch id (or its first characters).")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is published anyway (recorded).")],
    by: Annotated[str | None, typer.Option("--by", help="Who decides (default GOVLAKE_ACTOR or the login).")] = None,
    as_json: Json = False,
) -> None:
    """Publish a held batch anyway: the next process run takes it without judging it again."""
    _decide(batch_id, "released", reason, by, as_json=as_json)
