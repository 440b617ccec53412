"""Typed values (spreadsheet cells, database values, JSON scalars) as the text bronze keeps."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any


def as_text(value: Any) -> str | None:
    """The text of a value: ISO dates (``2024-04-01``, ``2024-04-01 12:30:05``), integral floats
    without ``.0``, decimals in plain notation, booleans ``true``/``false``, JSON for containers."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def column_text(values: list[Any]) -> list[str | None]:
    """``as_text`` over a column, leaving strings and None as they are (the common case, fast)."""
    return [v if v is None or type(v) is str else as_text(v) for v in values]
