"""The fields a department source offers: a file's header row, JSON keys, a table's columns.

Read for lineage only, so cheaply: the first record of a CSV, the keys of the first JSON lines,
the first rows of the sheet, the database catalog. Source headers map to bronze columns with the
ingest matcher (item name, column, aliases after trimming and full-width folding).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path

import sqlalchemy as sa

from govlake.catalog import Resource
from govlake.ingest._headers import Matcher, layout

HEAD_BYTES = 1 << 16
JSON_LINES = 100
SHEET_ROWS = 10


def _decode(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return head.decode("utf-16", errors="ignore")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return head.decode(encoding)
        except UnicodeDecodeError as exc:
            if exc.start > len(head) - 4:  # a character cut at the end of the head
                return head[: exc.start].decode(encoding)
    return head.decode("gb18030", errors="replace")


def csv_header(path: Path) -> list[str]:
    with path.open("rb") as f:
        text = _decode(f.read(HEAD_BYTES))
    for delimiter in (",", "\t"):
        header = next((r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if r), [])
        if len(header) > 1 or not header or "\t" not in header[0]:
            return header
    return header


def jsonl_keys(path: Path) -> list[str]:
    keys: dict[str, None] = {}
    with path.open("rb") as f:
        lines = _decode(f.read(HEAD_BYTES)).splitlines()
    for line in lines[:JSON_LINES]:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            keys.update(dict.fromkeys(obj))
    return list(keys)


def xlsx_header(path: Path, resource: Resource) -> list[str]:
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(str(path))
    names = book.sheet_names
    sheet = resource.source.sheet if resource.source.sheet in names else names[0]
    rows = []
    for row in book.get_sheet_by_name(sheet).iter_rows():
        cells = ["" if v is None else str(v).strip() for v in row]
        if any(cells):
            rows.append(cells)
            if len(rows) == SHEET_ROWS:
                break
    matcher = Matcher(resource)
    for cells in rows:
        if not layout(resource, cells, matcher).missing_required(resource):
            return cells
    return rows[0] if rows else []


def file_fields(path: Path, resource: Resource) -> list[str]:
    """The header of a department export (empty when it cannot be read)."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm", ".xls", ".ods"):
            return xlsx_header(path, resource)
        if suffix in (".jsonl", ".ndjson", ".json"):
            return jsonl_keys(path)
        return csv_header(path)
    except Exception:  # an unreadable file was rejected by ingest; its lineage is just the file
        return []


def db_fields(url: str, table: str) -> list[tuple[str, str | None]]:
    """(column, type) of a source database table (empty when it cannot be inspected)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [(c["name"], str(c["type"])) for c in sa.inspect(conn).get_columns(table)]
    except Exception:
        return []
    finally:
        engine.dispose()


def header_columns(resource: Resource, headers: list[str]) -> tuple[dict[str, str], list[str]]:
    """Bronze column → the source header it is read from, and the headers landing in ``_extra``."""
    lay = layout(resource, headers)
    columns = {column: headers[index] for column, index in lay.columns.items()}
    extras = [headers[index] for index, _ in lay.extras if headers[index].strip()]
    return columns, extras
