"""Build the report: read the lake, write every page, print the bulletin to PDF."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from govlake.config import Settings, get_settings


@dataclass(frozen=True)
class ReportResult:
    path: Path
    """index.html of the site."""
    pages: list[str]
    csv_files: list[str]
    pdf: Path | None
    seconds: float
    notes: list[str] = field(default_factory=list)


def build_report(settings: Settings | None = None, *, out: Path | None = None, pdf: bool = True) -> ReportResult:
    """Write the quality report to ``out`` (default var/reports/quality/); returns what was written.

    ``pdf``: print bulletin.html to bulletin.pdf with headless Chromium (skipped with a note when no
    Chromium is installed). The site is built beside ``out`` and then swapped in, under the
    ``report`` lock: a reader never sees half a site, and a killed build leaves the previous one.
    """
    from govlake import locks

    settings = settings or get_settings()
    with locks.hold(settings, "report"):
        return _build(settings, out=out, pdf=pdf)


def _build(settings: Settings, *, out: Path | None, pdf: bool) -> ReportResult:
    from govlake.report import _browser
    from govlake.report._bulletin import bulletin
    from govlake.report._data import load
    from govlake.report._drilldown import rules, tables
    from govlake.report._open import open_data
    from govlake.report._pages import Site
    from govlake.report._scores import load_scorecard

    started = time.perf_counter()
    final = out or settings.reports / "quality"
    scoring = load_scorecard()
    data = load(settings, scoring)
    final.parent.mkdir(parents=True, exist_ok=True)
    for leftover in final.parent.glob(f".{final.name}.*"):  # what a killed build left
        shutil.rmtree(leftover, ignore_errors=True)
    out = final.with_name(f".{final.name}.building")
    out.mkdir()
    generated = (f"生成于 generated {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} · 业务日期 business date "
                 f"{settings.today} · 数据湖 lake {settings.lake}")
    notes, written = [], None
    if pdf and _browser.chromium() is None:
        notes.append("bulletin.pdf not written: no Chromium installed (apt-get install chromium)")
        pdf = False
    site = Site(data, scoring, out, generated=generated, pdf=pdf)
    # the site's own pages, then the drill-down (rules, tables) and the 季度通报 that link into them
    site.overview()
    site.departments()
    site.trends()
    rules(site)
    tables(site)
    open_data(site)
    bulletin(site)
    if pdf:
        written = _browser.print_pdf(out / "bulletin.html", out / "bulletin.pdf")
    if data.gx_docs is None:
        notes.append("no Great Expectations Data Docs under var/reports/gx; the overview says so")
    old = final.with_name(f".{final.name}.old")
    if final.exists():
        final.rename(old)
    out.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return ReportResult(path=final / "index.html", pages=site.pages, csv_files=site.csv_files,
                        pdf=final / Path(written).relative_to(out) if written else None,
                        seconds=time.perf_counter() - started, notes=notes)
