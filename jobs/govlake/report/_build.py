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
    Chromium is installed).
    """
    from govlake.report import _browser
    from govlake.report._data import load
    from govlake.report._pages import Site
    from govlake.report._scores import load_scorecard

    started = time.perf_counter()
    settings = settings or get_settings()
    out = out or settings.reports / "quality"
    scoring = load_scorecard()
    data = load(settings, scoring)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    generated = (f"生成于 generated {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} · 业务日期 business date "
                 f"{settings.today} · 数据湖 lake {settings.lake}")
    notes, written = [], None
    if pdf and _browser.chromium() is None:
        notes.append("bulletin.pdf not written: no Chromium installed (apt-get install chromium)")
        pdf = False
    site = Site(data, scoring, out, generated=generated, pdf=pdf)
    site.build()
    if pdf:
        written = _browser.print_pdf(out / "bulletin.html", out / "bulletin.pdf")
    if data.gx_docs is None:
        notes.append("no Great Expectations Data Docs under var/reports/gx; the overview says so")
    return ReportResult(path=out / "index.html", pages=site.pages, csv_files=site.csv_files, pdf=written,
                        seconds=time.perf_counter() - started, notes=notes)
