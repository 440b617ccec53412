"""JSON lines (one object per line) and JSON documents (an array of objects, or objects spread over
many lines), keyed by item names (or column names, or aliases).

Numbers keep the digits as sent (``12.50`` stays ``12.50``); ``true``/``false`` and nested values
become their JSON text. Keys matching no item go to ``_extra``.

JSON lines: ``_row_number`` is the line number; blank lines do not land. A line that is not a JSON
object still lands: ``_parse_error`` says why and ``_extra`` holds ``{"_raw": <the line>}``.

A document — the file starts with ``[`` (a JSON array, pretty-printed or on one line) or its first
object spans several lines — is read as a stream of values, never whole: each array element (or
each top-level object) is one row, ``_row_number`` its 1-based position. An element that is not an
object lands with ``_parse_error`` like a bad line; a syntax error rejects the whole file (after it
the elements cannot be told apart), naming the line and column.

Memory is bounded: a line or an element longer than ``MAX_RECORD`` characters rejects the file
naming its line (or element), and a batch is cut at ``BATCH_CHARS`` characters as well as rows.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from govlake.catalog import Resource
from govlake.ingest._bronze import BATCH_ROWS, Assembler
from govlake.ingest._encoding import FileFacts, undecodable
from govlake.ingest._headers import Matcher
from govlake.ingest._paths import Source
from govlake.ingest._results import IngestError
from govlake.ingest._values import as_text

MAX_RECORD = 1 << 20
"""Characters of one line (JSON lines) or one element (a document) at most."""
BATCH_CHARS = 64 << 20
"""A batch is landed once its rows hold this many characters (or ``BATCH_ROWS`` rows)."""
CHUNK = 1 << 20
_JSON_TYPES = {list: "an array", dict: "an object", bool: "a boolean", type(None): "null"}
_DECODER = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=str)
Parsed = tuple[int, dict | None, str | None, str | None]
"""(row number, the object or None, the parse error or None, the raw text kept for a bad row or None)."""


def read_jsonl(source: Source, facts: FileFacts, resource: Resource, asm: Assembler) -> Iterator[pa.RecordBatch]:
    """Decide now whether ``source`` is JSON lines or a document (IngestError when it is neither);
    the batches come lazily."""
    document = _is_document(source, facts)
    return _batches(source, facts, resource, asm, document=document)


def _text(source: Source, facts: FileFacts) -> io.TextIOWrapper:
    return io.TextIOWrapper(source.reader(), encoding=facts.encoding or "utf-8", errors="strict", newline="")


def _undecodable(source: Source, facts: FileFacts) -> Exception:
    return undecodable(source, facts) or IngestError(f"{source.path}: cannot decode the text", path=source.path)


def _is_document(source: Source, facts: FileFacts) -> bool:
    """True when the file starts with ``[`` or with an object spread over lines (see the module doc)."""
    try:
        with _text(source, facts) as text:
            number, line = _first_line(text)
            if line is None:
                return False
            first = line.lstrip()[:1]
            if first not in ("[", "{"):
                return False
            if len(line) > MAX_RECORD:  # one long line: an array on one line, or too long for a line
                return first == "["
            try:
                value = json.loads(line, parse_int=str, parse_float=str, parse_constant=str)
            except (json.JSONDecodeError, RecursionError):
                if first == "[" or _first_value_parses(source, facts):
                    return True
                following = _first_line(text)[1]  # JSON lines with a broken first line, or a broken document?
                return following is None or not isinstance(_parse(following)[0], dict)
            return isinstance(value, list) and _first_line(text)[1] is None  # one array, nothing after
    except UnicodeDecodeError:
        raise _undecodable(source, facts) from None


def _first_line(text: io.TextIOBase) -> tuple[int, str | None]:
    """(number, text) of the next non-blank line, read with a bound; (n, None) at the end."""
    number = 0
    while True:
        line = text.readline(MAX_RECORD + 1)
        if not line:
            return number, None
        number += 1
        if line.strip():
            return number, line


def _first_value_parses(source: Source, facts: FileFacts) -> bool:
    """Whether the file starts with one whole JSON value (an object spread over lines)."""
    with _text(source, facts) as text:
        try:
            next(_values(text, source), None)
        except IngestError:
            return False
    return True


def _parse(line: str) -> tuple[dict | None, str | None]:
    try:
        obj = json.loads(line, parse_int=str, parse_float=str, parse_constant=str)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} at column {exc.colno}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"
    if not isinstance(obj, dict):
        return None, f"invalid JSON: expected an object, got {_kind(obj, line.lstrip()[:1])}"
    return obj, None


def _kind(value: Any, first: str) -> str:
    if isinstance(value, str):  # numbers are parsed to their text
        return "a string" if first == '"' else "a number"
    return _JSON_TYPES.get(type(value), "a number")


def _lines(text: io.TextIOBase, source: Source) -> Iterator[Parsed]:
    number = 0
    while line := text.readline(MAX_RECORD + 1):
        number += 1
        if len(line) > MAX_RECORD:
            raise IngestError(f"{source.path}: line {number}: longer than {MAX_RECORD:,} characters; nothing of "
                              "the file landed", path=source.path)
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        obj, error = _parse(line)
        yield number, obj, error, line if obj is None else None


def _values(text: io.TextIOBase, source: Source) -> Iterator[Parsed]:
    """The elements of a top-level array, or the top-level values one after another."""
    doc = _Document(text, source)
    doc.skip_blanks()
    array = doc.peek() == "["
    if array:
        doc.pos += 1
    n = 0
    while True:
        doc.skip_blanks()
        if array and doc.peek() == "]":
            doc.pos += 1
            doc.skip_blanks()
            if doc.peek():
                raise doc.error("text after the end of the JSON array")
            return
        if not array and not doc.peek():
            return
        if array and n:
            if doc.peek() != ",":
                raise doc.error(f"expected ',' or ']' after element {n}")
            doc.pos += 1
            doc.skip_blanks()
        value, raw = doc.value(n + 1)
        n += 1
        if raw is None:
            yield n, value, None, None
        else:
            yield n, None, f"invalid JSON: expected an object, got {_kind(value, raw[:1])}", raw


class _Document:
    """A window on a text stream for ``raw_decode``: filled as needed, dropped as consumed."""

    def __init__(self, text: io.TextIOBase, source: Source):
        self.text, self.source = text, source
        self.buf, self.pos, self.eof, self.lines_before = "", 0, False, 0

    def fill(self) -> None:
        if self.pos > CHUNK or self.pos >= len(self.buf):
            self.lines_before += self.buf.count("\n", 0, self.pos)
            self.buf, self.pos = self.buf[self.pos:], 0
        chunk = self.text.read(CHUNK)
        self.eof = not chunk
        self.buf += chunk

    def peek(self) -> str:
        while self.pos >= len(self.buf) and not self.eof:
            self.fill()
        return self.buf[self.pos:self.pos + 1]

    def skip_blanks(self) -> None:
        while self.peek() in (" ", "\t", "\r", "\n", "\ufeff"):
            self.pos += 1
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1

    def where(self, pos: int) -> str:
        line = self.lines_before + self.buf.count("\n", 0, pos) + 1
        column = pos - (self.buf.rfind("\n", 0, pos) + 1) + 1
        return f"line {line}, column {column}"

    def error(self, what: str, pos: int | None = None) -> IngestError:
        return IngestError(f"{self.source.path}: not JSON lines (one object per line) nor a readable JSON array "
                           f"of objects: {what} at {self.where(self.pos if pos is None else pos)}; nothing of the "
                           "file landed", path=self.source.path)

    def value(self, n: int) -> tuple[Any, str | None]:
        """Decode the value at ``pos`` (element ``n``), reading more of the stream as needed; its text
        too when it is not an object."""
        while True:  # pos stays at the value's start until it is decoded (fill() may move both)
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
                if end < len(self.buf) or self.eof:  # a number might go on in the next chunk
                    raw = None if isinstance(value, dict) else self.buf[self.pos:end]
                    self.pos = end
                    return value, raw
            except json.JSONDecodeError as exc:
                cut = exc.pos + 16 >= len(self.buf) or exc.msg.startswith("Unterminated string")
                if self.eof or not cut:
                    raise self.error(f"invalid JSON in element {n}: {exc.msg}", exc.pos) from None
            except RecursionError:
                raise self.error(f"element {n} is nested too deeply") from None
            if len(self.buf) - self.pos > MAX_RECORD:
                raise IngestError(f"{self.source.path}: element {n} (from {self.where(self.pos)}) is longer than "
                                  f"{MAX_RECORD:,} characters, or a string in it does not end; nothing of the "
                                  "file landed", path=self.source.path)
            self.fill()


def _batches(source: Source, facts: FileFacts, resource: Resource, asm: Assembler, *, document: bool
             ) -> Iterator[pa.RecordBatch]:
    matcher = Matcher(resource)
    known: dict[str, str | None] = {}
    items = [i.column for i in resource.items]
    with _text(source, facts) as text:
        parsed = _values(text, source) if document else _lines(text, source)
        while True:
            rows: list[dict[str, str | None]] = []
            numbers, extras, errors = [], [], []
            held = 0
            try:
                for number, obj, error, raw in parsed:
                    row: dict[str, str | None] = {}
                    extra: dict = {"_raw": raw} if obj is None else {}
                    for key, value in (obj or {}).items():
                        if key not in known:
                            known[key] = matcher.column(key)
                            asm.headers.append(key)
                        column = known[key]
                        if column is not None and column not in row:
                            row[column] = as_text(value)
                        else:
                            extra[key] = value
                    rows.append(row)
                    numbers.append(number)
                    errors.append(error)
                    extras.append(json.dumps(extra, ensure_ascii=False) if extra else None)
                    held += sum(len(v) for v in row.values() if v) + len(extras[-1] or "")
                    if len(rows) == BATCH_ROWS or held > BATCH_CHARS:
                        break
            except UnicodeDecodeError:
                raise _undecodable(source, facts) from None
            if not rows:
                return
            columns = {c: [r.get(c) for r in rows] for c in items}
            yield asm.batch(len(rows), columns, numbers, extra=extras, parse_error=errors)
