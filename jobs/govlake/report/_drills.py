"""The overview's 灾备演练 (restore drills) section: the last drill, its result and age (``govlake drill``)."""

from __future__ import annotations

import datetime as dt

from govlake.report._html import Cell, Page, e

STALE_DAYS = 90
"""A drill older than this is flagged: drills are meant to be regular (at least quarterly)."""
SHOWN = 5


def load_drills(settings) -> list[dict]:
    """Recorded drills (meta/drills), latest first; none when the table does not exist."""
    from govlake.backup import drills

    return drills(settings)


def drill_section(p: Page, rows: list[dict], *, now: dt.datetime | None = None) -> None:
    """Add the section to page ``p``: the last drill (result, age, what it restored) and the ones before."""
    now = now or dt.datetime.now(dt.UTC)
    p.h2("灾备演练", "Restore drills", anchor="drills")
    if not rows:
        p.add('<p class="note" id="drill-none">尚无灾备演练记录：请用 <code>govlake drill --from 备份目录</code> '
              "从最近的备份恢复到临时目录并校验。No restore drill recorded yet: run <code>govlake drill --from "
              "DIR</code> to restore the latest backup into scratch and check it.</p>")
        return
    last = rows[0]
    days = (now - last["at"]).total_seconds() / 86400
    passed = last["result"] == "passed"
    stale = days > STALE_DAYS
    cls = "ok" if passed and not stale else "bad"
    verdict = ("通过 passed" if passed else "失败 FAILED") + (f" · 已超过 {STALE_DAYS} 天 older than {STALE_DAYS} days"
                                                             if stale else "")
    when = f"{last['at']:%Y-%m-%d %H:%M} UTC"
    p.add(f'<p id="drill-last" data-result="{e(last["result"])}" data-age-days="{days:.1f}">最近一次演练 last drill: '
          f'<b class="{cls}">{e(verdict)}</b> · {e(when)} '
          f"（{e(_age(days))}前 {e(_age_en(days))} ago） · 备份 backup <code>{e(last['backup_id'])}</code> · "
          f"截止点 cut {e(_when(last['cut']))} · {last['tables'] or 0} 表 tables · {last['rows'] or 0:,} 行 rows · "
          f"{last['files'] or 0} 文件 files · {(last['bytes'] or 0) / 1e6:,.1f} MB · {last['seconds'] or 0:.1f} s · "
          f"{e(last['actor'])}</p>")
    if last["problems"]:
        items = "".join(f"<li>{e(x)}</li>" for x in str(last["problems"]).splitlines())
        p.add(f'<ul class="bad" id="drill-problems">{items}</ul>')
    p.table([("时间", "when"), ("结果", "result"), ("备份", "backup"), ("截止点", "cut"), ("表", "tables"),
             ("行", "rows"), ("秒", "seconds"), ("执行人", "who")],
            [[Cell(f"{r['at']:%Y-%m-%d %H:%M}"), Cell(r["result"], cls="ok" if r["result"] == "passed" else "bad"),
              Cell(r["backup_id"] or "—"), Cell(_when(r["cut"])), Cell(r["tables"] or 0), Cell(f"{r['rows'] or 0:,}"),
              Cell(f"{r['seconds'] or 0:.1f}"), Cell(r["actor"])] for r in rows[:SHOWN]],
            numeric=(4, 5, 6), table_id="drills-table")


def _when(value) -> str:
    return "—" if value is None else f"{value:%Y-%m-%d %H:%M}"


def _age(days: float) -> str:
    return f"{days:.0f} 天" if days >= 1 else f"{days * 24:.0f} 小时"


def _age_en(days: float) -> str:
    return f"{days:.0f} days" if days >= 1 else f"{days * 24:.0f} hours"
