"""Rendering of the report's pages: the Jinja environment, tables with their CSV exports, one page.

The markup lives in ``templates/`` (``base.html.j2`` the layout, one template per page kind,
``macros.html.j2`` for tables, badges and definitions, ``charts.html.j2`` for the SVG charts).
Autoescape is on for every template: a value from the lake (a department's file name, a rule's
description, a masked sample row) is always text, never markup. Python hands the templates plain
values, :class:`Table` and :class:`Cell` objects and chart geometry (``_svg.py``), no HTML.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).with_name("templates")

NAV = (("index.html", "总览 Overview"), ("departments.html", "部门排名 Departments"), ("trends.html", "趋势 Trends"),
       ("rules.html", "规则 Rules"), ("tables.html", "数据表 Tables"), ("open.html", "开放数据 Open data"),
       ("bulletin.html", "季度通报 Bulletin"))


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def status_class(ok: bool | None) -> str:
    return {True: "ok", False: "bad", None: "na"}[ok]


def status_label(ok: bool | None) -> str:
    return {True: "达标 meets target", False: "未达标 below target", None: "无目标 no target"}[ok]


@cache
def environment() -> jinja2.Environment:
    """The report's Jinja environment: autoescape on for every template, undefined names fail."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True,
                             lstrip_blocks=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
    env.filters["thousands"] = lambda v: f"{v:,}"
    env.globals.update(NAV=NAV, status_class=status_class, status_label=status_label)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


@dataclass
class Cell:
    """A table cell: its text, an optional link, CSS class and data attributes; ``raw`` is the CSV value."""

    text: object
    href: str | None = None
    cls: str = ""
    data: dict[str, object] = field(default_factory=dict)
    raw: object = None

    @property
    def shown(self) -> str:
        return "" if self.text is None else str(self.text)

    @property
    def csv_value(self) -> object:
        return self.raw if self.raw is not None else self.shown


def cell(v: object) -> Cell:
    return v if isinstance(v, Cell) else Cell(v)


Header = str | tuple[str, str]


@dataclass
class Table:
    """A table of a page: headers (text, or Chinese and English), rows of cells; with ``csv_name`` the
    same rows are written to that CSV file next to the page and linked under the table."""

    headers: Sequence[Header]
    rows: list[list[Cell]]
    numeric: Sequence[int] = ()
    csv_name: str | None = None
    id: str | None = None

    def body(self) -> list[list[tuple[str, list[tuple[str, object]], str | None, str]]]:
        """Per row, per cell: class attribute, data attributes, link and text (the template escapes them)."""
        numeric = set(self.numeric)
        return [[(" ".join(x for x in (c.cls, "n" if i in numeric else "") if x), list(c.data.items()), c.href,
                  c.shown) for i, c in enumerate(row)] for row in self.rows]

    def write_csv(self, folder: Path) -> None:
        assert self.csv_name is not None
        path = folder / self.csv_name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow([" ".join(h) if isinstance(h, tuple) else h for h in self.headers])
            w.writerows([c.csv_value for c in row] for row in self.rows)


@dataclass
class Page:
    """One page being built: its file, title and the tables it shows (whose CSV files it exports)."""

    name: str
    title_zh: str
    title_en: str
    tables: list[Table] = field(default_factory=list)

    @property
    def depth(self) -> int:
        return self.name.count("/")

    @property
    def root(self) -> str:
        """The relative path from the page back to the site's root."""
        return "../" * self.depth

    @property
    def csv_files(self) -> list[str]:
        return [t.csv_name for t in self.tables if t.csv_name]

    def table(self, headers: Sequence[Header], rows: Sequence[Sequence[object]], *, csv_name: str | None = None,
              numeric: Sequence[int] = (), table_id: str | None = None) -> Table:
        t = Table(headers, [[cell(v) for v in row] for row in rows], numeric=tuple(numeric), csv_name=csv_name,
                  id=table_id)
        self.tables.append(t)
        return t

    def write(self, out: Path, template: str, *, generated: str, **context: Any) -> Path:
        """Render ``template`` for this page into ``out``, with the CSV files of its tables beside it."""
        path = out / self.name
        path.parent.mkdir(parents=True, exist_ok=True)
        for t in self.tables:
            if t.csv_name:
                t.write_csv(path.parent)
        html = render(template, page=self, root=self.root, generated=generated, **context)
        path.write_text(html, encoding="utf-8")
        return path
