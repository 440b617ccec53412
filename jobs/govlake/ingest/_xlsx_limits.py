"""What a workbook holds, checked before calamine loads it: calamine makes a sheet one dense grid
from its first to its last cell (32 bytes a cell), so one cell at XFD1048576 asks for 512 GiB.

An .xlsx is a zip of XML parts. :func:`check_workbook` refuses a part that would expand far beyond
the file (a zip bomb) or beyond ``MAX_PART_BYTES``, then streams the sheet's XML once, in chunks,
for the span of its cells: the fast way counts the cell tags and reads the ``<c r="…">`` references
Excel, WPS, xlsxwriter and openpyxl write; a sheet written otherwise (cells without ``r``, which
calamine places after the previous cell, prefixed tags, other quoting) is walked by expat, as
calamine would place its cells. A sheet spanning more than ``MAX_COLUMNS`` columns or
``MAX_CELLS`` cells is refused, naming the far cell. An OpenDocument spreadsheet is refused (save
it as .xlsx); an old .xls holds at most 65,536 × 256 cells, within the budget.
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
import xml.parsers.expat
import zipfile
from pathlib import Path

from govlake.ingest._headers import MAX_COLUMNS
from govlake.ingest._paths import Source
from govlake.ingest._results import IngestError

MAX_CELLS = 25_000_000
"""Cells (rows × columns of the span) a sheet may have: ~800 MB of calamine's grid."""
MAX_PART_BYTES = 1 << 30
MAX_EXPANSION = 100
"""A part may expand to at most this many times the file (or ``EXPANSION_FLOOR``, when larger)."""
EXPANSION_FLOOR = 64 << 20
CHUNK = 8 << 20
_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_CELL_COL = re.compile(rb'<c r="\$?([A-Za-z]{1,4})')
_CELL_ROW = re.compile(rb'<c r="\$?[A-Za-z]{1,4}\$?([0-9]{1,10})')
_BLANKS = bytes.maketrans(b"\t\n\r/>", b"     ")


def column_name(index: int) -> str:
    """``0`` → ``A``, ``16383`` → ``XFD``."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def _column_index(letters: bytes | str) -> int:
    n = 0
    for ch in letters.upper() if isinstance(letters, str) else letters.decode().upper():
        n = n * 26 + ord(ch) - 64
    return n - 1


class Span:
    """First and last row and column (0-based) of the cells seen."""

    def __init__(self) -> None:
        self.rows: tuple[int, int] | None = None
        self.cols: tuple[int, int] | None = None

    def add(self, rows: tuple[int, int], cols: tuple[int, int]) -> None:
        self.rows = rows if self.rows is None else (min(self.rows[0], rows[0]), max(self.rows[1], rows[1]))
        self.cols = cols if self.cols is None else (min(self.cols[0], cols[0]), max(self.cols[1], cols[1]))

    def problem(self, sheet: str) -> str | None:
        if self.rows is None or self.cols is None:
            return None
        height, width = self.rows[1] - self.rows[0] + 1, self.cols[1] - self.cols[0] + 1
        if width <= MAX_COLUMNS and width * height <= MAX_CELLS:
            return None
        first = f"{column_name(self.cols[0])}{self.rows[0] + 1}"
        far = f"{column_name(self.cols[1])}{self.rows[1] + 1}"
        return (f"sheet {sheet!r} has cells from {first} to {far} ({width:,} columns × {height:,} rows), beyond "
                f"the limit of {MAX_COLUMNS:,} columns / {MAX_CELLS:,} cells")


def check_workbook(source: Source, sheet: str | None) -> None:
    """Refuse (IngestError) a zip bomb, an OpenDocument file, or a sheet (``sheet``, else the first)
    spanning too many cells; other files (an .xls) pass, and calamine reports what it cannot read."""
    path, size = source.path, source.stat.st_size
    with source.reader() as raw:
        if raw.read(4) != b"PK\x03\x04":
            return
        raw.seek(0)
        try:
            with zipfile.ZipFile(raw) as book:
                _check_sizes(path, book, size)
                names = set(book.namelist())
                if "content.xml" in names and "xl/workbook.xml" not in names:
                    raise IngestError(f"{path}: an OpenDocument spreadsheet (.ods) is not read; save it as .xlsx",
                                      path=path)
                found = _sheet_part(book, sheet)
                if found is None:
                    return
                name, part = found
                problem = scan(book, part).problem(name)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ET.ParseError, xml.parsers.expat.ExpatError,
                ValueError, KeyError, EOFError, NotImplementedError, RuntimeError) as exc:
            raise IngestError(f"{path}: not a readable Excel workbook: {exc}", path=path) from None
    if problem:
        raise IngestError(f"{path}: {problem}", path=path)


def _check_sizes(path: Path, book: zipfile.ZipFile, size: int) -> None:
    bound = min(MAX_PART_BYTES, max(EXPANSION_FLOOR, MAX_EXPANSION * size))
    for info in book.infolist():
        if info.file_size > bound:
            raise IngestError(f"{path}: its part {info.filename} would expand to {info.file_size:,} bytes from "
                              f"a file of {size:,} bytes, beyond the limit of {bound:,} (a zip bomb?)", path=path)


def _sheet_part(book: zipfile.ZipFile, wanted: str | None) -> tuple[str, str] | None:
    """(sheet name, zip part) of ``wanted`` (else the first sheet); None when there is no such sheet."""
    workbook = ET.fromstring(book.read("xl/workbook.xml"))
    sheets = [(s.get("name"), s.get(_REL)) for s in workbook.iter(f"{_MAIN}sheet")]
    chosen = next(((n, r) for n, r in sheets if wanted is None or n == wanted), None)
    if chosen is None:
        return None
    rels = ET.fromstring(book.read("xl/_rels/workbook.xml.rels"))
    target = next((r.get("Target") for r in rels if r.get("Id") == chosen[1]), None)
    if not target:
        return None
    part = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
    return str(chosen[0]), part


def scan(book: zipfile.ZipFile, part: str) -> Span:
    """The span of the cells of sheet ``part``: the fast way when every cell tag is ``<c r="…"``."""
    span, tail = Span(), b""
    with book.open(part) as xml:
        while True:
            chunk = xml.read(CHUNK)
            data = tail + chunk
            cut = data.rfind(b"<") if chunk else len(data)
            body, tail = data[:cut], data[cut:]
            if len(tail) > CHUNK or not _fast(body, span):
                return _walk(book, part)
            if not chunk:
                return span


def _fast(body: bytes, span: Span) -> bool:
    """Add the cells of ``body`` (whole tags) to ``span``; False when some cell tag is not ``<c r="…"``."""
    blank = body.translate(_BLANKS)
    tags = blank.count(b"<c ") + blank.count(b":c ")
    if not tags:
        return True
    refs = _CELL_ROW.findall(body)
    if len(refs) != tags:
        return False
    rows = {int(r) for r in set(refs)}
    cols = {_column_index(c) for c in set(_CELL_COL.findall(body))}
    span.add((min(rows) - 1, max(rows) - 1), (min(cols), max(cols)))
    return True


def _walk(book: zipfile.ZipFile, part: str) -> Span:
    """The span as calamine places cells: ``r`` when given, else after the previous cell / row."""
    span = Span()
    state = {"row": -1, "col": -1}

    def start(name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition(":")[2]
        if local == "row":
            r = attrs.get("r")
            state["row"] = int(r) - 1 if r and r.isdigit() else state["row"] + 1
            state["col"] = -1
        elif local == "c":
            ref = re.fullmatch(r"\$?([A-Za-z]{1,4})\$?([0-9]{1,10})", attrs.get("r", "").strip())
            if ref:
                state["col"], row = _column_index(ref[1]), int(ref[2]) - 1
            else:
                state["col"], row = state["col"] + 1, max(state["row"], 0)
            span.add((row, row), (state["col"], state["col"]))

    parser = xml.parsers.expat.ParserCreate()
    parser.StartElementHandler = start
    with book.open(part) as xml_part:
        while chunk := xml_part.read(CHUNK):
            parser.Parse(chunk, False)
    parser.Parse(b"", True)
    return span
