"""Sinks that write frames the way each department exports: CSV, JSON lines, xlsx, a database."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

BOM = "\ufeff"
CHUNK = 10_000
"""Rows joined into one piece of text at a time (bounds the text held in memory)."""


class CsvSink:
    """CSV in ``encoding`` (``utf-8-sig`` = UTF-8 with BOM, ``gbk``), CRLF rows, RFC 4180 quoting.

    Rows are joined as plain text; fields with a comma, quote or line break are quoted. Only
    the ``free_text`` columns are searched for them; a count of those bytes in the encoded
    chunk proves the other columns free of them (else every column is searched).
    """

    def __init__(self, path: Path, header: list[str], encoding: str, *, free_text: set[str] = frozenset()):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("wb")
        self._codec = "utf-8" if encoding == "utf-8-sig" else encoding
        self._free = free_text
        if encoding == "utf-8-sig":
            self._file.write(BOM.encode("utf-8"))
        self._file.write(_lines([_quoted(header)]).encode(self._codec))

    def write(self, frame, columns: list[str]) -> None:
        n = frame.n
        fields: list[list[str]] = []  # one list per output field; runs of constant columns merged
        checked: list[str] = []  # text whose specials are content, not separators
        i = 0
        while i < len(columns):
            j = i
            while j < len(columns) and _constant(frame, columns[j]):
                j += 1
            if j > i:  # columns i..j-1 hold one value each: join them once
                values = _quoted([frame[c][0] for c in columns[i:j]])
                fields.append([",".join(values)] * n)
                checked.extend(values * n if any(_has_special(v) for v in values) else ())
                i = j
                continue
            values = frame[columns[i]].tolist()
            if columns[i] in self._free:
                values = _quoted(values)
                checked.extend(values)
            fields.append(values)
            i += 1
        data = [_lines(zip(*(f[i:i + CHUNK] for f in fields))).encode(self._codec) for i in range(0, n, CHUNK)]
        if not _only_separators(data, n, len(columns), checked):
            fields = [_quoted(frame[c].tolist()) for c in columns]
            data = [_lines(zip(*(f[i:i + CHUNK] for f in fields))).encode(self._codec) for i in range(0, n, CHUNK)]
        self._file.writelines(data)

    def close(self) -> None:
        self._file.close()


_SPECIAL = (",", '"', "\n", "\r")


def _constant(frame, column: str) -> bool:
    if column not in frame.constant or frame.n == 0:
        return False
    values = frame[column].tolist()
    return values.count(values[0]) == len(values)  # identity makes this cheap


def _has_special(v: str) -> bool:
    return "\n" in v or "," in v or '"' in v or "\r" in v


def _quoted(values: list[str]) -> list[str]:
    """``values`` with the fields that need it quoted (RFC 4180)."""
    joined = "\x1f".join(values)
    if not any(ch in joined for ch in _SPECIAL):
        return values
    return ['"' + v.replace('"', '""') + '"' if ("\n" in v or "," in v or '"' in v or "\r" in v) else v
            for v in values]


def _lines(rows) -> str:
    text = "\r\n".join(map(",".join, rows))
    return text + "\r\n" if text else text


def _only_separators(chunks: list[bytes], n: int, k: int, checked: list[str]) -> bool:
    """True when every comma, quote and line break of ``data`` is a separator or lies in the
    ``checked`` (already quoted) values. ASCII bytes never occur inside GBK or UTF-8
    multi-byte characters, so counting bytes is exact."""
    inside = "\x1f".join(checked)

    def count(ch: str) -> int:
        return sum(c.count(ch.encode("ascii")) for c in chunks) - inside.count(ch)

    return count(",") == n * (k - 1) and count('"') == 0 and count("\n") == n and count("\r") == n


class JsonlSink:
    """One JSON object per line (UTF-8, no escapes); ``numbers`` columns written as JSON numbers."""

    def __init__(self, path: Path, names: list[str], numbers: dict[str, type]):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", encoding="utf-8", newline="\n")
        self._names = names
        self._numbers = numbers

    def write(self, frame, columns: list[str]) -> None:
        out = []
        convert = [(i, self._numbers[c]) for i, c in enumerate(columns) if c in self._numbers]
        for row in frame.rows(columns):
            values = list(row)
            for i, typ in convert:
                values[i] = _number(values[i], typ)
            out.append(json.dumps(dict(zip(self._names, values)), ensure_ascii=False))
        self._file.write("\n".join(out) + "\n")

    def close(self) -> None:
        self._file.close()


def _number(value, typ):
    if value is None:
        return None
    try:
        return typ(value)
    except ValueError:
        return value  # a defect (e.g. spaces) stays text


class XlsxSink:
    """One worksheet, streamed (xlsxwriter constant_memory); ``numbers`` columns as numeric cells.

    A date column value that is all digits and five long is an Excel serial number and is
    written as a number cell too, as Excel would hold it.
    """

    def __init__(self, path: Path, sheet: str, header: list[str], *, numbers: set[str],
                 dates: set[str], created: dt.datetime):
        import xlsxwriter

        path.parent.mkdir(parents=True, exist_ok=True)
        self._book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
        self._book.set_properties({"created": created, "author": "govlake generate"})  # reproducible bytes
        self._sheet = self._book.add_worksheet(sheet)
        bold = self._book.add_format({"bold": True})
        for j, name in enumerate(header):
            self._sheet.write_string(0, j, name, bold)
        self._numbers = numbers
        self._dates = dates
        self._row = 1

    def write(self, frame, columns: list[str]) -> None:
        sheet = self._sheet
        kinds = ["n" if c in self._numbers else "d" if c in self._dates else "s" for c in columns]
        for row in frame.rows(columns):
            for j, (value, kind) in enumerate(zip(row, kinds)):
                if value is None or value == "":
                    continue
                if (kind == "n" and value.isdigit()) or (kind == "d" and value.isdigit() and len(value) == 5):
                    sheet.write_number(self._row, j, int(value))
                else:
                    sheet.write_string(self._row, j, value)
            self._row += 1

    def close(self) -> None:
        self._book.close()


class DbSink:
    """A table of TEXT columns in any SQLAlchemy database (SQLite file, PostgreSQL)."""

    def __init__(self, url_or_engine, table: str, columns: list[str], *, replace: bool = True,
                 index: str | None = None):
        import sqlalchemy as sa

        self._engine = sa.create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        self._own = isinstance(url_or_engine, str)
        meta = sa.MetaData()
        self._table = sa.Table(table, meta, *(sa.Column(c, sa.Text) for c in columns))
        if index:
            sa.Index(f"ix_{table}_{index}", self._table.c[index])
        with self._engine.begin() as conn:
            if replace:
                self._table.drop(conn, checkfirst=True)
            meta.create_all(conn)

    def write(self, frame, columns: list[str]) -> None:
        rows = [dict(zip(columns, r)) for r in frame.rows(columns)]
        with self._engine.begin() as conn:
            conn.execute(self._table.insert(), rows)

    def close(self) -> None:
        if self._own:
            self._engine.dispose()
