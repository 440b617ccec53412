"""The quality report (govlake report): built from a small generated city, its figures equal
`govlake kpi --json`, every local link resolves, no 身份证号 or mobile number leaks into any file,
and (marker browser) headless Chromium loads the pages with no console error and draws the charts."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

from govlake.cli import app
from govlake.config import Settings
from govlake.identifiers import is_valid_id_number
from govlake.report import Measure, Scorecard, _svg, build_report, weighted_total
from govlake.report._browser import chromium, dump_dom
from govlake.report._data import RuleInfo
from govlake.report._render import Cell, Page, environment
from govlake.report._scores import months_of, previous, rank

AS_OF = dt.date(2026, 11, 20)
ID18 = re.compile(r"(?<![0-9A-Za-z])[1-9][0-9]{16}[0-9Xx](?![0-9A-Za-z])")
MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")


@pytest.fixture(scope="module")
def site(built_city, tmp_path_factory) -> tuple[Settings, Path]:
    """The report of a copy of the session's city (conftest's built_city: scale 1500, run once)."""
    settings, _ = built_city.copy(tmp_path_factory.mktemp("report") / "var")
    result = build_report(settings, pdf=False)
    return settings, result.path.parent


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.kpi_cells: list[dict[str, str]] = []
        self._cell: dict[str, str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("href", "src"):
            if key in a:
                self.links.append(a[key])
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "td" and "data-kpi" in a:
            self._cell = {k: a[k] or "" for k in ("data-kpi", "data-scope", "data-period", "data-value")} | {
                "text": ""}

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.kpi_cells.append(self._cell)
            self._cell = None


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


# ---- pure parts, hand-computed ---------------------------------------------------------------


def test_weighted_total_renormalises_over_the_measures_a_department_has():
    weights = {"completeness": 15, "credit_compliance": 15, "consistency": 10}
    # 15 × 0.9 + 15 × 0.5 = 21 over weight 30 → 70.0; consistency has no rows and is left out.
    measures = {"completeness": Measure(9, 10), "credit_compliance": Measure(1, 2), "consistency": Measure(0, 0)}
    assert weighted_total(measures, weights) == pytest.approx(70.0)
    assert weighted_total({"consistency": Measure(0, 0)}, weights) is None


def test_rank_shares_equal_totals_and_skips_departments_without_one():
    cards = [Scorecard("a", "2026-10", total=80.0), Scorecard("b", "2026-10", total=95.0),
             Scorecard("c", "2026-10", total=80.0), Scorecard("d", "2026-10", total=None)]
    rank(cards)
    assert [(c.dept, c.rank) for c in cards] == [("a", 2), ("b", 1), ("c", 2), ("d", None)]


def test_periods():
    assert months_of("2026-Q4") == ["2026-10", "2026-11", "2026-12"]
    assert months_of("2026-10") == ["2026-10"]
    assert previous("2026-01") == "2025-12"
    assert previous("2026-Q1") == "2025-Q4"
    assert previous("2026-Q4") == "2026-Q3"


HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text += data


def _tags(html: str) -> _Tags:
    t = _Tags()
    t.feed(html)
    return t


def test_values_from_the_lake_are_text_never_markup(tmp_path):
    """Autoescape: a rule's description, a page title, a sample row's file and values, a link, a chart's
    title, series and x labels that look like markup come out as text, making no element of the page."""
    rule = RuleInfo("credit.penalty", "SGS.x", "row", HOSTILE, HOSTILE, history=[("2026-11-20", "run-1", 10, 3)])
    page = Page("rules/x.html", HOSTILE, HOSTILE)
    sample = page.table(["file", HOSTILE], [[f"{HOSTILE}.csv", Cell(HOSTILE, href=HOSTILE)]])
    chart = _svg.line_chart([(HOSTILE, [(HOSTILE, 1.0), ("2026-11-21", 2.0)])], title=HOSTILE, target=1.5)
    path = page.write(tmp_path, "rule.html.j2", generated=HOSTILE, measures=[], rule=rule, severity=HOSTILE,
                      table_href=HOSTILE, chart=chart, runs=None, by_dept=None,
                      samples=[{"name": HOSTILE, "anchor": "dept-x", "shown": 1, "total": 3, "table": sample}])
    page_tags = _tags(path.read_text(encoding="utf-8"))
    assert page_tags.tags.count("script") == 1 and "img" not in page_tags.tags  # the page's own script only
    assert page_tags.text.count("<script>alert(1)</script>") >= 10  # every value is there, as text
    bars = environment().from_string('{% import "charts.html.j2" as ch %}{{ ch.chart(c) }}').render(
        c=_svg.bar_chart([(HOSTILE, 0.5)], ratio=True, title=HOSTILE))
    bar_tags = _tags(bars)
    assert bar_tags.tags == ["svg", "text", "text", "rect", "title", "text"]
    assert bar_tags.text.count(HOSTILE) == 3


# ---- the site from a generated city ----------------------------------------------------------


def _kpi_json(settings: Settings, monkeypatch) -> dict:
    monkeypatch.setenv("GOVLAKE_VAR", str(settings.var))
    monkeypatch.setenv("GOVLAKE_AS_OF", settings.today.isoformat())
    monkeypatch.setenv("GOVLAKE_INBOX", str(settings.inbox))
    result = CliRunner().invoke(app, ["kpi", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.slow
def test_every_figure_on_the_overview_equals_govlake_kpi_json(site, monkeypatch):
    settings, out = site
    doc = _kpi_json(settings, monkeypatch)
    expected = {(k["id"], v["scope"], v["period"]): (k["unit"], v["value"], v["provisional"])
                for k in doc["kpis"] for v in k["values"]}
    cells = _parse(out / "index.html").kpi_cells
    assert len(cells) > 50
    for c in cells:
        unit, value, provisional = expected[(c["data-kpi"], c["data-scope"], c["data-period"])]
        text = c["text"].removesuffix(" *")
        if value is None:
            assert text == "—"
        elif unit == "ratio":
            assert text == f"{value:.2%}", c
        else:
            assert float(text.replace(",", "")) == pytest.approx(value, abs=0.005), c
        assert c["text"].endswith(" *") == provisional
    # Both 双公示 KPIs of last month are shown for every department that has them.
    shown = {(c["data-kpi"], c["data-scope"]) for c in cells if c["data-period"] == "2026-10"}
    want = {(kid, scope) for kid, scope, period in expected if period == "2026-10"}
    assert shown == want


@pytest.mark.slow
def test_the_overview_lists_exactly_the_departments_below_98_percent_last_month(site, monkeypatch):
    settings, out = site
    doc = _kpi_json(settings, monkeypatch)
    below = {(k["id"], v["scope"]) for k in doc["kpis"] if k["id"].startswith("credit.")
             for v in k["values"] if v["period"] == "2026-10" and v["scope"] != "all" and v["meets_target"] is False}
    assert below, "the generated city has departments below target last month"
    html = (out / "index.html").read_text(encoding="utf-8")
    missed = html[html.index('id="missed-table"'):]
    missed = missed[:missed.index("</table>")]
    listed = set(re.findall(r'data-kpi="([^"]+)" data-scope="([^"]+)" data-period="2026-10"', missed))
    assert listed == below
    # Each row drills down to the department's 双公示 rules, which name rows by file and row number.
    for _, dept in below:
        page = out / "dept" / f"{dept}.html"
        assert 'id="credit-rules"' in page.read_text(encoding="utf-8")


@pytest.mark.slow
def test_every_local_link_resolves_and_nothing_is_fetched_from_the_network(site):
    _, out = site
    pages = sorted(out.rglob("*.html"))
    assert len(pages) > 50
    ids = {p: _parse(p).ids for p in pages}
    checked = 0
    for page in pages:
        for link in _parse(page).links:
            assert not re.match(r"^(https?:)?//", link), f"{page.name}: network link {link}"
            target, _, anchor = link.partition("#")
            path = (page.parent / unquote(target)).resolve() if target else page
            assert path.exists(), f"{page.relative_to(out)}: broken link {link}"
            if anchor and path.suffix == ".html":
                assert anchor in ids[path], f"{page.relative_to(out)}: no #{anchor} in {path.name}"
            checked += 1
    assert checked > 500


@pytest.mark.slow
def test_no_valid_id_number_or_mobile_number_in_any_file(site):
    settings, out = site
    # The quarantine does hold valid ID numbers (so the masking is what keeps them out of the site).
    raw = "".join(str(r) for p in (settings.lake / "quarantine").iterdir()
                  for r in __import__("deltalake").DeltaTable(str(p)).to_pyarrow_table().to_pylist())
    assert any(is_valid_id_number(m) for m in ID18.findall(raw))
    files = [p for p in out.rglob("*") if p.is_file() and p.suffix != ".pdf"]
    assert any(p.suffix == ".csv" for p in files)
    for p in files:
        text = p.read_text(encoding="utf-8-sig")
        leaked = [m for m in ID18.findall(text) if is_valid_id_number(m)]
        assert not leaked, f"{p.relative_to(out)}: {leaked[:3]}"
        assert not MOBILE.findall(text), f"{p.relative_to(out)}: {MOBILE.findall(text)[:3]}"
    masked = "".join(p.read_text(encoding="utf-8") for p in (out / "rules").glob("*.html"))
    assert re.search(r"[1-9][0-9]{5}\*{8}[0-9]{3}[0-9X]", masked), "sample rows show masked ID numbers"


@pytest.mark.slow
def test_bulletin_tables_are_exported_as_csv(site):
    _, out = site
    html = (out / "bulletin.html").read_text(encoding="utf-8")
    links = re.findall(r'href="(bulletin-[^"]+\.csv)"', html)
    assert "bulletin-2026-Q4-ranking.csv" in links and "bulletin-2026-Q4-below-target.csv" in links
    with (out / "bulletin-2026-Q4-ranking.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["排名 rank", "部门 department"]
    ranking = html[html.index('id="ranking"'):]
    ranking = ranking[ranking.index("<tbody>"):ranking.index("</tbody>")]
    assert len(rows) - 1 == ranking.count("<tr>")
    ranks = [int(r[0]) for r in rows[1:] if r[0] != "—"]
    assert ranks == sorted(ranks) and ranks[0] == 1


@pytest.mark.slow
def test_the_received_time_fallback_is_shown_next_to_the_timeliness_it_decides(site):
    """trans and tax send no 报送时间: their 及时率 rests on the received time, and the page says so
    next to the value (tables, the 'below target' list, their scorecards); amr's does not."""
    _, out = site
    html = (out / "index.html").read_text(encoding="utf-8")
    cells = re.findall(r'<tr><td[^>]*><a href="dept/(\w+)\.html">[^<]*</a></td>'
                       r'<td[^>]*data-kpi="credit.timeliness_rate"[^>]*>[^<]*</td>(.*?)</tr>', html)
    notes = {dept: "received time used" in rest for dept, rest in cells}
    assert notes and notes.get("trans") is True and notes.get("tax") is True and notes.get("amr") is False
    missed = html[html.index('id="missed-table"'):]
    missed = missed[:missed.index("</table>")]
    trans = [row for row in missed.split("<tr>") if 'data-kpi="credit.timeliness_rate" data-scope="trans"' in row]
    assert trans and all("no 报送时间: received time used" in row for row in trans)
    assert "received time used" in (out / "dept" / "trans.html").read_text(encoding="utf-8")
    assert 'id="kpi-notes"' not in (out / "dept" / "amr.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_kpi_and_report_take_the_recorded_business_date_without_govlake_as_of(site, monkeypatch, tmp_path):
    from govlake.generate import record_business_date

    settings, _ = site
    record_business_date(settings, settings.city, AS_OF)
    monkeypatch.delenv("GOVLAKE_AS_OF", raising=False)
    monkeypatch.setenv("GOVLAKE_VAR", str(settings.var))
    monkeypatch.setenv("GOVLAKE_INBOX", str(settings.inbox))
    text = CliRunner().invoke(app, ["kpi"], env={"COLUMNS": "200"})
    assert text.exit_code == 0, text.output
    assert "credit.compliance_rate · 2026-11" in text.output and "credit.timeliness_rate · 2026-11" in text.output
    trans = [line for line in text.output.splitlines() if line.startswith("│ trans ") and "received time used" in line]
    assert trans, "govlake kpi names the fallback next to trans's 及时率"
    assert json.loads(CliRunner().invoke(app, ["kpi", "--json"]).output)["as_of"] == "2026-11-20"
    report = CliRunner().invoke(app, ["report", "--no-pdf", "--out", str(tmp_path / "q")])
    assert report.exit_code == 0, report.output
    assert "业务日期 business date <b>2026-11-20</b>" in (tmp_path / "q" / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_freshness_on_the_tables_page_is_judged_at_the_business_date(site):
    """The city's files landed on 2026-11-20 (the business date): fresh on that date, whatever
    today's date is when the report is built."""
    _, out = site
    html = (out / "tables.html").read_text(encoding="utf-8")
    row = html[html.index('href="tables/credit.penalty.html"'):]
    assert re.match(r'[^<]*</a></td>(?:<td[^>]*>.*?</td>){5}<td class="ok">fresh \(0\.0 d / daily\)</td>',
                    row[row.index(">") + 1:]), row[:600]


# ---- headless Chromium -----------------------------------------------------------------------

browser = pytest.mark.skipif(chromium() is None, reason="no Chromium (make setup installs Debian's chromium)")


@pytest.mark.browser
@browser
def test_the_console_check_catches_a_script_error_and_a_network_fetch(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="http://example.com/x.png"><script>undefinedThing();</script></body></html>')
    _, console = dump_dom(bad)
    assert any("undefinedThing" in line for line in console)


@pytest.mark.browser
@browser
@pytest.mark.slow
def test_pages_load_in_chromium_with_no_console_error_and_charts_drawn(site):
    _, out = site
    rule = max((out / "rules").glob("*.html"), key=lambda p: p.stat().st_size)
    for page in (out / "index.html", out / "departments.html", out / "trends.html", out / "bulletin.html",
                 out / "dept" / "trans.html", rule, out / "tables" / "credit.penalty.html"):
        dom, console = dump_dom(page)
        assert "</html>" in dom and "govlake" in dom, page
        assert console == [], f"{page.name}: {console}"
        if page.name in ("trends.html", "trans.html", "departments.html"):
            points = [int(n) for n in re.findall(r'<svg class="chart"[^>]*data-points="(\d+)"', dom)]
            assert points and max(points) > 0, page.name
            assert "<circle" in dom or "<rect" in dom


@pytest.mark.browser
@browser
@pytest.mark.slow
def test_bulletin_prints_to_pdf(site, tmp_path):
    settings, _ = site
    result = build_report(settings, out=tmp_path / "q", pdf=True)
    assert result.pdf is not None and result.pdf.read_bytes()[:5] == b"%PDF-"
