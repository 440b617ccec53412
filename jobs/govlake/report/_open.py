"""open.html 开放数据: the open datasets of the last ``govlake open`` run with their k, generalization and
suppression; the earlier runs; the resources not opened and why (docs/open-data.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from govlake.catalog import CatalogError
from govlake.opendata import load_config, plan
from govlake.report._render import Cell, Page

if TYPE_CHECKING:
    from govlake.report._pages import Site

STATUS_CLASS = {"published": "ok", "withheld": "bad"}


def _generalization(row: dict) -> str:
    kinds = row["quasi_identifiers"] or {}
    return "; ".join(f"{c} → {level} ({kinds.get(c, '')})" for c, level in (row["generalization"] or {}).items()) \
        or "—"


def _share(row: dict) -> str:
    return f"{row['suppressed'] / row['rows_in']:.1%}" if row["rows_in"] else "—"


def open_data(site: Site) -> None:
    p = Page("open.html", "开放数据", "Open data")
    rows = site.data.open_data
    last_run = rows[0]["run_id"] if rows else None
    latest = p.table(
        [("数据集", "dataset"), ("资源", "resource"), ("来源", "source"), ("状态", "status"), "k",
         ("输入行", "rows in"), ("发布行", "rows out"), ("抑制行", "suppressed"), ("抑制比例", "share suppressed"),
         ("泛化", "generalization"), ("说明", "reason")],
        [[Cell(r["dataset"]), Cell(r["resource"]), Cell(f"{r['source_table']} v{r['source_version']}"),
          Cell(r["status"], cls=STATUS_CLASS.get(r["status"], "")), Cell(r["k"]), Cell(r["rows_in"]),
          Cell(r["rows_out"]), Cell(r["suppressed"]), Cell(_share(r)), Cell(_generalization(r)),
          Cell(r["reason"] or "")] for r in rows if r["run_id"] == last_run],
        csv_name="open_datasets.csv", numeric=(4, 5, 6, 7))
    history = p.table(
        [("运行", "run"), ("时间", "at (UTC)"), ("数据集", "dataset"), ("状态", "status"), "k",
         ("输入行", "rows in"), ("发布行", "rows out"), ("抑制行", "suppressed")],
        [[Cell(r["run_id"]), Cell(f"{r['published_at']:%Y-%m-%d %H:%M}"), Cell(r["dataset"]),
          Cell(r["status"], cls=STATUS_CLASS.get(r["status"], "")), Cell(r["k"]), Cell(r["rows_in"]),
          Cell(r["rows_out"]), Cell(r["suppressed"])] for r in rows],
        csv_name="open_runs.csv", numeric=(4, 5, 6, 7))
    try:
        _, closed = plan(site.data.catalog, load_config(site.data.settings))
        problem = None
    except CatalogError as exc:
        closed, problem = [], str(exc)
    not_opened = p.table([("资源", "resource"), ("开放类型", "open type"), ("原因", "reason")],
                         [[Cell(c.resource), Cell(c.open_type), Cell(c.reason)] for c in closed])
    site.write(p, "open.html.j2", latest=latest, last_run=last_run, history=history, not_opened=not_opened,
               problem=problem, folder=str(site.data.settings.open_data))
