"""The overview's 灾备演练 (restore drills) section: the last drill, its result and age (``govlake drill``).

The markup is ``templates/drills.html.j2``; this module reads the drills and works out what it shows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from govlake.report._render import Cell, Table, render

STALE_DAYS = 90
"""A drill older than this is flagged: drills are meant to be regular (at least quarterly)."""
SHOWN = 5


def load_drills(settings) -> list[dict]:
    """Recorded drills (meta/drills), latest first; none when the table does not exist."""
    from govlake.backup import drills

    return drills(settings)


@dataclass
class DrillView:
    """What the section shows: nothing recorded (``last`` None), or the last drill and the ones before."""

    last: dict | None = None
    days: float = 0.0
    cls: str = ""
    verdict: str = ""
    age: str = ""
    problems: tuple[str, ...] = ()
    table: Table | None = None


def drill_view(rows: list[dict], *, now: dt.datetime | None = None) -> DrillView:
    """The section for ``rows`` (latest first): the last drill's result and age, and the last few drills."""
    if not rows:
        return DrillView()
    now = now or dt.datetime.now(dt.UTC)
    last = rows[0]
    days = (now - last["at"]).total_seconds() / 86400
    passed = last["result"] == "passed"
    stale = days > STALE_DAYS
    verdict = ("通过 passed" if passed else "失败 FAILED") + (f" · 已超过 {STALE_DAYS} 天 older than {STALE_DAYS} days"
                                                             if stale else "")
    table = Table([("时间", "when"), ("结果", "result"), ("备份", "backup"), ("截止点", "cut"), ("表", "tables"),
                   ("行", "rows"), ("秒", "seconds"), ("执行人", "who")],
                  [[Cell(f"{r['at']:%Y-%m-%d %H:%M}"),
                    Cell(r["result"], cls="ok" if r["result"] == "passed" else "bad"),
                    Cell(r["backup_id"] or "—"), Cell(_when(r["cut"])), Cell(r["tables"] or 0),
                    Cell(f"{r['rows'] or 0:,}"), Cell(f"{r['seconds'] or 0:.1f}"), Cell(r["actor"])]
                   for r in rows[:SHOWN]], numeric=(4, 5, 6), id="drills-table")
    shown = dict(last, when=f"{last['at']:%Y-%m-%d %H:%M} UTC", cut=_when(last["cut"]),
                 mb=f"{(last['bytes'] or 0) / 1e6:,.1f}", seconds=f"{last['seconds'] or 0:.1f}",
                 rows=f"{last['rows'] or 0:,}", tables=last["tables"] or 0, files=last["files"] or 0)
    return DrillView(last=shown, days=days, cls="ok" if passed and not stale else "bad", verdict=verdict,
                     age=f"{_age(days)}前 {_age_en(days)} ago",
                     problems=tuple(str(last["problems"]).splitlines()) if last["problems"] else (), table=table)


def drill_section(rows: list[dict], *, now: dt.datetime | None = None) -> str:
    """The section as HTML on its own (the overview renders the same template)."""
    return render("drills.html.j2", drills=drill_view(rows, now=now))


def _when(value) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d %H:%M}"


def _age(days: float) -> str:
    return f"{days:.0f} 天" if days >= 1 else f"{days * 24:.0f} 小时"


def _age_en(days: float) -> str:
    return f"{days:.0f} days" if days >= 1 else f"{days * 24:.0f} hours"
