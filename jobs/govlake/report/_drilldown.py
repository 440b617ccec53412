"""The drill-down pages: every rule (failing rows over runs, per department, masked sample rows) and
every table (freshness, row counts, reconciliation, quarantine reasons, conflicts, lineage)."""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any

from govlake.quality import gx_validation_page
from govlake.report import _svg
from govlake.report._data import RuleInfo
from govlake.report._pages import dept_page, rule_page, table_page
from govlake.report._render import Cell, Page, slug

if TYPE_CHECKING:
    from govlake.report._pages import Site

SEVERITY = {"row": "行被隔离 the row is quarantined", "warning": "仅计数 counted only",
            "blocking": "阻断 blocks the run"}
FRESHNESS_CLASS = {"fresh": "ok", "late": "bad"}


def rules(site: Site) -> None:
    """rules.html and one page per rule, most quarantined rows first."""
    p = Page("rules.html", "规则下钻", "Rules")
    rows = []
    ordered = sorted(site.data.rules.values(), key=lambda r: (-sum(r.by_dept.values()), -r.latest_failed,
                                                              r.resource, r.rule_id))
    for r in ordered:
        top = ", ".join(f"{d} {n}" for d, n in sorted(r.by_dept.items(), key=lambda kv: -kv[1])[:3])
        rows.append([Cell(r.rule_id, href=rule_page(r)), Cell(r.resource, href=table_page(r.resource)),
                     Cell(r.severity), Cell(f"{r.description_zh} / {r.description_en}"), Cell(r.latest_failed),
                     Cell(sum(r.by_dept.values())), Cell(top)])
        rule(site, r)
    table = p.table([("规则", "rule"), ("资源", "resource"), ("级别", "severity"), ("说明", "description"),
                     ("最近一次失败", "failed, latest run"), ("隔离行", "quarantined rows"),
                     ("主要部门", "top departments")], rows, csv_name="rules.csv", numeric=(4, 5))
    site.write(p, "rules.html.j2", table=table)


def rule(site: Site, r: RuleInfo) -> None:
    p = Page(rule_page(r), f"规则 {r.rule_id}", f"Rule {r.rule_id} · {r.resource}")
    by_day = {day: failed for day, _, _, failed in r.history}
    chart = _svg.line_chart([(r.rule_id, sorted(by_day.items()))], title="失败行数 failed rows")
    runs = None
    if r.history:
        slug_ = site.data.catalog.resource(r.resource).slug

        def run_cell(run: str) -> Cell:
            page = gx_validation_page(site.data.settings, slug_, run)
            return Cell(run, href=p.root + os.path.relpath(page, site.out) if page else None)

        runs = p.table([("日期", "day"), ("运行（GX Data Docs）", "run (GX Data Docs)"), ("检查行数", "rows checked"),
                        ("失败", "failed")],
                       [[Cell(d), run_cell(run), Cell(c), Cell(f)] for d, run, c, f in reversed(r.history[-5:])],
                       numeric=(2, 3))
    by_dept = p.table([("部门", "department"), ("隔离行", "quarantined rows"), (site.last_month, "last month"),
                       (site.this_month, "this month")],
                      [[site.dept_cell(d, p.root), Cell(n), Cell(r.by_dept_month.get((d, site.last_month), 0)),
                        Cell(r.by_dept_month.get((d, site.this_month), 0))]
                       for d, n in sorted(r.by_dept.items(), key=lambda kv: -kv[1])],
                      numeric=(1, 2, 3)) if r.by_dept else None
    samples = [{"name": site.dept_name(dept), "anchor": f"dept-{slug(dept)}", "shown": len(rows),
                "total": r.by_dept.get(dept, 0), "table": site.sample_table(p, rows)}
               for dept, rows in sorted(r.samples.items(), key=lambda kv: kv[0] or "")]
    site.write(p, "rule.html.j2", rule=r, severity=SEVERITY.get(r.severity, ""), table_href=table_page(r.resource),
               chart=chart, runs=runs, by_dept=by_dept, samples=samples)


def tables(site: Site) -> None:
    """tables.html and one page per resource."""
    from govlake.browse import show

    p = Page("tables.html", "数据表", "Tables")
    counts = {(layer, name): (n, v) for layer, name, n, v in site.data.table_counts}
    rows, infos = [], {}
    for code, res in sorted(site.data.catalog.resources.items()):
        info = infos[code] = show(site.data.settings, code)
        f = info["freshness"] = at_business_date(info["freshness"], site.data.settings.landing_time())
        rows.append([Cell(code, href=table_page(code)), Cell(f"{res.name} {res.name_en}"),
                     site.dept_cell(res.provider, ""),
                     Cell(counts.get(("bronze", res.slug), (0, 0))[0]),
                     Cell(counts.get(("silver", res.slug), (0, 0))[0]),
                     Cell(counts.get(("quarantine", res.slug), (0, 0))[0]),
                     Cell(f"{f['status']} ({f.get('age_days', '—')} d / {f['update_cycle']})",
                          cls=FRESHNESS_CLASS.get(f["status"], ""))])
    resources = p.table([("资源", "resource"), ("名称", "name"), ("提供部门", "provider"), ("bronze", "rows"),
                         ("silver", "rows"), ("quarantine", "rows"), ("新鲜度", "freshness")], rows, numeric=(3, 4, 5))
    every = p.table([("层", "layer"), ("表", "table"), ("行数", "rows"), ("版本", "version")],
                    [[Cell(layer), Cell(name), Cell(n), Cell(v)] for (layer, name), (n, v) in sorted(counts.items())],
                    numeric=(2, 3))
    site.write(p, "tables.html.j2", resources=resources, every=every)
    for code in sorted(site.data.catalog.resources):
        table(site, code, infos[code], counts)


def at_business_date(f: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """``govlake catalog show``'s freshness (judged at the clock) judged at ``now`` instead: the business
    date's landing time, so a lake whose files landed on its business date is fresh on that date, as the
    sharing.freshness KPI says."""
    if f.get("last_landed") is None:
        return f
    age = (now - f["last_landed"]).total_seconds() / 86400
    return f | {"age_days": round(age, 2), "status": "fresh" if age <= f["due_every_days"] else "late"}


def table(site: Site, code: str, info: dict[str, Any], counts) -> None:
    res = site.data.catalog.resource(code)
    p = Page(table_page(code), f"{res.name} {code}", res.name_en)
    root = p.root
    f = info["freshness"]
    freshness = p.table([("状态", "status"), ("最近落地", "last landed"), ("距今（天）", "age, days"),
                         ("应更新间隔（天）", "due every, days")],
                        [[Cell(f["status"], cls=FRESHNESS_CLASS.get(f["status"], "")),
                          Cell(str(f.get("last_landed") or "—")[:19]), Cell(f.get("age_days")),
                          Cell(f.get("due_every_days"))]])
    row_counts = p.table([("层", "layer"), ("行数", "rows")],
                         [[Cell(layer), Cell(counts.get((layer, res.slug), (0, 0))[0])]
                          for layer in ("bronze", "silver", "quarantine")], numeric=(1,))
    runs = site.data.reconciliation.get(code, [])
    chart = None
    if runs:
        by_day: dict[str, dict] = {r["day"]: r for r in runs}
        chart = _svg.line_chart([("silver", [(d, r["silver"]) for d, r in sorted(by_day.items())]),
                                 ("quarantine", [(d, r["quarantined"]) for d, r in sorted(by_day.items())])],
                                title="行数逐次运行 rows over runs")
    reasons = sorted((r for r in site.data.rules.values() if r.resource == code and r.by_dept),
                     key=lambda r: -sum(r.by_dept.values()))
    reason_table = p.table([("规则", "rule"), ("说明", "description"), ("隔离行", "rows")],
                           [[Cell(r.rule_id, href=f"{root}{rule_page(r)}"),
                             Cell(f"{r.description_zh} / {r.description_en}"), Cell(sum(r.by_dept.values()))]
                            for r in reasons], numeric=(2,)) if reasons else None
    found = [c for c in site.data.conflicts if code in (c["resource"], c["authority_resource"])]
    conflicts = p.table([("数据项", "item"), ("持有部门", "holder"), ("权威部门", "authority"), ("状态", "status"),
                         ("记录", "records"), ("主体", "entities"), ("首次", "first seen"), ("最近", "last seen")],
                        [[Cell(f"{c['item_name']} ({c['item']})"), Cell(c["department"]),
                          Cell(c["authority_department"]), Cell(c["status"]), Cell(c["records"]),
                          Cell(c["entities"]), Cell(c["first_seen"]), Cell(c["last_seen"])] for c in found],
                        numeric=(4, 5)) if found else None
    site.write(p, "table.html.j2", res=res, provider_href=f"{root}{dept_page(res.provider)}",
               provider=site.dept_name(res.provider), freshness=freshness, row_counts=row_counts,
               last_run=runs[-1] if runs else None, chart=chart, reasons=reason_table, conflicts=conflicts,
               lineage=info["lineage"])
