"""The overview's 告警 (open alerts) section: every open or acknowledged alert (``govlake alerts``).

The markup is ``templates/alerts.html.j2``; this module reads meta/alerts and builds the table. Messages
were masked when the alert was raised (govlake.alerts); nothing else of a record is shown.
"""

from __future__ import annotations

from govlake.report._render import Cell, Table, render


def load_alerts(settings) -> list:
    """Open and acknowledged alerts, critical first; none when meta/alerts does not exist."""
    from govlake.alerts import LIVE, list_alerts

    return list_alerts(settings, states=LIVE)


def alert_table(alerts: list) -> Table | None:
    """One row per alert: severity, kind, resource or department, message (zh / en), since, state."""
    if not alerts:
        return None
    from govlake.alerts import KINDS

    rows = []
    for a in alerts:
        zh, en = KINDS[a.kind]
        state = a.state if a.acknowledged_by is None else f"{a.state} ({a.acknowledged_by}: {a.acknowledged_why})"
        rows.append([Cell(a.severity, cls="bad" if a.severity == "critical" else "warn"), Cell(f"{zh} {en}"),
                     Cell(a.resource or a.department or "—"), Cell(f"{a.message_zh} / {a.message_en}"),
                     Cell(f"{a.first_seen:%Y-%m-%d %H:%M}"), Cell(f"{a.last_seen:%Y-%m-%d %H:%M}"), Cell(state),
                     Cell(a.alert_id)])
    return Table([("级别", "severity"), ("类型", "kind"), ("对象", "resource / department"), ("内容", "message"),
                  ("首次发现", "first seen"), ("最近发现", "last seen"), ("状态", "state"), ("编号", "id")],
                 rows, id="alerts-table")


def alert_section(alerts: list) -> str:
    """The section as HTML on its own (the overview renders the same template)."""
    return render("alerts.html.j2", alerts=alerts, alert_table=alert_table(alerts))
