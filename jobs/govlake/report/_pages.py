"""The report's pages: overview, department scorecards and ranking, trends, rules, tables, bulletin."""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from govlake.kpi import Kpi, KpiValue
from govlake.quality import gx_validation_page
from govlake.report import _svg
from govlake.report._data import LakeData, RuleInfo
from govlake.report._drills import drill_section, load_drills
from govlake.report._html import Cell, Page, bi, e, slug, status_class, status_label
from govlake.report._scores import Scorecard, months_of, previous, quarter_of, scorecards

CREDIT_KPIS = ("credit.compliance_rate", "credit.timeliness_rate")
SEVERITY = {"row": "行被隔离 the row is quarantined", "warning": "仅计数 counted only",
            "blocking": "阻断 blocks the run"}


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


def rule_page(r: RuleInfo) -> str:
    return f"rules/{slug(r.resource)}__{slug(r.rule_id)}.html"


def dept_page(code: str) -> str:
    return f"dept/{slug(code)}.html"


def table_page(code: str) -> str:
    return f"tables/{slug(code)}.html"


class Site:
    """Writes every page of the report from :class:`LakeData`."""

    def __init__(self, data: LakeData, scoring: dict[str, Any], out, *, generated: str, pdf: bool = False) -> None:
        self.data, self.scoring, self.out, self.generated, self.pdf = data, scoring, out, generated, pdf
        self.measures = scoring["measures"]
        self.weights = {m["id"]: float(m["weight"]) for m in self.measures}
        self.kpis = {k.id: k for k in data.kpis}
        self.this_month = f"{data.as_of:%Y-%m}"
        self.last_month = previous(self.this_month)
        self.quarter = quarter_of(data.as_of)
        self.pages: list[str] = []
        self.csv_files: list[str] = []

    # ---- helpers -------------------------------------------------------------------------------

    def page(self, name: str, zh: str, en: str) -> Page:
        return Page(self.out, name, zh, en, depth=name.count("/"))

    def write(self, p: Page) -> None:
        p.write(generated=self.generated)
        self.pages.append(p.name)
        prefix = p.name.rsplit("/", 1)[0] + "/" if "/" in p.name else ""
        self.csv_files.extend(prefix + c for c in p.csv_files)

    def dept_name(self, code: str) -> str:
        d = self.data.catalog.departments.get(code)
        return f"{d.name} {d.name_en}" if d else code

    def dept_cell(self, code: str, root: str) -> Cell:
        return Cell(self.dept_name(code), href=root + dept_page(code), raw=code)

    def definition(self, kpi: Kpi, root: str) -> str:
        return (f'<details id="def-{e(kpi.id)}"><summary>定义 Definition</summary>'
                f"<p>{e(kpi.definition_zh)}<br>{e(kpi.definition_en)}</p>"
                f"<p class=muted>周期 period: {e(kpi.period)} · 数据来源 inputs: {e(', '.join(kpi.inputs))} · "
                f'id <code>{e(kpi.id)}</code> · <a href="{root}trends.html#trend-{e(kpi.id)}">趋势 trend</a>'
                f"</p></details>")

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
            cls = "" if s is None else ("ok" if s >= 0.98 else ("warn" if s >= 0.9 else "bad"))
            row.append(Cell(s_text, cls=cls, raw="" if s_raw is None else round(s_raw, 6)))
        row.append(Cell("—" if c.total is None else f"{c.total:.1f}", raw="" if c.total is None else round(c.total, 3),
                        data={"dept": c.dept, "total": "" if c.total is None else f"{c.total:.3f}"}))
        delta = None if c.total is None or c.prev_total is None else c.total - c.prev_total
        row.append(Cell("—" if delta is None else f"{delta:+.1f}", raw="" if delta is None else round(delta, 3)))
        move = None if c.rank is None or c.prev_rank is None else c.prev_rank - c.rank
        row.append(Cell("—" if c.prev_rank is None else f"{c.prev_rank}", raw=c.prev_rank or ""))
        row.append(Cell("—" if move is None else ("=" if move == 0 else f"{'↑' if move > 0 else '↓'}{abs(move)}"),
                        raw="" if move is None else move))
        return row

    def card_headers(self) -> list[object]:
        return ([("排名", "rank"), ("部门", "department")] + [(m["name_zh"], m["name_en"]) for m in self.measures]
                + [("加权总分", "weighted total"), ("较上期", "change"), ("上期排名", "previous rank"),
                   ("名次变化", "rank change")])

    def weights_note(self) -> str:
        items = "".join(f"<li>{bi(m['name_zh'], m['name_en'])} — 权重 weight {m['weight']:g}: "
                        f"{e(m['definition_zh'])} / {e(m['definition_en'])}</li>" for m in self.measures)
        return (f'<details id="weights"><summary>指标与权重 Measures and weights (scorecard.yml)</summary><ul>{items}'
                "</ul><p>总分 = 100 × Σ 权重 × 得分 ÷ Σ 权重（仅计该部门本期有数据的指标）。 Total = 100 × Σ weight × "
                "score ÷ Σ weight over the measures the department has in the period. 隔离率列显示隔离率本身，计分用"
                " 1 − 隔离率 (the quarantine column shows the rate; the score uses 1 − rate). 颜色 colours: ≥98% 绿 "
                "green, ≥90% 黄 yellow, else 红 red.</p></details>")

    # ---- pages ---------------------------------------------------------------------------------

    def build(self) -> None:
        self.overview()
        self.departments()
        self.trends()
        self.rules()
        self.tables()
        self.bulletin()

    def overview(self) -> None:
        p = self.page("index.html", "总览", "Overview")
        p.add(f"<p>业务日期 business date <b>{e(self.data.as_of)}</b> · 上月 last month <b>{e(self.last_month)}</b>"
              f" · 本季度 quarter <b>{e(self.quarter)}</b>. 每个指标的定义点击“定义”展开"
              " (click 定义 for the definition); * = 暂定 provisional.</p>")
        # The question an auditor opens the page with: who missed the 双公示 targets last month.
        p.h2(f"上月（{self.last_month}）未达 98% 双公示目标的部门",
             "Departments below the 98% 双公示 targets last month", anchor="missed")
        rows = []
        for kid in CREDIT_KPIS:
            kpi = self.kpis.get(kid)
            if kpi is None:
                continue
            for v in kpi.values:
                if v.period == self.last_month and v.scope != "all" and v.meets_target is False:
                    rows.append([Cell(kpi.name_zh, href=f"#kpi-{kid}", raw=kid), self.dept_cell(v.scope, ""),
                                 kpi_cell(kpi, v), Cell(f"{v.numerator:g} / {v.denominator:g}"),
                                 Cell("规则与行 rules and rows", href=dept_page(v.scope) + "#credit-rules")])
        if rows:
            p.table([("指标", "KPI"), ("部门", "department"), ("值", "value"), ("分子/分母", "num/den"),
                     ("下钻", "drill-down")], rows, numeric=(2,), table_id="missed-table")
        else:
            p.add("<p class=ok>上月各部门均达标 every department met both targets last month.</p>")

        p.h2("全部指标", "Every KPI vs target")
        cards = []
        for kpi in self.data.kpis:
            periods = self.shown_periods(kpi)
            latest = next((v for v in kpi.values if v.scope == "all" and periods and v.period == periods[-1]), None)
            if latest is None and periods:  # no 'all' scope (freshness per resource): show the worst
                shown = [v for v in kpi.values if v.period == periods[-1] and v.value is not None]
                worst = max if kpi.target_direction == "max" else min
                latest = worst(shown, key=lambda v: v.value) if shown else None
            ok = None if latest is None or kpi.target is None else latest.meets_target
            value = "无数据 no data" if latest is None else fmt_value(kpi, latest.value)
            scope = "" if latest is None else f"{latest.scope} · {latest.period}"
            cards.append(f'<div class="card {status_class(ok)}"><a href="#kpi-{e(kpi.id)}">'
                         f'{bi(kpi.name_zh, kpi.name_en)}</a><div class="v {status_class(ok)}">{e(value)}</div>'
                         f'<div class=muted>{e(scope)} · 目标 '
                         f'target {e(fmt_target(kpi))} · {e(status_label(ok) if kpi.target is not None else "")}</div>'
                         f"<details><summary>定义 definition</summary>{e(kpi.definition_zh)}<br>"
                         f"{e(kpi.definition_en)}</details></div>")
        p.add(f'<div class="cards">{"".join(cards)}</div>')
        for kpi in self.data.kpis:
            p.h2(kpi.name_zh, kpi.name_en, anchor=f"kpi-{kpi.id}")
            p.add(f"<p>目标 target: <b>{e(fmt_target(kpi))}</b></p>", self.definition(kpi, ""))
            periods = self.shown_periods(kpi)
            if not periods:
                p.add("<p class=muted>尚无数据 no data yet (see the definition for the inputs it needs).</p>")
                continue
            for period in periods:
                rows = []
                for v in sorted((v for v in kpi.values if v.period == period), key=lambda v: (v.scope != "all",
                                                                                              v.scope)):
                    scope = (self.dept_cell(v.scope, "") if v.scope in self.data.catalog.departments
                             else Cell(v.scope, href=table_page(v.scope)) if v.scope in self.data.catalog.resources
                             else Cell(v.scope))
                    rows.append([scope, kpi_cell(kpi, v), Cell("" if v.numerator is None else f"{v.numerator:g}"),
                                 Cell("" if v.denominator is None else f"{v.denominator:g}"),
                                 Cell(status_label(v.meets_target) if kpi.target is not None else "")])
                p.add(f"<h3>{e(period)}</h3>")
                p.table([("范围", "scope"), ("值", "value"), ("分子", "numerator"), ("分母", "denominator"),
                         ("状态", "status")], rows, numeric=(1, 2, 3))
        gx = self.data.gx_docs
        p.h2("Great Expectations Data Docs", "GX Data Docs")
        p.add(f'<p>每次校验运行由 Great Expectations 生成一页 Data Docs，各规则页按运行链接到对应页面；'
              f'<a href="{e(os.path.relpath(gx, self.out))}">最近一次运行的 GX Data Docs</a>。'
              'Every validation run has its Great Expectations Data Docs page; rule pages link each run to it '
              '(GX\'s own pages load their styles from a CDN, so offline they show unstyled).</p>' if gx else
              '<p class="note">尚无 Great Expectations Data Docs（var/reports/gx）。No GX Data Docs yet '
              '(var/reports/gx): they are written by each validation run.</p>')
        drill_section(p, load_drills(self.data.settings))
        self.write(p)

    def departments(self) -> None:
        months = sorted({m for _, m in self.data.rows_by_dept_month if m != "?"}
                        | {v.period for k in CREDIT_KPIS if k in self.kpis for v in self.kpis[k].values})
        recent = [m for m in months if m <= self.this_month][-12:]
        by_month = {m: scorecards(self.data, m, self.scoring) for m in recent}
        main = self.last_month if by_month.get(self.last_month) else (recent[-1] if recent else self.this_month)
        p = self.page("departments.html", f"部门排名 {main}", f"Department ranking {main}")
        others = " · ".join(f'<a href="ranking-{m}.html">{m}</a>' for m in recent)
        p.add(f"<p>月份 month: <b>{e(main)}</b>（上月 last complete month），较上期 = 与 {e(previous(main))} 比较 "
              f"(change since the previous month). 其他月份 other months: {others} · "
              f'<a href="bulletin.html">季度 quarter {e(self.quarter)}</a></p>', self.weights_note())
        cards = by_month.get(main, [])
        p.table(self.card_headers(), [self.card_row(c, "") for c in cards], csv_name=f"ranking-{main}.csv",
                numeric=tuple(range(2, 4 + len(self.measures) + 2)), table_id="ranking")
        p.add(_svg.bar_chart([(self.dept_name(c.dept).split(" ")[0], c.total) for c in cards if c.total is not None],
                             fmt=lambda v: f"{v:.1f}", title=f"加权总分 weighted total · {main}"))
        self.write(p)
        for m in recent:
            q = self.page(f"ranking-{m}.html", f"部门排名 {m}", f"Department ranking {m}")
            q.add(self.weights_note())
            q.table(self.card_headers(), [self.card_row(c, "") for c in by_month[m]], csv_name=f"ranking-{m}.csv",
                    numeric=tuple(range(2, 4 + len(self.measures) + 2)))
            self.write(q)
        quarter_cards = {c.dept: c for c in scorecards(self.data, self.quarter, self.scoring)}
        depts = sorted({c.dept for cards in by_month.values() for c in cards} | set(quarter_cards))
        for dept in depts:
            self.department(dept, main, by_month, quarter_cards.get(dept))

    def department(self, dept: str, main: str, by_month: dict[str, list[Scorecard]], quarter: Scorecard | None) -> None:
        d = self.data.catalog.departments.get(dept)
        p = self.page(dept_page(dept), f"部门记分卡 · {d.name if d else dept}",
                      f"Scorecard · {d.name_en if d else dept}")
        root = p.root
        p.add(f'<p>部门代码 department code <b>{e(dept)}</b> · <a href="{root}departments.html">排名 ranking</a></p>')
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
                cls = "" if s is None else ("ok" if s >= 0.98 else ("warn" if s >= 0.9 else "bad"))
                row.append(Cell(s_text, cls=cls, data={"measure": m["id"]}))
            rows.append(row)
        rows.append([Cell("加权总分 weighted total"), Cell("")]
                    + [Cell("—" if c is None or c.total is None else f"{c.total:.1f} (排名 rank {c.rank})")
                       for _, c in periods])
        p.h2("记分卡", "Scorecard")
        p.add(self.weights_note())
        p.table([("指标", "measure"), ("权重", "weight")] + [(period, "") for period, _ in periods], rows,
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
        p.h2("各指标逐月", "Measures by month")
        p.add(_svg.line_chart(series, fmt=_svg.pct, ratio=True, title="逐月得分 monthly scores (隔离率 = rate)"))

        # The 双公示 rules this department's records failed, most first, with the rows.
        p.h2("双公示记录未通过的规则", "Rules its 双公示 records failed", anchor="credit-rules")
        self.rule_table(p, dept, [r for r in self.data.rules.values() if r.resource in ("credit.license",
                                                                                       "credit.penalty")])
        p.h2("其他数据未通过的规则", "Rules its other data failed", anchor="other-rules")
        self.rule_table(p, dept, [r for r in self.data.rules.values() if r.resource not in ("credit.license",
                                                                                           "credit.penalty")])
        self.write(p)

    def rule_table(self, p: Page, dept: str, rules: list[RuleInfo]) -> None:
        root = p.root
        hit = sorted((r for r in rules if r.by_dept.get(dept)), key=lambda r: (-r.by_dept[dept], r.resource,
                                                                                 r.rule_id))
        if not hit:
            p.add("<p class=ok>无隔离行 no quarantined rows.</p>")
            return
        rows = [[Cell(r.rule_id, href=f"{root}{rule_page(r)}#dept-{slug(dept)}"), Cell(r.resource),
                 Cell(f"{r.description_zh} / {r.description_en}"), Cell(r.severity),
                 Cell(r.by_dept.get(dept, 0)), Cell(r.by_dept_month.get((dept, self.last_month), 0)),
                 Cell(r.by_dept_month.get((dept, self.this_month), 0))] for r in hit]
        p.table([("规则", "rule"), ("资源", "resource"), ("说明", "description"), ("级别", "severity"),
                 ("隔离行（全部）", "quarantined rows, all"), (f"{self.last_month}", "last month"),
                 (f"{self.this_month}", "this month")], rows, numeric=(4, 5, 6))
        top = hit[0]
        samples = top.samples.get(dept, [])
        if samples:
            p.add(f"<h3>{bi('样例行（已脱敏）', 'Sample rows (masked)')} · {e(top.rule_id)}</h3>")
            self.sample_table(p, samples)
            p.add(f'<p><a href="{root}{rule_page(top)}#dept-{slug(dept)}">更多 more rows and rules →</a></p>')

    def sample_table(self, p: Page, samples: list[dict[str, Any]]) -> None:
        cols = list(dict.fromkeys(k for s in samples for k in s))
        p.table(cols, [[Cell(s.get(c)) for c in cols] for s in samples])

    def trends(self) -> None:
        p = self.page("trends.html", "趋势", "Trends")
        p.add("<p>按运行（每日）与按月。Over runs (one point per day: the day's last run) and over months.</p>")
        p.h2("各指标逐次运行", "Each KPI over runs (scope all, meta/kpi_history)")
        for kpi in self.data.kpis:
            pts = self.data.kpi_history_all.get(kpi.id, [])
            p.add(f'<h3 id="trend-{e(kpi.id)}">{bi(kpi.name_zh, kpi.name_en)}</h3>')
            if kpi.id in CREDIT_KPIS:
                by_scope: dict[str, list] = defaultdict(list)
                for v in kpi.values:
                    if v.value is not None:
                        by_scope[v.scope].append((v.period, v.value))
                months = sorted({m for pts_ in by_scope.values() for m, _ in pts_})[-24:]
                series = [(s, [(m, x) for m, x in pts_ if m in months]) for s, pts_ in sorted(by_scope.items())]
                p.add(_svg.line_chart(series, fmt=_svg.pct, ratio=True, target=kpi.target,
                                      title=f"{kpi.name_zh} 逐月 by month, per department"))
            if pts:
                p.add(_svg.line_chart([(kpi.name_zh, pts)], fmt=_svg.pct if kpi.unit == "ratio" else _svg.num,
                                      ratio=kpi.unit == "ratio", target=kpi.target,
                                      title=f"{kpi.name_zh} 逐次运行 over runs"))
            elif kpi.id not in CREDIT_KPIS:
                p.add("<p class=muted>尚无历史 no history yet.</p>")
        p.h2("各资源隔离率逐次运行", "Quarantine rate of each resource over runs (meta/reconciliation)")
        series = []
        for code, runs in sorted(self.data.reconciliation.items()):
            by_day: dict[str, float | None] = {}
            for r in runs:
                if r["new_rows"]:
                    by_day[r["day"]] = r["new_quarantined"] / r["new_rows"]
            series.append((code, sorted(by_day.items())))
        p.add(_svg.line_chart(series, fmt=_svg.pct, ratio=True, title="新行隔离率 quarantined share of new rows"))
        p.h2("各质量维度失败行数逐次运行", "Failing rows per quality dimension over runs (meta/validation_results)")
        dims = self.scoring["dimensions"]
        per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in self.data.rules.values():
            if r.severity != "row":
                continue
            dim = dims.get(r.rule_id.split(".", 1)[0], self.scoring["default_dimension"])
            for day, _, _, failed in r.history:
                per[dim][day] += failed
        names = {m["id"]: m["name_zh"] for m in self.measures}
        p.add(_svg.line_chart([(names.get(d, d), sorted(v.items())) for d, v in sorted(per.items())],
                              title="规则失败次数（行）failures by dimension"))
        self.write(p)

    def rules(self) -> None:
        p = self.page("rules.html", "规则下钻", "Rules")
        p.add("<p>每条规则：说明、级别、逐次失败数、按部门计数、脱敏样例行。Every rule: description, severity, failing "
              "counts over runs, counts per department, masked sample rows. 按当前隔离行数排序 sorted by rows now in "
              "quarantine.</p>")
        rows = []
        ordered = sorted(self.data.rules.values(), key=lambda r: (-sum(r.by_dept.values()), -r.latest_failed,
                                                                  r.resource, r.rule_id))
        for r in ordered:
            top = ", ".join(f"{d} {n}" for d, n in sorted(r.by_dept.items(), key=lambda kv: -kv[1])[:3])
            rows.append([Cell(r.rule_id, href=rule_page(r)), Cell(r.resource, href=table_page(r.resource)),
                         Cell(r.severity), Cell(f"{r.description_zh} / {r.description_en}"), Cell(r.latest_failed),
                         Cell(sum(r.by_dept.values())), Cell(top)])
            self.rule(r)
        p.table([("规则", "rule"), ("资源", "resource"), ("级别", "severity"), ("说明", "description"),
                 ("最近一次失败", "failed, latest run"), ("隔离行", "quarantined rows"),
                 ("主要部门", "top departments")], rows, csv_name="rules.csv", numeric=(4, 5))
        self.write(p)

    def rule(self, r: RuleInfo) -> None:
        p = self.page(rule_page(r), f"规则 {r.rule_id}", f"Rule {r.rule_id} · {r.resource}")
        root = p.root
        p.add(f"<p>{e(r.description_zh)}<br>{e(r.description_en)}</p>"
              f'<p>资源 resource <a href="{root}{table_page(r.resource)}">{e(r.resource)}</a> · 级别 severity '
              f"<b>{e(r.severity)}</b> ({SEVERITY.get(r.severity, '')})</p>")
        p.h2("逐次失败数", "Failing rows over runs")
        by_day: dict[str, int] = {}
        for day, _, _, failed in r.history:
            by_day[day] = failed
        p.add(_svg.line_chart([(r.rule_id, sorted(by_day.items()))], title="失败行数 failed rows"))
        if r.history:
            last = r.history[-5:]
            slug_ = self.data.catalog.resource(r.resource).slug

            def run_cell(run: str) -> Cell:
                page = gx_validation_page(self.data.settings, slug_, run)
                return Cell(run, href=root + os.path.relpath(page, self.out) if page else None)

            p.table([("日期", "day"), ("运行（GX Data Docs）", "run (GX Data Docs)"), ("检查行数", "rows checked"),
                     ("失败", "failed")],
                    [[Cell(d), run_cell(run), Cell(c), Cell(f)] for d, run, c, f in reversed(last)], numeric=(2, 3))
        p.h2("按部门", "By department")
        if r.by_dept:
            p.table([("部门", "department"), ("隔离行", "quarantined rows"), (self.last_month, "last month"),
                     (self.this_month, "this month")],
                    [[self.dept_cell(d, root), Cell(n), Cell(r.by_dept_month.get((d, self.last_month), 0)),
                      Cell(r.by_dept_month.get((d, self.this_month), 0))]
                     for d, n in sorted(r.by_dept.items(), key=lambda kv: -kv[1])], numeric=(1, 2, 3))
        else:
            p.add("<p class=muted>当前无隔离行 no rows in quarantine for this rule"
                  + ("（警告规则只计数 warnings are counted, not quarantined）" if r.severity == "warning" else "")
                  + ".</p>")
        for dept, samples in sorted(r.samples.items(), key=lambda kv: kv[0] or ""):
            p.h2(f"样例行（已脱敏）· {self.dept_name(dept)}", "Sample rows (personal data masked)",
                 anchor=f"dept-{slug(dept)}")
            p.add(f"<p class=muted>前 {len(samples)} 行（共 {r.by_dept.get(dept, 0)} 行）file = 来源文件, row = 行号 "
                  f"(file and row number in the department's export).</p>")
            self.sample_table(p, samples)
        self.write(p)

    def tables(self) -> None:
        from govlake.catalog._browse import show

        p = self.page("tables.html", "数据表", "Tables")
        counts = {(layer, name): (n, v) for layer, name, n, v in self.data.table_counts}
        rows, infos = [], {}
        for code, res in sorted(self.data.catalog.resources.items()):
            info = infos[code] = show(self.data.settings, code)
            f = info["freshness"]
            rows.append([Cell(code, href=table_page(code)), Cell(f"{res.name} {res.name_en}"),
                         self.dept_cell(res.provider, ""),
                         Cell(counts.get(("bronze", res.slug), (0, 0))[0]),
                         Cell(counts.get(("silver", res.slug), (0, 0))[0]),
                         Cell(counts.get(("quarantine", res.slug), (0, 0))[0]),
                         Cell(f"{f['status']} ({f.get('age_days', '—')} d / {f['update_cycle']})",
                              cls={"fresh": "ok", "late": "bad"}.get(f["status"], ""))])
        p.h2("资源", "Resources")
        p.table([("资源", "resource"), ("名称", "name"), ("提供部门", "provider"), ("bronze", "rows"),
                 ("silver", "rows"), ("quarantine", "rows"), ("新鲜度", "freshness")], rows, numeric=(3, 4, 5))
        p.h2("全部表", "Every lake table")
        p.table([("层", "layer"), ("表", "table"), ("行数", "rows"), ("版本", "version")],
                [[Cell(layer), Cell(name), Cell(n), Cell(v)] for (layer, name), (n, v) in sorted(counts.items())],
                numeric=(2, 3))
        self.write(p)
        for code in sorted(self.data.catalog.resources):
            self.table(code, infos[code], counts)

    def table(self, code: str, info: dict[str, Any], counts) -> None:
        res = self.data.catalog.resource(code)
        p = self.page(table_page(code), f"{res.name} {code}", res.name_en)
        root = p.root
        f = info["freshness"]
        p.add(f"<p>{e(res.summary)}</p><p>提供部门 provider: <a href=\"{root}{dept_page(res.provider)}\">"
              f"{e(self.dept_name(res.provider))}</a> · 粒度 grain: {e(res.grain)} · 键 key: {e(' + '.join(res.key))}"
              f" · 更新周期 update cycle: {e(res.update_cycle)}</p>")
        p.h2("新鲜度", "Freshness")
        p.table([("状态", "status"), ("最近落地", "last landed"), ("距今（天）", "age, days"),
                 ("应更新间隔（天）", "due every, days")],
                [[Cell(f["status"], cls={"fresh": "ok", "late": "bad"}.get(f["status"], "")),
                  Cell(str(f.get("last_landed") or "—")[:19]), Cell(f.get("age_days")), Cell(f.get("due_every_days"))]])
        p.h2("行数", "Row counts")
        p.table([("层", "layer"), ("行数", "rows")], [[Cell(layer), Cell(counts.get((layer, res.slug), (0, 0))[0])]
                                                     for layer in ("bronze", "silver", "quarantine")], numeric=(1,))
        runs = self.data.reconciliation.get(code, [])
        if runs:
            last = runs[-1]
            p.add(f"<p>最近对账 last reconciliation ({e(last['run_id'])}): 读入 read {last['rows_read']:,} = silver "
                  f"{last['silver']:,} + 隔离 quarantined {last['quarantined']:,} + 重复 duplicates "
                  f"{last['duplicates']:,} — {'平衡 balanced' if last['balanced'] else '不平衡 NOT balanced'}</p>")
            by_day: dict[str, tuple] = {r["day"]: r for r in runs}
            p.add(_svg.line_chart([("silver", [(d, r["silver"]) for d, r in sorted(by_day.items())]),
                                   ("quarantine", [(d, r["quarantined"]) for d, r in sorted(by_day.items())])],
                                  title="行数逐次运行 rows over runs"))
        p.h2("隔离原因", "Quarantine reasons")
        reasons = sorted((r for r in self.data.rules.values() if r.resource == code and r.by_dept),
                         key=lambda r: -sum(r.by_dept.values()))
        if reasons:
            p.table([("规则", "rule"), ("说明", "description"), ("隔离行", "rows")],
                    [[Cell(r.rule_id, href=f"{root}{rule_page(r)}"), Cell(f"{r.description_zh} / {r.description_en}"),
                      Cell(sum(r.by_dept.values()))] for r in reasons], numeric=(2,))
        else:
            p.add("<p class=ok>无隔离行 no quarantined rows.</p>")
        p.h2("一数一源冲突", "Conflicts with the authoritative source (gold/conflicts)")
        found = [c for c in self.data.conflicts if code in (c["resource"], c["authority_resource"])]
        if found:
            p.table([("数据项", "item"), ("持有部门", "holder"), ("权威部门", "authority"), ("状态", "status"),
                     ("记录", "records"), ("主体", "entities"), ("首次", "first seen"), ("最近", "last seen")],
                    [[Cell(f"{c['item_name']} ({c['item']})"), Cell(c["department"]), Cell(c["authority_department"]),
                      Cell(c["status"]), Cell(c["records"]), Cell(c["entities"]), Cell(c["first_seen"]),
                      Cell(c["last_seen"])] for c in found], numeric=(4, 5))
        else:
            p.add("<p class=muted>无冲突 no conflicts recorded.</p>")
        p.h2("血缘", "Lineage (OpenLineage events, govlake catalog lineage)")
        lin = info["lineage"]
        if not lin.get("events"):
            p.add("<p class=muted>尚无血缘事件 no lineage events yet.</p>")
        else:
            p.add(f"<p>上游 upstream: {e(', '.join(lin['upstream']) or '—')}</p>"
                  f"<p>下游 downstream: {e(', '.join(lin['downstream']) or '—')}</p>")
        self.write(p)

    def bulletin(self) -> None:
        q, prev_q = self.quarter, previous(self.quarter)
        p = self.page("bulletin.html", f"数据质量季度通报 {q}", f"Quarterly data quality bulletin {q}")
        p.add(f'<p>季度 quarter <b>{e(q)}</b>（截至 to {e(self.data.as_of)}），较上期 = 与 {e(prev_q)} 比较. '
              f'<span class="noprint">{"<a href=bulletin.pdf>PDF</a> · " if self.pdf else ""}每个表格下方可导出 CSV '
              f"every table exports as CSV.</span></p>")
        cards = scorecards(self.data, q, self.scoring)
        p.h2("一、部门排名", "1. Department ranking", anchor="ranking")
        p.add(self.weights_note())
        p.table(self.card_headers(), [self.card_row(c, "") for c in cards], csv_name=f"bulletin-{q}-ranking.csv",
                numeric=tuple(range(2, 4 + len(self.measures) + 2)))
        p.h2("二、未达标部门", "2. Departments below target", anchor="below")
        rows = []
        months = months_of(q)
        for kpi in self.data.kpis:
            if kpi.target is None:
                continue
            for v in sorted(kpi.values, key=lambda v: (v.period, v.scope)):
                in_q = v.period in months or (v.period.startswith("as of ") and v.period[6:13] in months)
                if in_q and v.scope != "all" and v.meets_target is False:
                    rows.append([Cell(f"{kpi.name_zh} {kpi.name_en}", raw=kpi.id), Cell(v.scope), Cell(v.period),
                                 kpi_cell(kpi, v), Cell(fmt_target(kpi))])
        if rows:
            p.table([("指标", "KPI"), ("部门/范围", "department or scope"), ("期间", "period"), ("值", "value"),
                     ("目标", "target")], rows, csv_name=f"bulletin-{q}-below-target.csv", numeric=(3,))
        else:
            p.add("<p class=ok>本季度各部门均达标 every department met every target this quarter.</p>")
        p.h2("三、变化情况", "3. What changed since the previous quarter", anchor="changes")
        before = {c.dept: c for c in scorecards(self.data, prev_q, self.scoring)}
        rows = []
        for c in cards:
            b = before.get(c.dept)
            for m in self.measures:
                now_s, old_s = c.score(m["id"]), None if b is None else b.score(m["id"])
                if now_s is not None and old_s is not None and abs(now_s - old_s) >= 0.0001:
                    if m["id"] == "quarantine":
                        now_s, old_s = 1 - now_s, 1 - old_s
                    rows.append([Cell(c.dept), Cell(f"{m['name_zh']} {m['name_en']}"), Cell(f"{old_s:.2%}", raw=old_s),
                                 Cell(f"{now_s:.2%}", raw=now_s), Cell(f"{(now_s - old_s) * 100:+.2f} pp",
                                                                         raw=round(now_s - old_s, 6))])
        if rows:
            p.table([("部门", "department"), ("指标", "measure"), (prev_q, "previous"), (q, "now"), ("变化", "change")],
                    rows, csv_name=f"bulletin-{q}-measure-changes.csv", numeric=(2, 3, 4))
        else:
            p.add("<p class=muted>无可比的上季度数据 no comparable figures for the previous quarter.</p>")
        rule_rows = []
        prev_months = months_of(prev_q)
        for r in self.data.rules.values():
            now_n = sum(r.by_month.get(m, 0) for m in months)
            old_n = sum(r.by_month.get(m, 0) for m in prev_months)
            if now_n != old_n:
                rule_rows.append((now_n - old_n, r, old_n, now_n))
        rule_rows.sort(key=lambda t: (-t[0], t[1].resource, t[1].rule_id))
        p.add(f"<h3>{bi('隔离行数变化最大的规则', 'Rules whose quarantined rows changed most')}</h3>")
        if rule_rows:
            p.table([("规则", "rule"), ("资源", "resource"), ("说明", "description"), (prev_q, "previous"), (q, "now"),
                     ("变化", "change")],
                    [[Cell(r.rule_id, href=rule_page(r)), Cell(r.resource), Cell(r.description_zh), Cell(old_n),
                      Cell(now_n), Cell(f"{delta:+d}", raw=delta)] for delta, r, old_n, now_n in rule_rows[:20]],
                    csv_name=f"bulletin-{q}-rule-changes.csv", numeric=(3, 4, 5))
        else:
            p.add("<p class=muted>无变化 no change.</p>")
        new_conflicts = [c for c in self.data.conflicts if c["first_seen"] and c["first_seen"][:7] in months]
        p.add(f"<h3>{bi('本季度新发现的一数一源冲突', 'Conflicts first seen this quarter')}</h3>")
        if new_conflicts:
            p.table([("资源", "resource"), ("数据项", "item"), ("持有部门", "holder"), ("权威部门", "authority"),
                     ("状态", "status"), ("记录", "records")],
                    [[Cell(c["resource"]), Cell(c["item_name"]), Cell(c["department"]), Cell(c["authority_department"]),
                      Cell(c["status"]), Cell(c["records"])] for c in new_conflicts],
                    csv_name=f"bulletin-{q}-new-conflicts.csv", numeric=(5,))
        else:
            p.add("<p class=muted>无 none.</p>")
        self.write(p)
