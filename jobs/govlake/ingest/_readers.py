"""The reader of each file kind, chosen in one place: the driver's ingest and a Spark task's use the same."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from govlake.catalog import Resource
from govlake.ingest._bronze import Assembler
from govlake.ingest._csv import read_csv
from govlake.ingest._encoding import FileFacts, fingerprint, sniff
from govlake.ingest._jsonl import read_jsonl
from govlake.ingest._paths import Source
from govlake.ingest._xlsx import read_xlsx


def facts_of(kind: str, source: Source, *, check: bool = False) -> FileFacts:
    """sha256 and size of ``source`` and, for text, its encoding (IngestError when it is not readable text;
    ``check``: see :func:`~govlake.ingest._encoding.sniff`)."""
    return fingerprint(source) if kind == "xlsx" else sniff(source, check=check)


def batches_of(kind: str, source: Source, facts: FileFacts, resource: Resource, asm: Assembler
               ) -> Iterator[pa.RecordBatch]:
    """``source``'s bronze record batches by the reader of ``kind`` (its header checked now), then IngestError
    if the file changed while it was read."""
    if kind == "xlsx":
        batches = read_xlsx(source, resource, asm)
    elif kind == "jsonl":
        batches = read_jsonl(source, facts, resource, asm)
    else:
        batches = read_csv(source, facts, resource, asm)
    return source.unchanged(batches)
