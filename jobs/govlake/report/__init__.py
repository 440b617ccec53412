"""The auditor's quality report: a static site under var/reports/quality/ (``govlake report``).

:func:`build_report` reads the lake (KPIs, meta/validation_results, reconciliation, kpi_history,
quarantine, gold/conflicts, the lineage events and the catalog) and writes the overview, department
scorecards and ranking, trends, rule and table drill-downs and the quarterly bulletin (季度通报) with
CSV exports and a PDF. Pages are rendered from the Jinja templates in ``templates/`` (autoescape on)
as plain HTML with inline SVG charts: they open from the file system with no network. Sample rows
are masked by the catalog's classification. See docs/report.md.
"""

from govlake.report._build import ReportResult, build_report
from govlake.report._scores import Measure, Scorecard, department_measures, load_scorecard, scorecards, weighted_total

__all__ = ["Measure", "ReportResult", "Scorecard", "build_report", "department_measures", "load_scorecard",
           "scorecards", "weighted_total"]
