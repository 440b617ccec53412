"""HTML building blocks of the report: the page shell with its inline style, tables, CSV files.

Pages are plain HTML with the style inline: nothing is fetched, so a page opens from the file
system with no network. The only script is the one line of :data:`SCRIPT` (open a definition linked by its anchor).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

STYLE = """
:root{--ok:#1a7f37;--bad:#d1242f;--warn:#9a6700;--na:#6e7781;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",system-ui,sans-serif;
 margin:0;color:#1f2328;font-size:14px;line-height:1.5}
header{background:#0b3d91;color:#fff;padding:10px 24px}
header a{color:#fff;margin-right:18px;text-decoration:none}
header .title{font-weight:bold;margin-right:28px}
main{padding:16px 24px;max-width:1280px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:22px 0 6px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:16px 0 4px}
.en{color:#57606a;font-weight:normal;font-size:.9em}
.muted{color:var(--na)}
table{border-collapse:collapse;margin:6px 0 4px}
th,td{border:1px solid var(--line);padding:3px 8px;text-align:left;vertical-align:top}
th{background:var(--bg)}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:var(--ok)}.bad{color:var(--bad);font-weight:bold}.na{color:var(--na)}
td.ok{background:#dafbe1}td.bad{background:#ffebe9}td.warn{background:#fff8c5}
.scroll{overflow-x:auto;max-width:100%}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid var(--line);border-left:6px solid var(--na);border-radius:4px;padding:8px 12px;width:300px}
.card.ok{border-left-color:var(--ok)}.card.bad{border-left-color:var(--bad);font-weight:normal}
.card .v{font-size:22px;font-weight:bold}
details{margin:2px 0}summary{cursor:pointer;color:#0969da}
.csv{font-size:12px;margin-left:8px}
svg.chart{max-width:100%;height:auto;background:#fff}
svg .grid{stroke:#eaeef2}svg .ax{font-size:11px;fill:#57606a}svg .ct{font-size:12px;font-weight:bold}
svg .target{stroke:#d1242f;stroke-dasharray:5 4}
.note{background:#fff8c5;border:1px solid #d4a72c;padding:6px 10px;border-radius:4px}
@media print{header,.noprint{display:none}main{max-width:none;padding:0}a{color:inherit;text-decoration:none}
 h2{break-after:avoid}table{break-inside:auto}tr{break-inside:avoid}}
"""

SCRIPT = ("document.querySelectorAll('details[id]').forEach(function(d)"
          "{if(location.hash==='#'+d.id){d.open=true;}});")

NAV = (("index.html", "总览 Overview"), ("departments.html", "部门排名 Departments"), ("trends.html", "趋势 Trends"),
       ("rules.html", "规则 Rules"), ("tables.html", "数据表 Tables"), ("bulletin.html", "季度通报 Bulletin"))


def e(text: object) -> str:
    return escape("" if text is None else str(text))


def bi(zh: str, en: str) -> str:
    """A Chinese label with its English beside it."""
    return f'{e(zh)} <span class="en">{e(en)}</span>'


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


@dataclass
class Cell:
    """A table cell: its text, an optional link, CSS class and data attributes; ``raw`` is the CSV value."""

    text: object
    href: str | None = None
    cls: str = ""
    data: dict[str, object] = field(default_factory=dict)
    raw: object = None
    html: str | None = None


def cell(v: object) -> Cell:
    return v if isinstance(v, Cell) else Cell(v)


@dataclass
class Page:
    """One page being written: its body parts and the CSV files it exports."""

    out: Path
    name: str
    title_zh: str
    title_en: str
    depth: int = 0
    parts: list[str] = field(default_factory=list)
    csv_files: list[str] = field(default_factory=list)

    @property
    def root(self) -> str:
        return "../" * self.depth

    def add(self, *html: str) -> None:
        self.parts.extend(html)

    def h2(self, zh: str, en: str, anchor: str | None = None) -> None:
        self.add(f'<h2{f" id={chr(34)}{e(anchor)}{chr(34)}" if anchor else ""}>{bi(zh, en)}</h2>')

    def table(self, headers: Sequence[str | tuple[str, str]], rows: Sequence[Sequence[object]], *,
              csv_name: str | None = None, numeric: Sequence[int] = (), table_id: str | None = None) -> None:
        """An HTML table; with ``csv_name`` the same rows are written to that CSV file next to the page
        and linked under the table."""
        head = "".join(f'<th{" class=n" if i in numeric else ""}>'
                       f'{bi(*h) if isinstance(h, tuple) else e(h)}</th>' for i, h in enumerate(headers))
        body = []
        for row in rows:
            tds = []
            for i, v in enumerate(map(cell, row)):
                classes = " ".join(c for c in (v.cls, "n" if i in numeric else "") if c)
                attrs = (f' class="{classes}"' if classes else "") + "".join(
                    f' data-{k}="{e(x)}"' for k, x in v.data.items())
                inner = v.html if v.html is not None else e(v.text)
                if v.href:
                    inner = f'<a href="{e(v.href)}">{inner}</a>'
                tds.append(f"<td{attrs}>{inner}</td>")
            body.append("<tr>" + "".join(tds) + "</tr>")
        tid = f' id="{e(table_id)}"' if table_id else ""
        self.add(f'<div class="scroll"><table{tid}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
                 f'</tbody></table></div>')
        if csv_name:
            path = (self.out / self.name).parent / csv_name
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", encoding="utf-8-sig", newline="") as f:
                w = csv.writer(f)
                w.writerow([" ".join(h) if isinstance(h, tuple) else h for h in headers])
                for row in rows:
                    w.writerow([c.raw if c.raw is not None else ("" if c.text is None else c.text)
                                for c in map(cell, row)])
            self.csv_files.append(csv_name)
            self.add(f'<div class="csv noprint"><a href="{e(csv_name)}" download>⬇ CSV 导出 export: '
                     f'{e(csv_name)}</a></div>')

    def write(self, *, generated: str) -> Path:
        nav = "".join(f'<a href="{self.root}{href}">{label}</a>' for href, label in NAV)
        doc = (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
               f'<meta name="viewport" content="width=device-width, initial-scale=1">'
               f"<title>{e(self.title_zh)} · {e(self.title_en)} — govlake</title><style>{STYLE}</style></head>"
               f'<body><header><span class="title">govlake 数据质量报告 Quality report</span>{nav}</header>'
               f"<main><h1>{bi(self.title_zh, self.title_en)}</h1>"
               f'<p class="muted">{e(generated)}</p>{"".join(self.parts)}</main>'
               f"<script>{SCRIPT}</script></body></html>")
        path = self.out / self.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc, encoding="utf-8")
        return path


def status_class(ok: bool | None) -> str:
    return {True: "ok", False: "bad", None: "na"}[ok]


def status_label(ok: bool | None) -> str:
    return {True: "达标 meets target", False: "未达标 below target", None: "无目标 no target"}[ok]
