"""The report's site: what each page shows, worked out from :class:`LakeData`.

Each page is one template of ``templates/`` (overview, department ranking and scorecards, trends
here; rules and tables in ``_drilldown.py``; the bulletin in ``_bulletin.py``); this module hands
them figures, :class:`Table` objects (whose CSV exports are written beside the page) and chart
geometry, never markup.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from govlake.governance import claim_history
from govlake.kpi import Kpi, KpiValue
from govlake.report import _svg
from govlake.report._alerts import alert_table, load_alerts
from govlake.report._claims import claims_table
from govlake.report._data import LakeData, RuleInfo
from govlake.report._drills import drill_view, load_drills
from govlake.report._render import Cell, Page, Table, slug, status_class, status_label
from govlake.report._returns import load_deliveries, returns_view
from govlake.report._scores import Scorecard, months_of, previous, quarter_of, scorecards

CREDIT_KPIS = ("credit.compliance_rate", "credit.timeliness_rate")
CREDIT_RESOURCES = ("credit.license", "credit.penalty")


def fmt_value(kpi: Kpi, v: float | None) -> str:
    """A KPI figure as the report prints it (the tests hold the page to ``govlake kpi --json`` with this)."""
    if v is None:
        return "—"
    if kpi.unit == "ratio":
        return f"{v:.2%}"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def fmt_target(kpi: Kpi) -> str:
    if kpi.target is None:
        return "—"
    op = "≥" if kpi.target_direction == "min" else "≤"
    return f"{op} {kpi.target:.0%}" if kpi.unit == "ratio" else f"{op} {kpi.target:g}"


def kpi_cell(kpi: Kpi, v: KpiValue) -> Cell:
    text = fmt_value(kpi, v.value) + (" *" if v.provisional else "")
    return Cell(text, cls=status_class(v.meets_target) if kpi.target is not None else "",
                data={"kpi": kpi.id, "scope": v.scope, "period": v.period,
                      "value": "" if v.value is None else repr(float(v.value))},
                raw="" if v.value is None else v.value)


def score_class(s: float | None) -> str:
    """Colour of a scorecard measure: ≥98% green, ≥90% yellow, else red."""
    return "" if s is None else ("ok" if s >= 0.98 else ("warn" if s >= 0.9 else "bad"))


def rule_page(r: RuleInfo) -> str:
    return f"rules/{slug(r.resource)}__{slug(r.rule_id)}.html"


def dept_page(code: str) -> str:
    return f"dept/{slug(code)}.html"


def table_page(code: str) -> str:
    return f"tables/{slug(code)}.html"


class Site:
    """Writes every page of the report from :class:`LakeData`."""

    def __init__(self, data: LakeData, scoring: dict[str, Any], out: Path, *, generated: str,
                 pdf: bool = False) -> None:
        self.data, self.scoring, self.out, self.generated, self.pdf = data, scoring, out, generated, pdf
        self.measures = scoring["measures"]
        self.kpis = {k.id: k for k in data.kpis}
        self.this_month = f"{data.as_of:%Y-%m}"
        self.last_month = previous(self.this_month)
        self.quarter = quarter_of(data.as_of)
        self.pages: list[str] = []
        self.csv_files: list[str] = []

    # ---- helpers -------------------------------------------------------------------------------

    def write(self, p: Page, template: str, **context: Any) -> None:
        p.write(self.out, template, generated=self.generated, measures=self.measures, **context)
        self.pages.append(p.name)
        prefix = p.name.rsplit("/", 1)[0] + "/" if "/" in p.name else ""
        self.csv_files.extend(prefix + c for c in p.csv_files)

    def dept_name(self, code: str) -> str:
        d = self.data.catalog.departments.get(code)
        return f"{d.name} {d.name_en}" if d else code

    def dept_cell(self, code: str, root: str) -> Cell:
        return Cell(self.dept_name(code), href=root + dept_page(code), raw=code)

    def shown_periods(self, kpi: Kpi) -> list[str]:
        periods = sorted({v.period for v in kpi.values})
        if kpi.id in CREDIT_KPIS:
            return [p for p in (self.last_month, self.this_month) if p in periods] or periods[-1:]
        return periods[-1:]

    def card_row(self, c: Scorecard, root: str) -> list[object]:
        row: list[object] = [c.rank or "—", self.dept_cell(c.dept, root)]
        for m in self.measures:
            s = c.score(m["id"])
            if m["id"] == "quarantine" and s is not None:
                s_text, s_raw = f"{1 - s:.2%}", 1 - s
            else:
                s_text, s_raw = ("—" if s is None else f"{s:.2%}"), s
            row.append(Cell(s_text, cls=score_class(s), raw="" if s_raw is None else round(s_raw, 6)))
        row.append(Cell("—" if c.total is None else f"{c.total:.1f}", raw="" if c.total is None else round(c.total, 3),
                        data={"dept": c.dept, "total": "" if c.total is None else f"{c.total:.3f}"}))
        delta = None if c.total is None or c.prev_total is None else c.total - c.prev_total
        row.append(Cell("—" if delta is None else f"{delta:+.1f}", raw="" if delta is None else round(delta, 3)))
        move = None if c.rank is None or c.prev_rank is None else c.prev_rank - c.rank
        row.append(Cell("—" if c.prev_rank is None else f"{c.prev_rank}", raw=c.prev_rank or ""))
        row.append(Cell("—" if move is None else ("=" if move == 0 else f"{'↑' if move > 0 else '↓'}{abs(move)}"),
                        raw="" if move is None else move))
        return row

    def ranking_table(self, p: Page, cards: list[Scorecard], *, csv_name: str, table_id: str | None = None) -> Table:
        headers = ([("排名", "rank"), ("部门", "department")] + [(m["name_zh"], m["name_en"]) for m in self.measures]
                   + [("加权总分", "weighted total"), ("较上期", "change"), ("上期排名", "previous rank"),
                      ("名次变化", "rank change")])
        return p.table(headers, [self.card_row(c, "") for c in cards], csv_name=csv_name,
                       numeric=tuple(range(2, 4 + len(self.measures) + 2)), table_id=table_id)

    # ---- pages ---------------------------------------------------------------------------------

    def overview(self) -> None:
        p = Page("index.html", "总览", "Overview")
        # The question an auditor opens the page with: who missed the 双公示 targets last month.
        rows = []
        for kid in CREDIT_KPIS:
            kpi = self.kpis.get(kid)
            if kpi is None:
                continue
            for v in kpi.values:
                if v.period == self.last_month and v.scope != "all" and v.meets_target is False:
                    rows.append([Cell(kpi.name_zh, href=f"#kpi-{kid}", raw=kid), self.dept_cell(v.scope, ""),
                                 kpi_cell(kpi, v), Cell(f"{v.numerator:g} / {v.denominator:g}"), Cell(v.note),
                                 Cell("规则与行 rules and rows", href=dept_page(v.scope) + "#credit-rules")])
        missed = p.table([("指标", "KPI"), ("部门", "department"), ("值", "value"), ("分子/分母", "num/den"),
                          ("说明", "note"), ("下钻", "drill-down")], rows, numeric=(2,),
                         table_id="missed-table") if rows else None
        cards, sections = [], []
        for kpi in self.data.kpis:
            periods = self.shown_periods(kpi)
            latest = next((v for v in kpi.values if v.scope == "all" and periods and v.period == periods[-1]), None)
            if latest is None and periods:  # no 'all' scope (freshness per resource): show the worst
                shown = [v for v in kpi.values if v.period == periods[-1] and v.value is not None]
                worst = max if kpi.target_direction == "max" else min
                latest = worst(shown, key=lambda v: v.value) if shown else None
            ok = None if latest is None or kpi.target is None else latest.meets_target
            cards.append({"kpi": kpi, "cls": status_class(ok), "target": fmt_target(kpi),
                          "value": "无数据 no data" if latest is None else fmt_value(kpi, latest.value),
                          "scope": "" if latest is None else f"{latest.scope} · {latest.period}",
                          "status": status_label(ok) if kpi.target is not None else "",
                          "note": None if latest is None else latest.note})
            sections.append({"kpi": kpi, "target": fmt_target(kpi),
                             "periods": [(period, self.kpi_table(p, kpi, period)) for period in periods]})
        gx = self.data.gx_docs
        alerts = load_alerts(self.data.settings)
        self.write(p, "overview.html.j2", as_of=self.data.as_of, last_month=self.last_month, quarter=self.quarter,
                   missed=missed, cards=cards, sections=sections,
                   gx=os.path.relpath(gx, self.out) if gx else None, drills=drill_view(load_drills(self.data.settings)),
                   claims=claims_table(claim_history(self.data.settings, catalog=self.data.catalog), link=table_page),
                   alerts=alerts, alert_table=alert_table(alerts),
                   returns=returns_view(load_deliveries(self.data.settings)))

    def kpi_table(self, p: Page, kpi: Kpi, period: str) -> Table:
        """Every scope's value of ``kpi`` in ``period`` (``all`` first)."""
        rows = []
        for v in sorted((v for v in kpi.values if v.period == period), key=lambda v: (v.scope != "all", v.scope)):
            scope = (self.dept_cell(v.scope, "") if v.scope in self.data.catalog.departments
                     else Cell(v.scope, href=table_page(v.scope)) if v.scope in self.data.catalog.resources
                     else Cell(v.scope))
            rows.append([scope, kpi_cell(kpi, v), Cell("" if v.numerator is None else f"{v.numerator:g}"),
                         Cell("" if v.denominator is None else f"{v.denominator:g}"),
                         Cell(" · ".join(x for x in (status_label(v.meets_target) if kpi.target is not None
                                                     else "", v.note) if x))])
        return p.table([("范围", "scope"), ("值", "value"), ("分子", "numerator"), ("分母", "denominator"),
                        ("状态", "status")], rows, numeric=(1, 2, 3))

    def departments(self) -> None:
        months = sorted({m for _, m in self.data.rows_by_dept_month if m != "?"}
                        | {v.period for k in CREDIT_KPIS if k in self.kpis for v in self.kpis[k].values})
        recent = [m for m in months if m <= self.this_month][-12:]
        by_month = {m: scorecards(self.data, m, self.scoring) for m in recent}
        main = self.last_month if by_month.get(self.last_month) else (recent[-1] if recent else self.this_month)
        p = Page("departments.html", f"部门排名 {main}", f"Department ranking {main}")
        cards = by_month.get(main, [])
        ranking = self.ranking_table(p, cards, csv_name=f"ranking-{main}.csv", table_id="ranking")
        chart = _svg.bar_chart([(self.dept_name(c.dept).split(" ")[0], c.total) for c in cards if c.total is not None],
                               fmt=lambda v: f"{v:.1f}", title=f"加权总分 weighted total · {main}")
        self.write(p, "departments.html.j2", main=main, previous=previous(main), months=recent, quarter=self.quarter,
                   ranking=ranking, chart=chart)
        for m in recent:
            q = Page(f"ranking-{m}.html", f"部门排名 {m}", f"Department ranking {m}")
            self.write(q, "ranking.html.j2", ranking=self.ranking_table(q, by_month[m], csv_name=f"ranking-{m}.csv"))
        quarter_cards = {c.dept: c for c in scorecards(self.data, self.quarter, self.scoring)}
        depts = sorted({c.dept for cards in by_month.values() for c in cards} | set(quarter_cards))
        for dept in depts:
            self.department(dept, main, by_month, quarter_cards.get(dept))

    def department(self, dept: str, main: str, by_month: dict[str, list[Scorecard]], quarter: Scorecard | None) -> None:
        d = self.data.catalog.departments.get(dept)
        p = Page(dept_page(dept), f"部门记分卡 · {d.name if d else dept}", f"Scorecard · {d.name_en if d else dept}")
        periods = [(m, next((c for c in by_month[m] if c.dept == dept), None)) for m in (main, self.this_month)
                   if m in by_month]
        if quarter:
            periods.append((self.quarter, quarter))
        rows = []
        for m in self.measures:
            row: list[object] = [Cell(f"{m['name_zh']} {m['name_en']}"), Cell(f"{m['weight']:g}")]
            for _, c in periods:
                meas = None if c is None else c.measures.get(m["id"])
                s = None if meas is None else meas.score
                if s is not None and m["id"] == "quarantine":
                    s_text = f"{1 - s:.2%} ({meas.den - meas.num:g} / {meas.den:g})"
                else:
                    s_text = "—" if s is None else f"{s:.2%} ({meas.num:g} / {meas.den:g})"
                row.append(Cell(s_text, cls=score_class(s), data={"measure": m["id"]}))
            rows.append(row)
        rows.append([Cell("加权总分 weighted total"), Cell("")]
                    + [Cell("—" if c is None or c.total is None else f"{c.total:.1f} (排名 rank {c.rank})")
                       for _, c in periods])
        scorecard = p.table([("指标", "measure"), ("权重", "weight")] + [(period, "") for period, _ in periods], rows,
                            csv_name=f"{slug(dept)}-scorecard.csv", numeric=tuple(range(1, 2 + len(periods))))
        series = []
        for m in self.measures:
            pts = []
            for month, cards in sorted(by_month.items()):
                c = next((c for c in cards if c.dept == dept), None)
                s = None if c is None else c.score(m["id"])
                if s is not None and m["id"] == "quarantine":
                    s = 1 - s
                pts.append((month, s))
            if any(v is not None for _, v in pts):
                series.append((m["name_zh"], pts))
        chart = _svg.line_chart(series, fmt=_svg.pct, ratio=True, title="逐月得分 monthly scores (隔离率 = rate)")
        shown = {m for period, _ in periods for m in months_of(period)}
        notes = [(self.kpis[kid], v) for kid in CREDIT_KPIS if kid in self.kpis for v in self.kpis[kid].values
                 if v.scope == dept and v.period in shown and v.note]
        # The 双公示 rules this department's records failed, most first, with the rows; then its other data's.
        credit = [r for r in self.data.rules.values() if r.resource in CREDIT_RESOURCES]
        other = [r for r in self.data.rules.values() if r.resource not in CREDIT_RESOURCES]
        self.write(p, "department.html.j2", dept=dept, scorecard=scorecard, chart=chart, notes=notes,
                   credit_rules=self.rule_table(p, dept, credit), other_rules=self.rule_table(p, dept, other))

    def rule_table(self, p: Page, dept: str, rules: list[RuleInfo]) -> dict[str, Any] | None:
        """The rules ``dept``'s rows failed, most first, and masked sample rows of the first; None when none."""
        hit = sorted((r for r in rules if r.by_dept.get(dept)), key=lambda r: (-r.by_dept[dept], r.resource,
                                                                                 r.rule_id))
        if not hit:
            return None
        rows = [[Cell(r.rule_id, href=f"{p.root}{rule_page(r)}#dept-{slug(dept)}"), Cell(r.resource),
                 Cell(f"{r.description_zh} / {r.description_en}"), Cell(r.severity),
                 Cell(r.by_dept.get(dept, 0)), Cell(r.by_dept_month.get((dept, self.last_month), 0)),
                 Cell(r.by_dept_month.get((dept, self.this_month), 0))] for r in hit]
        table = p.table([("规则", "rule"), ("资源", "resource"), ("说明", "description"), ("级别", "severity"),
                         ("隔离行（全部）", "quarantined rows, all"), (f"{self.last_month}", "last month"),
                         (f"{self.this_month}", "this month")], rows, numeric=(4, 5, 6))
        top = hit[0]
        samples = top.samples.get(dept, [])
        return {"table": table, "top": top, "more": f"{p.root}{rule_page(top)}#dept-{slug(dept)}",
                "samples": self.sample_table(p, samples) if samples else None}

    def sample_table(self, p: Page, samples: list[dict[str, Any]]) -> Table:
        cols = list(dict.fromkeys(k for s in samples for k in s))
        return p.table(cols, [[Cell(s.get(c)) for c in cols] for s in samples])

    def trends(self) -> None:
        p = Page("trends.html", "趋势", "Trends")
        kpis = []
        for kpi in self.data.kpis:
            pts = self.data.kpi_history_all.get(kpi.id, [])
            monthly = None
            if kpi.id in CREDIT_KPIS:
                by_scope: dict[str, list] = defaultdict(list)
                for v in kpi.values:
                    if v.value is not None:
                        by_scope[v.scope].append((v.period, v.value))
                months = sorted({m for pts_ in by_scope.values() for m, _ in pts_})[-24:]
                series = [(s, [(m, x) for m, x in pts_ if m in months]) for s, pts_ in sorted(by_scope.items())]
                monthly = _svg.line_chart(series, fmt=_svg.pct, ratio=True, target=kpi.target,
                                          title=f"{kpi.name_zh} 逐月 by month, per department")
            runs = _svg.line_chart([(kpi.name_zh, pts)], fmt=_svg.pct if kpi.unit == "ratio" else _svg.num,
                                   ratio=kpi.unit == "ratio", target=kpi.target,
                                   title=f"{kpi.name_zh} 逐次运行 over runs") if pts else None
            kpis.append({"kpi": kpi, "credit": kpi.id in CREDIT_KPIS, "monthly": monthly, "runs": runs})
        series = []
        for code, runs in sorted(self.data.reconciliation.items()):
            by_day: dict[str, float | None] = {}
            for r in runs:
                if r["new_rows"]:
                    by_day[r["day"]] = r["new_quarantined"] / r["new_rows"]
            series.append((code, sorted(by_day.items())))
        quarantine = _svg.line_chart(series, fmt=_svg.pct, ratio=True, title="新行隔离率 quarantined share of new rows")
        dims = self.scoring["dimensions"]
        per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in self.data.rules.values():
            if r.severity != "row":
                continue
            dim = dims.get(r.rule_id.split(".", 1)[0], self.scoring["default_dimension"])
            for day, _, _, failed in r.history:
                per[dim][day] += failed
        names = {m["id"]: m["name_zh"] for m in self.measures}
        dimensions = _svg.line_chart([(names.get(d, d), sorted(v.items())) for d, v in sorted(per.items())],
                                     title="规则失败次数（行）failures by dimension")
        self.write(p, "trends.html.j2", kpis=kpis, quarantine=quarantine, dimensions=dimensions)
