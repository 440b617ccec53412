"""The overview's 认领 / 挂载 section: the latest recorded claim and mount steps (``govlake catalog claim``).

The markup is ``templates/claims.html.j2``; this module reads the claim history and picks what it shows.
"""

from __future__ import annotations

from govlake.report._render import Cell, Table, render

SHOWN = 10
"""Steps shown, latest first (``govlake catalog claims`` lists them all)."""


def claims_table(rows: list[dict], *, link) -> Table | None:
    """The latest :data:`SHOWN` steps of ``rows`` (claim history rows) with who, when and why; None when
    no step is recorded (the seeded YAML claims alone are no workflow yet). ``link(code)``: the resource's
    page. Free text (who, why) is masked like the CLI's (``govlake.governance.display_claim``)."""
    from govlake.governance import display_claim

    done = sorted((r for r in rows if not r["seeded"]), key=lambda r: (r["at"], r["resource"], r["step"]),
                  reverse=True)[:SHOWN]
    if not done:
        return None
    return Table([("时间 (UTC)", "when (UTC)"), ("资源", "resource"), ("动作", "action"), ("部门", "department"),
                  ("表", "table"), ("执行人", "who"), ("原因", "why")],
                 [[Cell(f"{r['at']:%Y-%m-%d %H:%M}"), Cell(r["resource"], href=link(r["resource"])),
                   Cell(r["action"]), Cell(r["department"]), Cell(r["mounted_table"] or "—"),
                   Cell(shown["actor"]), Cell(shown["reason"])]
                  for r in done for shown in [display_claim(r)]], id="claims-table")


def claims_section(rows: list[dict]) -> str:
    """The section as HTML on its own (the overview renders the same template)."""
    from govlake.report._pages import table_page

    return render("claims.html.j2", claims=claims_table(rows, link=table_page))
