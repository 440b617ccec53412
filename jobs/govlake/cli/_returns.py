"""``govlake return``: write each district's and department's return (回流, govlake.returns)."""

from __future__ import annotations

from govlake.cli._main import Json, app, command
from govlake.cli._progress import Activity


@app.command("return")
def return_(as_json: Json = False) -> None:
    """回流: per district and per department, what it may receive (masked) and its 整改清单, in var/returns/."""
    from govlake import pipeline
    from govlake.sharing import SharingInputError

    with command("return", as_json=as_json, known=(SharingInputError,)) as ctx:
        with Activity(ctx, "writing the returns"):
            summary = pipeline.returns(settings=ctx.settings, run_id=ctx.run_id)
        if ctx.json:
            ctx.emit({"run_id": ctx.run_id, "receivers": summary})
            return
        for receiver, r in summary.items():
            tables = ", ".join(f"{t} {n:,}" for t, n in r["tables"].items())
            ctx.say(f"{receiver} ({r['kind']}): {tables} → {r['file']}")
        ctx.say(f"{len(summary)} receivers; deliveries logged in meta/returns_log (run {ctx.run_id})")
