"""bulletin.html 季度通报: the quarter's ranking, values below target, what changed since the previous
quarter; every table exported as CSV (``bulletin-<quarter>-*.csv``) and the page printed to PDF."""

from __future__ import annotations

from typing import TYPE_CHECKING

from govlake.report._pages import fmt_target, kpi_cell, rule_page
from govlake.report._render import Cell, Page
from govlake.report._scores import months_of, previous, scorecards

if TYPE_CHECKING:
    from govlake.report._pages import Site

RULES_SHOWN = 20


def bulletin(site: Site) -> None:
    q, prev_q = site.quarter, previous(site.quarter)
    p = Page("bulletin.html", f"数据质量季度通报 {q}", f"Quarterly data quality bulletin {q}")
    cards = scorecards(site.data, q, site.scoring)
    ranking = site.ranking_table(p, cards, csv_name=f"bulletin-{q}-ranking.csv")

    rows = []
    months = months_of(q)
    for kpi in site.data.kpis:
        if kpi.target is None:
            continue
        for v in sorted(kpi.values, key=lambda v: (v.period, v.scope)):
            in_q = v.period in months or (v.period.startswith("as of ") and v.period[6:13] in months)
            if in_q and v.scope != "all" and v.meets_target is False:
                rows.append([Cell(f"{kpi.name_zh} {kpi.name_en}", raw=kpi.id), Cell(v.scope), Cell(v.period),
                             kpi_cell(kpi, v), Cell(fmt_target(kpi)), Cell(v.note)])
    below = p.table([("指标", "KPI"), ("部门/范围", "department or scope"), ("期间", "period"), ("值", "value"),
                     ("目标", "target"), ("说明", "note")], rows, csv_name=f"bulletin-{q}-below-target.csv",
                    numeric=(3,)) if rows else None

    before = {c.dept: c for c in scorecards(site.data, prev_q, site.scoring)}
    rows = []
    for c in cards:
        b = before.get(c.dept)
        for m in site.measures:
            now_s, old_s = c.score(m["id"]), None if b is None else b.score(m["id"])
            if now_s is not None and old_s is not None and abs(now_s - old_s) >= 0.0001:
                if m["id"] == "quarantine":
                    now_s, old_s = 1 - now_s, 1 - old_s
                rows.append([Cell(c.dept), Cell(f"{m['name_zh']} {m['name_en']}"), Cell(f"{old_s:.2%}", raw=old_s),
                             Cell(f"{now_s:.2%}", raw=now_s), Cell(f"{(now_s - old_s) * 100:+.2f} pp",
                                                                     raw=round(now_s - old_s, 6))])
    changes = p.table([("部门", "department"), ("指标", "measure"), (prev_q, "previous"), (q, "now"),
                       ("变化", "change")], rows, csv_name=f"bulletin-{q}-measure-changes.csv",
                      numeric=(2, 3, 4)) if rows else None

    rule_rows = []
    prev_months = months_of(prev_q)
    for r in site.data.rules.values():
        now_n = sum(r.by_month.get(m, 0) for m in months)
        old_n = sum(r.by_month.get(m, 0) for m in prev_months)
        if now_n != old_n:
            rule_rows.append((now_n - old_n, r, old_n, now_n))
    rule_rows.sort(key=lambda t: (-t[0], t[1].resource, t[1].rule_id))
    rule_changes = p.table([("规则", "rule"), ("资源", "resource"), ("说明", "description"), (prev_q, "previous"),
                            (q, "now"), ("变化", "change")],
                           [[Cell(r.rule_id, href=rule_page(r)), Cell(r.resource), Cell(r.description_zh),
                             Cell(old_n), Cell(now_n), Cell(f"{delta:+d}", raw=delta)]
                            for delta, r, old_n, now_n in rule_rows[:RULES_SHOWN]],
                           csv_name=f"bulletin-{q}-rule-changes.csv", numeric=(3, 4, 5)) if rule_rows else None

    new_conflicts = [c for c in site.data.conflicts if c["first_seen"] and c["first_seen"][:7] in months]
    conflicts = p.table([("资源", "resource"), ("数据项", "item"), ("持有部门", "holder"), ("权威部门", "authority"),
                         ("状态", "status"), ("记录", "records")],
                        [[Cell(c["resource"]), Cell(c["item_name"]), Cell(c["department"]),
                          Cell(c["authority_department"]), Cell(c["status"]), Cell(c["records"])]
                         for c in new_conflicts],
                        csv_name=f"bulletin-{q}-new-conflicts.csv", numeric=(5,)) if new_conflicts else None
    site.write(p, "bulletin.html.j2", quarter=q, previous=prev_q, as_of=site.data.as_of, pdf=site.pdf,
               ranking=ranking, below=below, changes=changes, rule_changes=rule_changes, conflicts=conflicts)
