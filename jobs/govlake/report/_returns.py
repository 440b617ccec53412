"""The overview's 数据回流 (returns) section: what the last run of ``govlake return`` delivered to whom.

The markup is ``templates/returns.html.j2``; this module reads meta/returns_log (govlake.returns) and
works out what it shows: one line per table delivered by the latest run, conditional deliveries with
their request and purpose (free text the bureau typed: ID and mobile numbers in it masked), so that an
auditor sees who received what and on which basis.
"""

from __future__ import annotations

from dataclasses import dataclass

from govlake.masking import scrub_text
from govlake.report._render import Cell, Table, render


def load_deliveries(settings) -> list[dict]:
    """meta/returns_log, latest first; none when nothing has been returned yet."""
    from govlake.returns import delivery_log

    return delivery_log(settings)


@dataclass
class ReturnsView:
    """Nothing delivered yet (``run_id`` None), or the latest run's deliveries."""

    run_id: str | None = None
    when: str = ""
    receivers: int = 0
    tables: int = 0
    rows: int = 0
    conditional: int = 0
    table: Table | None = None


def returns_view(rows: list[dict]) -> ReturnsView:
    if not rows:
        return ReturnsView()
    run_id = rows[0]["run_id"]
    last = sorted((r for r in rows if r["run_id"] == run_id),
                  key=lambda r: (r["receiver_kind"], r["receiver"], r["table_name"]))
    kinds = {"district": "区县 district", "department": "部门 department"}
    table = Table([("接收方", "receiver"), ("类型", "kind"), ("表", "table"), ("资源", "resource"), ("依据", "basis"),
                   ("申请编号", "request"), ("用途", "purpose"), ("行", "rows"), ("列", "columns")],
                  [[Cell(r["receiver"]), Cell(kinds.get(r["receiver_kind"], r["receiver_kind"])), Cell(r["table_name"]),
                    Cell(r["resource"] or "—"), Cell(r["basis"]), Cell(r["request_id"] or "—"),
                    Cell(scrub_text(r["purpose"]) or "—"), Cell(f"{r['rows']:,}", raw=r["rows"]),
                    Cell(r["columns"], data={"columns": r["column_names"]})]
                   for r in last], numeric=(7, 8), id="returns-table")
    return ReturnsView(run_id=run_id, when=f"{last[0]['delivered_at']:%Y-%m-%d %H:%M} UTC",
                       receivers=len({r["receiver"] for r in last}), tables=len(last),
                       rows=sum(r["rows"] for r in last),
                       conditional=sum(1 for r in last if r["request_id"]), table=table)


def returns_section(rows: list[dict]) -> str:
    """The section as HTML on its own (the overview renders the same template)."""
    return render("returns.html.j2", returns=returns_view(rows))
