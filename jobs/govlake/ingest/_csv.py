"""CSV files: header through Python's csv module, rows streamed by Arrow's CSV reader.

The header record is read with ``csv.reader`` over an ``io.TextIOWrapper`` (so the matching sees
exactly the text sent). The data rows go through ``pyarrow.csv.open_csv`` — the same RFC 4180
rules as ``csv.reader`` (quoted fields with embedded newlines and doubled quotes; a quote inside an
unquoted field is literal; nothing trimmed) but about three times faster and in bounded memory.
A row with the wrong number of fields is not dropped: Arrow hands it to ``_Invalid`` with its
record number and text, ``csv.reader`` splits it, and it lands with the fields it has, the fields
beyond the header in ``_extra._overflow`` and ``_parse_error`` = ``expected N fields, got M``.
Blank lines are not rows; ``_row_number`` counts records (header excluded), not physical lines.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from govlake.catalog import Resource
from govlake.ingest._bronze import Assembler, extra_json
from govlake.ingest._encoding import FileFacts, first_error
from govlake.ingest._headers import Layout, layout
from govlake.ingest._results import IngestError

BLOCK_BYTES = 8 << 20
"""Arrow parses the file in blocks of this size: one record batch (~30k rows of 300 bytes) each."""
NUL_ERROR = "NUL byte in a field"


def read_csv(path: Path, facts: FileFacts, resource: Resource, asm: Assembler) -> Iterator[pa.RecordBatch]:
    """Check the header of ``path`` now (IngestError when unusable); the batches come lazily."""
    assert facts.encoding is not None
    header, delimiter = _header(path, facts.encoding)
    lay = layout(resource, header)
    problem = lay.describe_missing(resource)
    if problem:
        raise IngestError(f"{path}: {problem}", path=path)
    return _batches(path, facts, lay, delimiter, asm)


def _header(path: Path, encoding: str) -> tuple[list[str], str]:
    """The first non-blank record, and the delimiter: ``,`` or a tab when the header has no comma."""
    for delimiter in (",", "\t"):
        with path.open("rb") as raw:
            text = io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")
            try:
                header = next((r for r in csv.reader(text, delimiter=delimiter) if r), None)
            except (csv.Error, UnicodeDecodeError) as exc:
                raise IngestError(f"{path}: cannot read the header row: {exc}", path=path) from None
        if header is None:
            raise IngestError(f"{path}: no header row (the file has only blank lines)", path=path)
        if len(header) > 1 or "\t" not in header[0]:
            return header, delimiter
    return header, delimiter


class _Invalid:
    """Arrow's invalid-row handler: remembers (data row number, text) and skips the row."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str]] = []

    def __call__(self, row) -> str:
        if row.number is None:  # only known with use_threads=False, which we use
            raise IngestError(f"row with {row.actual_columns} fields at an unknown position: {row.text[:200]}")
        self.rows.append((row.number - 1, row.text))  # Arrow counts the header as row 1
        return "skip"


def _batches(path: Path, facts: FileFacts, lay: Layout, delimiter: str, asm: Assembler) -> Iterator[pa.RecordBatch]:
    width = len(lay.headers)
    names = [f"f{i}" for i in range(width)]
    invalid = _Invalid()
    encoding = "utf8" if facts.encoding in ("utf-8", "utf-8-sig") else facts.encoding
    try:
        reader = pcsv.open_csv(
            str(path),
            read_options=pcsv.ReadOptions(encoding=encoding, use_threads=False, block_size=BLOCK_BYTES,
                                          column_names=names, skip_rows_after_names=1),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                            invalid_row_handler=invalid),
            convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                strings_can_be_null=False, quoted_strings_can_be_null=False))
        next_number = 1
        while True:
            try:
                rb = reader.read_next_batch()
            except StopIteration:
                break
            numbers, next_number = _numbers(rb.num_rows, next_number, invalid.rows)
            yield _good(rb, numbers, lay, facts.has_nul, asm)
            passed = [r for r in invalid.rows if r[0] < next_number]
            if passed:
                invalid.rows = [r for r in invalid.rows if r[0] >= next_number]
                yield _bad(passed, lay, delimiter, asm)
        if invalid.rows:
            yield _bad(invalid.rows, lay, delimiter, asm)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        offset = first_error(path, facts.encoding or "utf-8")
        if offset is not None:
            raise IngestError(f"{path}: undecodable {facts.encoding} bytes at byte offset {offset}",
                              path=path) from None
        raise IngestError(f"{path}: cannot parse the CSV: {exc}", path=path) from None


def _numbers(n: int, start: int, invalid: list[tuple[int, str]]) -> tuple[pa.Array, int]:
    """Row numbers of ``n`` good rows from ``start`` on, skipping the invalid rows' numbers."""
    taken = sorted(r[0] for r in invalid if r[0] >= start)
    ranges, left = [], n
    for bad in taken:
        if bad - start >= left:
            break
        ranges.append(range(start, bad))
        left -= bad - start
        start = bad + 1
    ranges.append(range(start, start + left))
    return pa.array(itertools.chain.from_iterable(ranges), pa.int64()), start + left


def _good(rb: pa.RecordBatch, numbers: pa.Array, lay: Layout, has_nul: bool, asm: Assembler) -> pa.RecordBatch:
    n = rb.num_rows
    columns = {col: rb.column(i) for col, i in lay.columns.items()}
    keys = [k for _, k in lay.extras]
    extra = extra_json(keys, [rb.column(i).to_pylist() for i, _ in lay.extras], n=n) if keys else None
    error = None
    if has_nul:
        hit = None
        for i in range(rb.num_columns):
            found = pc.match_substring(rb.column(i), "\x00")
            hit = found if hit is None else pc.or_(hit, found)
        if hit is not None and pc.any(hit).as_py():
            error = pc.if_else(hit, pa.scalar(NUL_ERROR), pa.scalar(None, pa.string()))
    return asm.batch(n, columns, numbers, extra=extra, parse_error=error)


def _bad(rows: list[tuple[int, str]], lay: Layout, delimiter: str, asm: Assembler) -> pa.RecordBatch:
    """The rows Arrow skipped, split by ``csv.reader``: the fields they have, the rest as overflow."""
    width = len(lay.headers)
    fields_by_row, errors, overflow = [], [], {}
    for k, (_, text) in enumerate(rows):
        fields = list(itertools.chain.from_iterable(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)))
        errors.append(f"expected {width} fields, got {len(fields)}"
                      + ("; " + NUL_ERROR if "\x00" in text else ""))
        if len(fields) > width:
            overflow[k] = fields[width:]
        fields_by_row.append(fields[:width] + [None] * (width - len(fields)))
    by_field = list(zip(*fields_by_row))
    columns = {col: list(by_field[i]) for col, i in lay.columns.items()}
    keys = [k for _, k in lay.extras]
    extra = extra_json(keys, [by_field[i] for i, _ in lay.extras], overflow, n=len(rows))
    return asm.batch(len(rows), columns, [r[0] for r in rows], extra=extra, parse_error=errors)
