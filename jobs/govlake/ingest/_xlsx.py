"""Excel workbooks through python-calamine: the catalog's sheet (else the first), cells as displayed text.

The header is the first row, among the first ten non-empty ones, that has every required item
(else the first non-empty row, which is then reported as missing them: a title row above the header
is common in department exports). ``_row_number`` is the sheet row minus the header row, so row 1
is the row right under the header and blank rows keep their place without landing.

Before calamine loads anything, :func:`~govlake.ingest._xlsx_limits.check_workbook` refuses zip
bombs and sheets spanning more than the cell budget (calamine would allocate the whole span).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from python_calamine import (
    CalamineError,
    CalamineWorkbook,
    PasswordError,
    XmlError,
    ZipError,
)

from govlake.catalog import Resource
from govlake.ingest._bronze import BATCH_ROWS, Assembler
from govlake.ingest._headers import Layout, Matcher, layout
from govlake.ingest._paths import Source
from govlake.ingest._results import IngestError
from govlake.ingest._values import as_text
from govlake.ingest._xlsx_limits import check_workbook

HEADER_SEARCH_ROWS = 10


def cell_text(value: Any) -> str | None:
    """A cell as Excel shows it by default: ``2024``, ``1.5``, ``2024-04-01``, ``TRUE``."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return as_text(value)


def read_xlsx(source: Source, resource: Resource, asm: Assembler) -> Iterator[pa.RecordBatch]:
    """Find the sheet and header of ``source`` now (IngestError when unusable); the batches come lazily."""
    path = source.path
    wanted = resource.source.sheet
    check_workbook(source, wanted)
    try:
        with source.reader() as raw:
            book = CalamineWorkbook.from_filelike(raw)
        names = book.sheet_names
        if wanted is not None and wanted not in names:
            raise IngestError(f"{path}: no sheet named {wanted!r}; the workbook has: {', '.join(names)}", path=path)
        if not names:
            raise IngestError(f"{path}: the workbook has no sheets", path=path)
        rows = iter(book.get_sheet_by_name(wanted or names[0]).iter_rows())
    except IngestError:
        raise
    except (CalamineError, PasswordError, XmlError, ZipError, OSError, ValueError) as exc:
        raise IngestError(f"{path}: not a readable Excel workbook: {exc}", path=path) from None
    seen: list[tuple[int, list]] = []
    for index, row in enumerate(rows):
        if any(_text(v) for v in row):
            seen.append((index, row))
            if len(seen) == HEADER_SEARCH_ROWS:
                break
    if not seen:
        raise IngestError(f"{path}: the sheet is empty", path=path)
    matcher = Matcher(resource)
    header_at, lay = None, None
    for index, row in seen:
        candidate = layout(resource, [_text(v) or "" for v in row], matcher)
        if not candidate.missing_required(resource):
            header_at, lay = index, candidate
            asm.headers = list(candidate.headers)
            break
    if lay is None:
        first = layout(resource, [_text(v) or "" for v in seen[0][1]], matcher)
        raise IngestError(f"{path}: {first.describe_missing(resource)}", path=path)
    after = [(i, r) for i, r in seen if i > header_at]
    remaining = ((i, r) for i, r in enumerate(rows, start=seen[-1][0] + 1))
    return _batches(itertools.chain(after, remaining), header_at, lay, asm)


def _text(value: Any) -> str | None:
    text = cell_text(value)
    return text if text else None


def _batches(rows, header_at: int, lay: Layout, asm: Assembler) -> Iterator[pa.RecordBatch]:
    width = len(lay.headers)
    blank_header = {i for i, h in enumerate(lay.headers) if not h.strip()}
    while True:
        chunk = []
        for index, row in rows:
            cells = [cell_text(v) for v in row]
            if any(cells):
                chunk.append((index - header_at, cells + [None] * (width - len(cells))))
                if len(chunk) == BATCH_ROWS:
                    break
        if not chunk:
            return
        columns = {col: [cells[i] for _, cells in chunk] for col, i in lay.columns.items()}
        extra = []
        for _, cells in chunk:
            obj = {k: cells[i] for i, k in lay.extras if not (i in blank_header and not cells[i])}
            over = [c for c in cells[width:] if c]
            if over:
                obj["_overflow"] = over
            extra.append(json.dumps(obj, ensure_ascii=False) if obj else None)
        yield asm.batch(len(chunk), columns, [n for n, _ in chunk], extra=extra)
