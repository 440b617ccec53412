"""Reading the bureau's tables row by row, and reporting bad rows as ``file:row: rule: message``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from govlake.catalog import Catalog


class SharingInputError(ValueError):
    """A sharing input is invalid; ``problems`` lists ``file:row: rule: message`` strings."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid sharing input:\n  " + "\n  ".join(problems))


class Problems:
    """Collects problems of one input; ``raise_if_any`` raises them all at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, rule: str, message: str) -> None:
        self.items.append(f"{where}: {rule}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise SharingInputError(self.items)


Row = tuple[str, dict[str, Any]]
"""(where, values by header): ``where`` is ``file:row`` or ``file:sheet:row`` (1-based, header = 1)."""


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _rows(where: str, header: list[Any], body: Iterator[tuple], columns: dict[str, str],
          problems: Problems, optional: dict[str, str] | None = None) -> Iterator[Row]:
    """Rows keyed by model field name; a missing column is one problem and no rows. ``optional``
    columns are read when the header has them (a field absent from a row keeps its default)."""
    names = [str(h).strip() if h is not None else "" for h in header]
    missing = [c for c in columns if c not in names]
    if missing:
        problems.add(f"{where}:1", "columns", f"missing column(s) {', '.join(missing)}; the header is {names}")
        return
    known = columns | (optional or {})
    index = {known[n]: i for i, n in enumerate(names) if n in known}
    for number, raw in enumerate(body, start=2):
        values = [_cell(v) for v in raw]
        if all(v is None for v in values):
            continue
        yield f"{where}:{number}", {f: values[i] if i < len(values) else None for f, i in index.items()}


def read_csv_rows(path: Path, columns: dict[str, str], problems: Problems,
                  optional: dict[str, str] | None = None) -> Iterator[Row]:
    """Rows of a CSV in UTF-8 (with or without BOM) or, failing that, GBK (``optional``: see :func:`_rows`)."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gbk")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, [])
    yield from _rows(str(path), header, reader, columns, problems, optional)


def read_sheet_rows(path: Path, book, sheet: str, columns: dict[str, str], problems: Problems) -> Iterator[Row]:
    """Rows of one worksheet of an openpyxl workbook; a missing sheet is one problem."""
    if sheet not in book.sheetnames:
        problems.add(f"{path}:{sheet}", "sheet", f"missing sheet {sheet}; the workbook has {book.sheetnames}")
        return
    rows = book[sheet].iter_rows(values_only=True)
    header = next(rows, ())
    yield from _rows(f"{path}:{sheet}", list(header), rows, columns, problems)


def parse(model: type[BaseModel], where: str, values: dict[str, Any], headers: dict[str, str],
          prefix: str, problems: Problems) -> Any:
    """``model`` from one row, or None after recording each field error as ``<prefix>.required``
    (an empty required cell) or ``<prefix>.format`` (a value of the wrong form)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        by_field = {v: k for k, v in headers.items()}
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            column = by_field.get(field, field)
            rule = "required" if err["type"] == "missing" or (
                err["type"].endswith("_type") and err.get("input") is None) else "format"
            message = err["msg"].removeprefix("Value error, ")
            value = err.get("input")
            shown = f" (got {value!r})" if value is not None and not isinstance(value, dict) else ""
            problems.add(where, f"{prefix}.{rule}", f"{column}: {message}{shown}" if column else message)
        return None


_STAMP = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")


def to_datetime(value: Any) -> Any:
    """``2026-10-09``, ``2026/10/9 14:30`` or ``2026-10-09 14:30:05`` (or an Excel date) as a datetime;
    anything else is returned unchanged for the model to reject."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    if isinstance(value, str) and (m := _STAMP.match(value)):
        y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
        try:
            return dt.datetime(y, mo, d, h, mi, s)
        except ValueError:
            return value
    return value


def department_code(catalog: Catalog, value: str | None) -> str | None:
    """A department's code from its code or its full name (as in departments.yml); None if unknown."""
    if value is None:
        return None
    if value in catalog.departments:
        return value
    for dep in catalog.departments.values():
        if value == dep.name:
            return dep.code
    return None
