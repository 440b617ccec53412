"""Landing a department's file on the Spark engine: a Spark task decodes it, delta-spark appends it to bronze.

The driver does what needs the lake's history, as on DuckDB: it finds the files, skips those landed before,
hashes and sniffs each one, and logs the batch. Then one Spark job per file, whose one task (on an executor)
opens the file at the same path (the inbox must be where every executor sees it: a shared file system; else
GOVLAKE_SPARK_INGEST=driver), checks that it is the file the driver hashed (size, modification time,
sha256), reads it with govlake's reader of its kind (CSV, XLSX, JSON lines: the same code as on the driver,
so the same rows, row numbers, ``_extra`` and ``_parse_error``) and hands Spark its bronze record batches
(``mapInArrow``); delta-spark appends them in one commit. A file that cannot be read fails its task, so
nothing of it is committed, and the reader's error (file, row, rule) comes back to the driver as the batch's
rejection. The task's last row is a trailer carrying the fields the reader found (the ingest's lineage); an
``Observation`` of the write collects it and the row count in the same pass, and the trailer is not written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from govlake.catalog import Resource
from govlake.ingest._bronze import Assembler, Provenance
from govlake.ingest._encoding import FileFacts
from govlake.ingest._paths import open_source
from govlake.ingest._results import DATA_ERRORS, IngestError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from govlake.objectstore import Location

TRAILER = "_govlake_fields"
"""The column of the task's trailer row: the reader's fields as JSON (null on every data row)."""
REJECTED = "GOVLAKE-INGEST-REJECTED:"
"""Marks a reader's error in the task's failure, so the driver finds it in Spark's report of the failed job."""


@dataclass(frozen=True)
class FileTask:
    """What a task needs to read one file as the driver saw it."""

    path: str
    inbox: str | None
    kind: str
    """``csv``, ``xlsx`` or ``jsonl``"""
    facts: FileFacts
    mtime_ns: int
    resource: Resource
    provenance: Provenance


def land_file(spark: SparkSession, bronze: Location, task: FileTask, *, run_id: str
              ) -> tuple[int, list[tuple[str, str | None]]]:
    """Read ``task``'s file in a Spark task and append its rows to the bronze table at ``bronze`` in one commit.
    Returns the rows landed and the reader's fields.

    Raises:
        IngestError: the reader refused the file (its message names the file, row and rule); nothing landed.
    """
    from pyspark.sql import Observation
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    from govlake import storage

    schema = _task_schema(task)
    rows = spark.range(0, 1, 1, 1).mapInArrow(_reader(task), from_arrow_schema(schema))
    seen = Observation("govlake_ingest")
    rows = rows.observe(seen, F.max(TRAILER).alias("fields"), F.count(F.lit(1)).alias("rows"))
    try:
        storage.write_table(bronze, rows.where(f"{TRAILER} is null").drop(TRAILER), mode="append", run_id=run_id)
    except Exception as exc:  # pyspark's, or py4j's for a failure inside Delta's writer: the reader's error in it
        rejection = _rejection(exc)
        if rejection is None:
            raise
        raise rejection from None
    metrics = seen.get
    return int(metrics["rows"]) - 1, [tuple(f) for f in json.loads(metrics["fields"])]


def _task_schema(task: FileTask) -> pa.Schema:
    from govlake.contracts import bronze_schema

    return bronze_schema(task.resource).append(pa.field(TRAILER, pa.string()))


def _reader(task: FileTask):
    """The function each task runs: its one input row stands for ``task``'s file."""

    def run(inputs: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        if not sum(batch.num_rows for batch in inputs):
            return
        try:
            yield from read(task)
        except DATA_ERRORS as exc:
            text = str(exc)
            raise RuntimeError(REJECTED + json.dumps(text if task.path in text else f"{task.path}: {text}",
                                                     ensure_ascii=False)) from None

    return run


def read(task: FileTask) -> Iterator[pa.RecordBatch]:
    """``task``'s file as bronze record batches with the trailer column, then the trailer row."""
    from govlake.ingest._readers import batches_of, facts_of

    schema = _task_schema(task)
    path = Path(task.path)
    try:
        source = open_source(path, inbox=Path(task.inbox) if task.inbox else None)
    except IngestError as exc:
        if "no such file" not in str(exc):
            raise
        raise IngestError(f"{path}: no such file on this Spark executor ({_host()}); the driver found it. The inbox "
                          "must be at the same path on every executor (a shared file system), or set "
                          "GOVLAKE_SPARK_INGEST=driver to read files on the driver", path=path) from None
    with source:
        st = source.stat
        if (st.st_size, st.st_mtime_ns) != (task.facts.size, task.mtime_ns):
            raise IngestError(f"{path}: the file changed after the driver read it (size {task.facts.size:,} → "
                              f"{st.st_size:,} bytes, or modified again); nothing of it landed: send it again once "
                              "it is complete", path=path)
        facts = facts_of(task.kind, source)
        if facts.sha256 != task.facts.sha256:
            raise IngestError(f"{path}: the file's content changed after the driver read it (sha256 "
                              f"{task.facts.sha256[:12]}… → {facts.sha256[:12]}…); nothing of it landed: send it "
                              "again once it is complete", path=path)
        asm = Assembler(task.resource, task.provenance)
        for batch in batches_of(task.kind, source, task.facts, task.resource, asm):  # (the driver's encoding)
            yield batch.append_column(TRAILER, pa.nulls(batch.num_rows, pa.string()))
        trailer = {f.name: [None] for f in schema}
        trailer[TRAILER] = [json.dumps(asm.fields, ensure_ascii=False)]
        yield pa.RecordBatch.from_pydict(trailer, schema=schema)


def _host() -> str:
    import socket

    return socket.gethostname()


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def _rejection(exc: Exception) -> IngestError | None:
    """The reader's error a failed Spark job carries (see :data:`REJECTED`), as the IngestError it was."""
    text = "\n".join(str(e) for e in _chain(exc))
    at = text.find(REJECTED)
    if at < 0:
        return None
    message, _ = json.JSONDecoder().raw_decode(text[at + len(REJECTED):])
    return IngestError(message)
