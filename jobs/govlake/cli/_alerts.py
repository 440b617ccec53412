"""``govlake alerts``: check (detect, store, notify), list, ack and resolve alerts (who, when and why recorded)."""

from __future__ import annotations

from typing import Annotated

import typer

from govlake.cli._context import RunContext
from govlake.cli._main import ERROR, Json, app, command

alerts_app = typer.Typer(help="Alerts: late feeds, volume drops, held batches, failed reconciliations, late 双公示 "
                              "records, failed Airflow tasks.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")

By = Annotated[str, typer.Option("--by", help="Who acts (recorded).")]
Why = Annotated[str, typer.Option("--why", help="Why (recorded).")]


@alerts_app.command("check")
def alerts_check(as_json: Json = False) -> None:
    """Find what is wrong now, store it as alerts (one per condition) and send the new ones to every channel.

    Exit code 1 when a channel failed to take an alert (it is stored, the failure recorded, and the next
    check sends it again); 0 otherwise, open alerts or not.
    """
    from govlake.alerts import check

    with command("alerts", as_json=as_json) as ctx:
        result = check(ctx.settings, run_id=ctx.run_id)
        if ctx.json:
            ctx.emit({"raised": [vars(a) for a in result.raised], "seen": [a.alert_id for a in result.seen],
                      "resolved": [a.alert_id for a in result.resolved], "channels": result.channels,
                      "deliveries": [vars(d) for d in result.deliveries],
                      "open": [a.alert_id for a in result.open]})
        else:
            _print_check(ctx, result)
    if result.failed:
        raise typer.Exit(ERROR)


def _print_check(ctx: RunContext, result) -> None:
    ctx.say(f"{len(result.raised)} new, {len(result.seen)} still present, {len(result.resolved)} cleared; "
            f"{len(result.open)} open or acknowledged", wrap=True)
    for a in result.raised:
        ctx.say((a.alert_id, "bold"), f"  {a.severity}  {a.message_zh}", wrap=True)
        ctx.say(f"  {a.message_en}", wrap=True)
    for a in result.resolved:
        ctx.say(f"cleared {a.alert_id}: {a.message_en}", wrap=True)
    sent = [d for d in result.deliveries if d.ok]
    if sent:
        ctx.say(f"sent {len(sent)}: " + ", ".join(sorted({f'{d.channel} ({d.target})' for d in sent})), wrap=True)
    for d in result.failed:
        ctx.say(f"{d.channel} ({d.target}) did not take {d.alert_id}: {d.error} — stored; the next check sends it "
                "again", error=True, wrap=True)
    if not result.channels and result.raised:
        ctx.say("no alert channel is configured (GOVLAKE_ALERT_WEBHOOK_URL, GOVLAKE_ALERT_SMTP_HOST): the alerts are "
                "stored only; `govlake alerts list` shows them", error=True, wrap=True)


@alerts_app.command("list")
def alerts_list(
    all_: Annotated[bool, typer.Option("--all", help="Also resolved alerts.")] = False,
    as_json: Json = False,
) -> None:
    """Open and acknowledged alerts (with --all, resolved ones too), critical first."""
    from govlake.alerts import LIVE, list_alerts

    with command("alerts", as_json=as_json) as ctx:
        shown = list_alerts(ctx.settings, states=None if all_ else LIVE)
        if ctx.json:
            ctx.emit([vars(a) for a in shown])
            return
        if not shown:
            ctx.say("no open alerts" if not all_ else "no alerts", wrap=True)
        for a in shown:
            ctx.say((a.alert_id, "bold"), f"  {a.state}  {a.severity}  {a.kind}  {a.resource or a.department or ''}  "
                    f"first seen {a.first_seen:%Y-%m-%d %H:%M}, last seen {a.last_seen:%Y-%m-%d %H:%M}", wrap=True)
            ctx.say(f"  {a.message_zh}", wrap=True)
            ctx.say(f"  {a.message_en}", wrap=True)
            if a.acknowledged_by:
                ctx.say(f"  acknowledged by {a.acknowledged_by} {a.acknowledged_at:%Y-%m-%d %H:%M}: "
                        f"{a.acknowledged_why}", wrap=True)
            if a.resolved_by:
                ctx.say(f"  resolved by {a.resolved_by} {a.resolved_at:%Y-%m-%d %H:%M}: {a.resolved_why}", wrap=True)


def _step(action: str, alert_id: str, by: str, why: str, as_json: bool) -> None:
    from govlake import alerts

    with command("alerts", as_json=as_json, known=(alerts.AlertError,)) as ctx:
        do = alerts.acknowledge if action == "ack" else alerts.resolve
        a = do(ctx.settings, alert_id, by=by, why=why, run_id=ctx.run_id)
        if ctx.json:
            ctx.emit(vars(a))
            return
        ctx.say(f"{a.alert_id} {a.state} by {by.strip()}: {why.strip()}", wrap=True)


@alerts_app.command("ack")
def alerts_ack(alert_id: Annotated[str, typer.Argument(help="The alert id (or its first characters).")], by: By,
               why: Why, as_json: Json = False) -> None:
    """Acknowledge an open alert: someone is on it (it is still resolved by the check once cleared)."""
    _step("ack", alert_id, by, why, as_json)


@alerts_app.command("resolve")
def alerts_resolve(alert_id: Annotated[str, typer.Argument(help="The alert id (or its first characters).")], by: By,
                   why: Why, as_json: Json = False) -> None:
    """Resolve an open or acknowledged alert by hand."""
    _step("resolve", alert_id, by, why, as_json)
