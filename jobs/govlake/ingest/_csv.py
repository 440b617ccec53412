"""CSV files: header through Python's csv module, rows streamed by Arrow's CSV reader.

The header record is read with ``csv.reader`` over an ``io.TextIOWrapper`` (so the matching sees
exactly the text sent). The data rows go through ``pyarrow.csv.open_csv`` — the same RFC 4180
rules as ``csv.reader`` (quoted fields with embedded newlines and doubled quotes; a quote inside an
unquoted field is literal; nothing trimmed) but about three times faster and in bounded memory.
A row with the wrong number of fields is not dropped: Arrow hands it to ``_Invalid`` with its
record number and text, ``csv.reader`` splits it, and it lands with the fields it has, the fields
beyond the header in ``_extra._overflow`` and ``_parse_error`` = ``expected N fields, got M``.
A file with a long run of such rows (all rows one field short, say) is finished by ``csv.reader``.
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
from govlake.ingest._bronze import BATCH_ROWS, Assembler, extra_json
from govlake.ingest._encoding import FileFacts, first_error
from govlake.ingest._headers import Layout, layout
from govlake.ingest._results import IngestError

BLOCK_BYTES = 8 << 20
"""Arrow parses the file in blocks of this size: one record batch (~30k rows of 300 bytes) each."""
MAX_PENDING = 50_000
"""Bad rows held at most before the rest of a file is read by ``csv.reader`` instead of Arrow."""
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
    """Arrow's invalid-row handler: remembers (data row number, text) and skips the row.

    Arrow reads on until it has a good row, so a long run of bad rows would pile up here; past
    ``MAX_PENDING`` it stops Arrow ("error") and the rest of the file goes through ``csv.reader``.
    """

    def __init__(self) -> None:
        self.rows: list[tuple[int, str]] = []
        self.overflowed = False

    def __call__(self, row) -> str:
        if row.number is None or len(self.rows) >= MAX_PENDING:  # number is known: use_threads=False
            self.overflowed = True
            return "error"
        self.rows.append((row.number - 1, row.text))  # Arrow counts the header as row 1
        return "skip"


def _batches(path: Path, facts: FileFacts, lay: Layout, delimiter: str, asm: Assembler) -> Iterator[pa.RecordBatch]:
    width = len(lay.headers)
    names = [f"f{i}" for i in range(width)]
    invalid = _Invalid()
    encoding = "utf8" if facts.encoding in ("utf-8", "utf-8-sig") else facts.encoding
    next_number = 1
    try:
        reader = pcsv.open_csv(
            str(path),
            read_options=pcsv.ReadOptions(encoding=encoding, use_threads=False, block_size=BLOCK_BYTES,
                                          column_names=names, skip_rows_after_names=1),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                            invalid_row_handler=invalid),
            convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                strings_can_be_null=False, quoted_strings_can_be_null=False))
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
                yield _bad(passed, lay, delimiter, facts.has_nul, asm)
        if invalid.rows:
            yield _bad(invalid.rows, lay, delimiter, facts.has_nul, asm)
        return
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if not invalid.overflowed:
            offset = first_error(path, facts.encoding or "utf-8")
            if offset is not None:
                raise IngestError(f"{path}: undecodable {facts.encoding} bytes at byte offset {offset}",
                                  path=path) from None
            raise IngestError(f"{path}: cannot parse the CSV: {exc}", path=path) from None
    yield from _python_batches(path, facts, lay, delimiter, asm, done=next_number - 1)


def _python_batches(path: Path, facts: FileFacts, lay: Layout, delimiter: str, asm: Assembler, *,
                    done: int) -> Iterator[pa.RecordBatch]:
    """The rows after the first ``done`` through ``csv.reader`` (same records as Arrow, slower)."""
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding=facts.encoding, errors="strict", newline="")
        records = (r for r in csv.reader(text, delimiter=delimiter) if r)
        try:
            for _ in itertools.islice(records, done + 1):  # the header and the rows already landed
                pass
            number = done + 1
            while chunk := list(itertools.islice(records, BATCH_ROWS)):
                yield _records(chunk, range(number, number + len(chunk)), lay, facts.has_nul, asm)
                number += len(chunk)
        except csv.Error as exc:
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


def _bad(rows: list[tuple[int, str]], lay: Layout, delimiter: str, has_nul: bool, asm: Assembler) -> pa.RecordBatch:
    """The rows Arrow skipped, split by ``csv.reader``."""
    records = [list(itertools.chain.from_iterable(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)))
               for _, text in rows]
    return _records(records, [n for n, _ in rows], lay, has_nul, asm)


def _records(records: list[list[str]], numbers, lay: Layout, has_nul: bool, asm: Assembler) -> pa.RecordBatch:
    """Records from ``csv.reader``: the fields they have, fields beyond the header as ``_overflow``,
    ``_parse_error`` for a wrong field count or a NUL byte."""
    width = len(lay.headers)
    fixed, errors, overflow = [], [], {}
    for k, fields in enumerate(records):
        error = None
        if has_nul and any("\x00" in f for f in fields):
            error = NUL_ERROR
        if len(fields) != width:
            count = f"expected {width} fields, got {len(fields)}"
            error = f"{count}; {error}" if error else count
            if len(fields) > width:
                overflow[k] = fields[width:]
            fields = fields[:width] + [None] * (width - len(fields))
        fixed.append(fields)
        errors.append(error)
    by_field = list(zip(*fixed)) if fixed else [()] * width
    columns = {col: list(by_field[i]) for col, i in lay.columns.items()}
    extra = extra_json([k for _, k in lay.extras], [by_field[i] for i, _ in lay.extras], overflow, n=len(records))
    return asm.batch(len(records), columns, numbers, extra=extra, parse_error=errors)
