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

Memory is bounded whatever the file holds: Arrow reads blocks of ``BLOCK_BYTES`` and a record that
does not fit in one (a 200 MB line, or an unclosed quote running to the end of the file) rejects
the file naming its row; ``csv.reader`` gets its lines through ``_Lines``, which refuses a record
longer than ``MAX_RECORD`` characters the same way; a header of more than ``MAX_COLUMNS`` fields is
refused before any row is read.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from govlake.catalog import Resource
from govlake.ingest._bronze import BATCH_ROWS, Assembler, extra_json
from govlake.ingest._encoding import FileFacts, undecodable
from govlake.ingest._headers import MAX_COLUMNS, Layout, layout
from govlake.ingest._paths import Source
from govlake.ingest._results import IngestError

BLOCK_BYTES = 8 << 20
"""Arrow parses the file in blocks of this size: one record batch (~30k rows of 300 bytes) each."""
MAX_PENDING = 50_000
"""Bad rows held at most before the rest of a file is read by ``csv.reader`` instead of Arrow."""
PENDING_BYTES = 64 << 20
"""… or bad rows' text held at most (bytes, roughly)."""
MAX_RECORD = 8 << 20
"""Characters of one record (header included) that ``csv.reader`` takes at most."""
NUL_ERROR = "NUL byte in a field"
csv.field_size_limit(max(csv.field_size_limit(), MAX_RECORD))  # a field may be as long as a record


class _TooLong(Exception):
    """A record ran past ``MAX_RECORD`` characters."""


class _Lines:
    """The physical lines of a text stream for ``csv.reader``, each read with a bound; raises
    ``_TooLong`` once the current record (reset by ``next_record``) passes ``limit`` characters."""

    def __init__(self, text: io.TextIOBase, limit: int):
        self.text, self.limit, self.pending = text, limit, 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self.text.readline(max(1, self.limit + 1 - self.pending))
        if not line:
            raise StopIteration
        self.pending += len(line)
        if self.pending > self.limit:
            raise _TooLong
        return line

    def next_record(self) -> None:
        self.pending = 0


def _records(text: io.TextIOBase, delimiter: str, limit: int) -> Iterator[list[str]]:
    """The non-blank records of ``text`` (``csv.reader``), none longer than ``limit`` characters."""
    lines = _Lines(text, limit)
    reader = csv.reader(lines, delimiter=delimiter)
    for record in reader:
        lines.next_record()
        if record:
            yield record


def _too_long(path, row: int | str) -> IngestError:
    return IngestError(f"{path}: {row}: a record longer than {MAX_RECORD:,} characters (a line or quoted field "
                       "that does not end: an unclosed quote?); nothing of the file landed", path=path)


def read_csv(source: Source, facts: FileFacts, resource: Resource, asm: Assembler) -> Iterator[pa.RecordBatch]:
    """Check the header of ``source`` now (IngestError when unusable); the batches come lazily."""
    assert facts.encoding is not None
    path = source.path
    header, delimiter = _header(source, facts)
    if len(header) > MAX_COLUMNS:
        raise IngestError(f"{path}: the header has {len(header):,} fields, more than the limit of "
                          f"{MAX_COLUMNS:,} columns", path=path)
    lay = layout(resource, header)
    problem = lay.describe_missing(resource)
    if problem:
        raise IngestError(f"{path}: {problem}", path=path)
    asm.headers = list(header)
    return _batches(source, facts, lay, delimiter, asm)


def _header(source: Source, facts: FileFacts) -> tuple[list[str], str]:
    """The first non-blank record, and the delimiter: ``,`` or a tab when the header has no comma."""
    path = source.path
    for delimiter in (",", "\t"):
        with source.reader() as raw:
            text = io.TextIOWrapper(raw, encoding=facts.encoding, errors="strict", newline="")
            try:
                header = next(_records(text, delimiter, MAX_RECORD), None)
            except _TooLong:
                raise _too_long(path, "the header row") from None
            except UnicodeDecodeError as exc:
                raise undecodable(source, facts) or IngestError(f"{path}: cannot read the header row: {exc}",
                                                                path=path) from None
            except csv.Error as exc:
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
        self.held = 0

    def __call__(self, row) -> str:
        if row.number is None or len(self.rows) >= MAX_PENDING or self.held > PENDING_BYTES:
            self.overflowed = True  # (number is known: use_threads=False)
            return "error"
        self.rows.append((row.number - 1, row.text))  # Arrow counts the header as row 1
        self.held += len(row.text)
        return "skip"

    def take(self, before: int) -> list[tuple[int, str]]:
        """The rows numbered below ``before``, no longer held."""
        passed = [r for r in self.rows if r[0] < before]
        if passed:
            self.rows = [r for r in self.rows if r[0] >= before]
            self.held = sum(len(t) for _, t in self.rows)
        return passed


def _batches(source: Source, facts: FileFacts, lay: Layout, delimiter: str, asm: Assembler
             ) -> Iterator[pa.RecordBatch]:
    path = source.path
    width = len(lay.headers)
    names = [f"f{i}" for i in range(width)]
    invalid = _Invalid()
    # A UTF-8 file was validated whole by the sniff, anything else reaches Arrow transcoded by Python's codec: the
    # fields are UTF-8 (a field is cut at ASCII bytes only, never inside a character), so Arrow does not validate
    # them again (check_utf8; 10-million-record city's ingest 25.5–27.3 → 23.6–25.4 s)
    encoding = "utf8" if facts.encoding in ("utf-8", "utf-8-sig") else facts.encoding
    next_number = 1
    try:
        reader = pcsv.open_csv(
            source.reader(),
            read_options=pcsv.ReadOptions(encoding=encoding, use_threads=False, block_size=BLOCK_BYTES,
                                          column_names=names, skip_rows_after_names=1),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                            invalid_row_handler=invalid),
            convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                strings_can_be_null=False, quoted_strings_can_be_null=False,
                                                check_utf8=False))
        while True:
            try:
                rb = reader.read_next_batch()
            except StopIteration:
                break
            numbers, next_number = _numbers(rb.num_rows, next_number, invalid.rows)
            yield _good(rb, numbers, lay, facts.has_nul, asm)
            passed = invalid.take(next_number)
            if passed:
                yield _bad(passed, lay, delimiter, facts.has_nul, asm)
        if invalid.rows:
            yield _bad(invalid.rows, lay, delimiter, facts.has_nul, asm)
        return
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if "straddl" in str(exc):  # a record longer than a block
            row = max([next_number] + [n + 1 for n, _ in invalid.rows])
            raise IngestError(f"{path}: row {row}: a record longer than {BLOCK_BYTES:,} bytes (a line or quoted "
                              "field that does not end: an unclosed quote?); nothing of the file landed",
                              path=path) from None
        if not invalid.overflowed:
            raise undecodable(source, facts) or IngestError(f"{path}: cannot parse the CSV: {exc}",
                                                            path=path) from None
    yield from _python_batches(source, facts, lay, delimiter, asm, done=next_number - 1)


def _python_batches(source: Source, facts: FileFacts, lay: Layout, delimiter: str, asm: Assembler, *,
                    done: int) -> Iterator[pa.RecordBatch]:
    """The rows after the first ``done`` through ``csv.reader`` (same records as Arrow, slower)."""
    path = source.path
    with source.reader() as raw:
        text = io.TextIOWrapper(raw, encoding=facts.encoding, errors="strict", newline="")
        records = _records(text, delimiter, MAX_RECORD)
        number, chunk = done + 1, []  # number: the first record of chunk
        try:
            for _ in itertools.islice(records, done + 1):  # the header and the rows already landed
                pass
            for record in records:
                chunk.append(record)
                if len(chunk) == BATCH_ROWS:
                    yield _fixed(chunk, range(number, number + len(chunk)), lay, facts.has_nul, asm)
                    number, chunk = number + len(chunk), []
            if chunk:
                yield _fixed(chunk, range(number, number + len(chunk)), lay, facts.has_nul, asm)
        except _TooLong:
            raise _too_long(path, f"row {number + len(chunk)}") from None
        except UnicodeDecodeError as exc:
            raise undecodable(source, facts) or IngestError(f"{path}: cannot parse the CSV: {exc}",
                                                            path=path) from None
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
    parts = [np.arange(r.start, r.stop, dtype=np.int64) for r in ranges]  # (not a Python int per row)
    return pa.array(parts[0] if len(parts) == 1 else np.concatenate(parts)), start + left


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
    return _fixed(records, [n for n, _ in rows], lay, has_nul, asm)


def _fixed(records: list[list[str]], numbers, lay: Layout, has_nul: bool, asm: Assembler) -> pa.RecordBatch:
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
