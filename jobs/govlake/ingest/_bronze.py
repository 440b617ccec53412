"""The bronze table: its schema, assembling record batches, and landing them as one commit."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from govlake import storage
from govlake.catalog import Resource
from govlake.contracts import bronze_schema

BATCH_ROWS = 50_000
STRING = pa.string()


@dataclass(frozen=True)
class Provenance:
    """Lineage shared by every row of one batch (one file or one database window)."""

    resource: str
    batch_id: str
    source: str
    source_hash: str
    received_at: dt.datetime


Column = pa.Array | Sequence[str | None]


class Assembler:
    """Builds bronze record batches of one batch from source columns."""

    def __init__(self, resource: Resource, provenance: Provenance):
        self.schema = bronze_schema(resource)
        self.items = [i.column for i in resource.items]
        self.provenance = provenance
        self.headers: list[str] = []
        """The source's fields as the reader found them (CSV/XLSX header cells, JSON keys in order of
        first appearance, database columns): the ingest's lineage, without reading the file again."""
        self.types: dict[str, str] = {}
        """Database columns' types, by column (files have none)."""

    @property
    def fields(self) -> list[tuple[str, str | None]]:
        return [(h, self.types.get(h)) for h in self.headers]

    def batch(self, n: int, columns: Mapping[str, Column], row_numbers: Column | range, *,
              extra: Column | None = None, parse_error: Column | None = None) -> pa.RecordBatch:
        """``columns``: item column → n raw strings (missing items become nulls)."""
        p = self.provenance
        arrays = [_strings(columns.get(c), n) for c in self.items]
        arrays += [
            _strings(extra, n), _strings(parse_error, n),
            pa.repeat(pa.scalar(p.resource, STRING), n), pa.repeat(pa.scalar(p.batch_id, STRING), n),
            pa.repeat(pa.scalar(p.source, STRING), n), pa.repeat(pa.scalar(p.source_hash, STRING), n),
            pa.repeat(pa.scalar(p.received_at, self.schema.field("_received_at").type), n),
            row_numbers if isinstance(row_numbers, pa.Array) else pa.array(row_numbers, pa.int64()),
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _strings(values: Column | None, n: int) -> pa.Array:
    if values is None:
        return pa.nulls(n, STRING)
    if isinstance(values, pa.Array):
        return values if values.type == STRING else values.cast(STRING)
    return pa.array(values, STRING)


def extra_json(keys: Sequence[str], values: Sequence[Sequence[str | None]],
               overflow: Mapping[int, list[str]] | None = None, n: int = 0) -> list[str | None] | None:
    """Per row, the JSON object of unmapped fields (``keys`` → ``values`` columns) plus
    ``_overflow`` (fields beyond the header) for the rows in ``overflow``; None when nothing is unmapped."""
    if not keys and not overflow:
        return None
    rows = zip(*values) if keys else itertools.repeat((), n)
    out: list[str | None] = []
    for i, row in enumerate(rows):
        obj = dict(zip(keys, row))
        if overflow and i in overflow:
            obj["_overflow"] = overflow[i]
        out.append(json.dumps(obj, ensure_ascii=False) if obj else None)
    return out


def land(path: Path, batches: Iterable[pa.RecordBatch], *, schema: pa.Schema, run_id: str) -> int:
    """Append ``batches`` to the Delta table at ``path`` as one commit, streaming; returns the rows.

    Nothing is committed when the batches raise; their exception is re-raised as it was. With no
    rows at all nothing is written.
    """
    counted = [0]
    failure: list[BaseException] = []

    def guarded() -> Iterator[pa.RecordBatch]:
        try:
            for b in batches:
                counted[0] += b.num_rows
                yield b
        except BaseException as exc:
            failure.append(exc)
            raise

    stream = guarded()
    first = next(stream, None)
    while first is not None and first.num_rows == 0:
        first = next(stream, None)
    if first is None:
        return 0
    reader = pa.RecordBatchReader.from_batches(schema, itertools.chain([first], stream))
    try:
        storage.write_table(path, reader, mode="append", run_id=run_id)
    except Exception:
        if failure:
            raise failure[0] from None
        raise
    return counted[0]
