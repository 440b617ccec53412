"""What an ingest reports: one result per file or database window, and the run's total."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow as pa

Status = Literal["landed", "skipped_already_ingested", "rejected"]


class IngestError(Exception):
    """A source could not be landed; the message names the file (or table) and why.

    ``path`` is the file (None for a database window); ``result`` is set when the error is raised
    after a whole ingest was recorded (explicit files with at least one rejected).
    """

    def __init__(self, message: str, *, path: Path | None = None, result: IngestResult | None = None):
        super().__init__(message)
        self.path = path
        self.result = result


DATA_ERRORS = (IngestError, UnicodeError, csv.Error, pa.ArrowInvalid)
"""What a reader raises on a file it cannot read: the file is rejected, nothing of it lands."""


@dataclass
class BatchResult:
    """One file or one database window."""

    source: str
    source_hash: str | None
    encoding: str | None
    rows: int
    status: Status
    error: str | None = None
    batch_id: str | None = None
    watermark_hi: str | None = None
    size: int | None = None
    """File size and modification time (ns) when hashed: a file seen again unchanged is skipped
    without reading it."""
    mtime_ns: int | None = None
    fields: list[tuple[str, str | None]] | None = None
    """The fields the source offered (header, JSON keys, database columns and their types), for lineage."""
    unwatermarked_rows: int | None = None
    """Database window: its rows whose watermark is null or not a date and time."""


@dataclass
class IngestResult:
    """Everything one ``ingest_resource`` call did for one resource."""

    resource: str
    run_id: str
    batches: list[BatchResult] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows landed in bronze by this call."""
        return sum(b.rows for b in self.batches if b.status == "landed")

    @property
    def rejected(self) -> list[BatchResult]:
        return [b for b in self.batches if b.status == "rejected"]
