"""JSON lines: one object per line, keyed by item names (or column names, or aliases).

Numbers keep the digits as sent (``12.50`` stays ``12.50``); ``true``/``false`` and nested values
become their JSON text. A line that is not a JSON object still lands: ``_parse_error`` says why and
``_extra`` holds ``{"_raw": <the line>}``. Keys matching no item go to ``_extra``. ``_row_number``
is the line number; blank lines do not land.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from govlake.catalog import Resource
from govlake.ingest._bronze import BATCH_ROWS, Assembler
from govlake.ingest._encoding import FileFacts, first_error
from govlake.ingest._headers import Matcher
from govlake.ingest._results import IngestError
from govlake.ingest._values import as_text

_JSON_TYPES = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def read_jsonl(path: Path, facts: FileFacts, resource: Resource, asm: Assembler) -> Iterator[pa.RecordBatch]:
    return _batches(path, facts, resource, asm)


def _parse(line: str) -> tuple[dict | None, str | None]:
    try:
        obj = json.loads(line, parse_int=str, parse_float=str, parse_constant=str)
    except json.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc.msg} at column {exc.colno}"
    if not isinstance(obj, dict):
        kind = _JSON_TYPES.get(type(obj), "a number")
        if isinstance(obj, str) and not line.lstrip().startswith('"'):
            kind = "a number"  # numbers are parsed to their text
        return None, f"invalid JSON: expected an object, got {kind}"
    return obj, None


def _batches(path: Path, facts: FileFacts, resource: Resource, asm: Assembler) -> Iterator[pa.RecordBatch]:
    matcher = Matcher(resource)
    known: dict[str, str | None] = {}
    items = [i.column for i in resource.items]
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding=facts.encoding or "utf-8", errors="strict", newline="")
        lines = enumerate(text, start=1)
        while True:
            rows: list[dict[str, str | None]] = []
            numbers, extras, errors = [], [], []
            try:
                for number, line in lines:
                    line = line.rstrip("\r\n")
                    if not line.strip():
                        continue
                    obj, error = _parse(line)
                    row: dict[str, str | None] = {}
                    extra: dict = {"_raw": line} if obj is None else {}
                    for key, value in (obj or {}).items():
                        if key not in known:
                            known[key] = matcher.column(key)
                        column = known[key]
                        if column is not None and column not in row:
                            row[column] = as_text(value)
                        else:
                            extra[key] = value
                    rows.append(row)
                    numbers.append(number)
                    errors.append(error)
                    extras.append(json.dumps(extra, ensure_ascii=False) if extra else None)
                    if len(rows) == BATCH_ROWS:
                        break
            except UnicodeDecodeError:
                offset = first_error(path, facts.encoding or "utf-8")
                raise IngestError(f"{path}: undecodable {facts.encoding} bytes at byte offset {offset}",
                                  path=path) from None
            if not rows:
                return
            columns = {c: [r.get(c) for r in rows] for c in items}
            yield asm.batch(len(rows), columns, numbers, extra=extras, parse_error=errors)
