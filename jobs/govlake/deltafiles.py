"""Delta commits of Parquet files that pyarrow or DuckDB writes: the data files of every append, overwrite and upsert.

delta-rs's own writer encodes Parquet at about a quarter of the speed of pyarrow's (1 million bronze rows,
40 string columns, on this kind of machine: 2.8 s against 0.7 s, the same files' size), so storage hands it
only the commit: pyarrow writes the files into the table's folder (local or S3, through
:func:`govlake.objectstore.filesystem`) and delta-rs commits them (``create_write_transaction``, or
``create_table_with_add_actions`` for a new table) — the log, the protocol, concurrent writers, the
``txn`` stamps and the commit metadata stay delta-rs's.

What delta-rs's writer did that this module does instead, each tested against it (tests/test_deltafiles.py):

- files of a target size (``target_bytes``) made of row groups of ``row_group_rows`` rows;
- each file's statistics in the log (:func:`file_stats`): its row count, every primitive column's null
  count and, where the Parquet statistics are exact, the minimum and maximum of its strings, integers and
  dates — the values a predicate prunes files by. Decimals, floats and timestamps get no bounds (a bound
  rounded the wrong way would skip a file that holds a match; no predicate of govlake's uses them);
- an append's columns cast to the table's types (one the data lacks stays, null in the new files; one the
  table lacks is added first, :func:`_add_columns`); an overwrite's schema is the data's;
- an upsert's files replaced in the same commit (``removes``: govlake.storage.replace_span).

Rows that come from a DuckDB query (:class:`Rows`: govlake.compute's ``data``) bound for a local table, in no
particular order, are written by DuckDB itself (``COPY … RETURN_FILES``), in parallel, into the table's folder, and
committed from the files' footers as pyarrow's are — when DuckDB's types are the table's (else, and on S3, and for a
table written in order, they are streamed to pyarrow as Arrow): no Arrow batches between the query and the files,
and every core encoding. The benchmark's 10-million-record process step (8.2 million silver rows, 1.5 million
quarantined) took 67.6 s instead of 73.5 (docs/performance.md).
DuckDB's string bounds may be cut to a prefix (the maximum's last byte raised): still bounds, as Delta's statistics
need, not exact values.

Nothing is committed when the data raises or the writing fails: the files written so far are deleted, unless the
table's log names them (a commit that landed and then failed, in a checkpoint on a full disk, say). A killed process
leaves them unreferenced, as delta-rs's writer did; ``govlake vacuum`` removes them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from queue import Empty, Full, Queue

import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from govlake import objectstore
from govlake.objectstore import Location

_BOUNDED = (pa.types.is_string, pa.types.is_large_string, pa.types.is_integer, pa.types.is_date32)
"""Arrow types whose minimum and maximum a file's statistics carry."""
PROBE_ROWS = 4_096
"""Rows of the first row group a write makes, by which the rows a file of the target size takes are planned."""


class Rows:
    """Rows an engine can write as Parquet files itself (govlake.compute's DuckDB query), or stream as Arrow."""

    schema: pa.Schema
    """The rows' columns and types, as :meth:`reader` gives them."""

    def reader(self) -> pa.RecordBatchReader:
        raise NotImplementedError

    def written_schema(self) -> pa.Schema:
        """The types :meth:`copy` writes the columns with (which may not be :attr:`schema`'s)."""
        raise NotImplementedError

    def copy(self, folder: Path, prefix: str, *, row_groups_per_file: int, row_group_rows: int) -> list[Path]:
        """Write the rows as Parquet files of ``row_groups_per_file`` row groups of ``row_group_rows`` rows into
        ``folder`` (which holds other files), each named ``<prefix>…``; the files written. On an error, files named
        so may be left."""
        raise NotImplementedError


FILE_ROWS = 1 << 20
"""Rows a file of :meth:`Rows.copy` is planned to hold when the table has none to take the bytes per row from
(8.2 million silver rows of the benchmark: ~31 bytes a row in DuckDB's files, so files of ~31 MiB)."""


def write(location: Location, data: pa.RecordBatchReader | Rows, *, mode: str, table: DeltaTable | None,
          commit: CommitProperties, target_bytes: int, row_group_rows: int,
          removes: Sequence[tuple[str, int]] = (), ordered: bool = False) -> int:
    """Write ``data`` into the Delta table at ``location`` as one commit (``table``: it opened, or None when
    there is none yet); returns the rows written. ``removes``: data files of the table (their paths in the log,
    sizes) the same commit removes (an append only: the rows they hold that stay are in ``data``). ``ordered``:
    the files keep the rows' order (a clustered table)."""
    if removes and (table is None or mode != "append"):
        raise ValueError("files are removed by an append to an existing table only")
    if table is not None and mode == "append":
        _add_columns(table, data.schema, commit)
    schema = _commit_schema(data.schema, table, mode)
    fs, root = objectstore.filesystem(location)
    if isinstance(location, Path):  # an object store has no folders to make
        location.mkdir(parents=True, exist_ok=True)
    written: list[AddAction] = []
    rows = 0
    copied = isinstance(data, Rows) and isinstance(location, Path) and not ordered and _same_types(
        data.written_schema(), schema, data.schema.names)
    prefix = f"part-00000-{uuid.uuid4().hex[:12]}-"
    try:
        if copied:
            files = _copied(data, location, prefix, _row_groups_per_file(table, target_bytes, row_group_rows),
                            row_group_rows)
        else:
            reader = data.reader() if isinstance(data, Rows) else data
            files = _files(fs, root, _ahead(_cast(reader, schema)), target_bytes, row_group_rows)
        for name, meta, size in files:
            written.append(AddAction(path=name, size=size, partition_values={},
                                     modification_time=int(time.time() * 1000), data_change=True,
                                     stats=json.dumps(file_stats(meta, schema))))
            rows += meta.num_rows
        delta_schema = DeltaSchema.from_arrow(schema)
        now = int(time.time() * 1000)
        gone = [RemoveAction(path=path, data_change=True, deletion_timestamp=now, size=size) for path, size in removes]
        if table is None:
            try:
                # a creation must be version 0 or nothing: delta-rs would retry one that lost the race for it as
                # version 1, a second CREATE (its own table id, protocol and schema) on top of the winner's, which
                # fails every append read before it ("Metadata changed since last commit")
                create_table_with_add_actions(str(location), delta_schema, written, mode="error",
                                              storage_options=objectstore.delta_options(location),
                                              commit_properties=CommitProperties(
                                                  custom_metadata=commit.custom_metadata, max_commit_retries=0,
                                                  app_transactions=commit.app_transactions))
                return rows
            except Exception:
                table = open_table(location)  # another writer created it first: then this write commits into it
                if table is None:
                    raise
        table.create_write_transaction([*written, *gone], mode, delta_schema, commit_properties=commit)
    except BaseException:
        if written and _maybe_committed(location, written[0].path):
            raise
        for action in written:
            fs.delete_file(f"{root}/{action.path}")
        if copied:  # DuckDB's files, reported or not
            for path in location.glob(f"{prefix}*"):
                path.unlink(missing_ok=True)
        raise
    return rows


def _row_groups_per_file(table: DeltaTable | None, target_bytes: int, row_group_rows: int) -> int:
    """Row groups of a file :meth:`Rows.copy` writes, for files of about ``target_bytes``. DuckDB's own cut by size
    (its FILE_SIZE_BYTES) weighs the row groups it holds in memory, not the bytes written: 8.2 million silver rows
    came in files of 3–4 MiB at 32 MiB, of 30–70 MiB at 64 MiB, and 60 small files took 6.9 s to write against 4.1
    s for 8. So the cut is planned in rows, from the bytes per row of the table's files (those being replaced, for
    an overwrite), else :data:`FILE_ROWS`."""
    rows = FILE_ROWS
    if table is not None:
        adds = pa.table(table.get_add_actions(flatten=False)).select(["num_records", "size_bytes"]).drop_null()
        records, size = (pa.compute.sum(adds[c]).as_py() or 0 for c in ("num_records", "size_bytes"))
        if records and size:
            rows = target_bytes * records / size
    return max(1, round(rows / row_group_rows))


def _copied(data: Rows, folder: Path, prefix: str, row_groups_per_file: int, row_group_rows: int):
    """:meth:`Rows.copy`'s files as :func:`_files` yields pyarrow's (name, footer, size); empty ones removed."""
    for path in data.copy(folder, prefix, row_groups_per_file=row_groups_per_file, row_group_rows=row_group_rows):
        meta = pq.read_metadata(path)
        if not meta.num_rows:
            path.unlink()
            continue
        yield path.name, meta, path.stat().st_size


def _same_types(written: pa.Schema, schema: pa.Schema, names: Sequence[str]) -> bool:
    """Whether columns ``names`` as ``written`` are of the Delta types ``schema`` gives them."""
    def types(fields: Iterable[pa.Field]) -> list:
        delta = DeltaSchema.from_arrow(pa.schema([_as_delta(f).with_nullable(True) for f in fields]))
        return [json.loads(f.to_json())["type"] for f in delta.fields]

    if any(n not in written.names or n not in schema.names for n in names):
        return False
    return types(written.field(n) for n in names) == types(schema.field(n) for n in names)


def _maybe_committed(location: Location, path: str) -> bool:
    """Whether the table's log may name data file ``path``: True unless the table reads and does not (deleting a
    committed file would break the table; leaving an uncommitted one costs its space until a vacuum)."""
    try:
        table = open_table(location)
        return table is not None and path in set(pa.table(table.get_add_actions(flatten=False))["path"].to_pylist())
    except Exception:  # noqa: BLE001 - the log unreadable now: keep the files
        return True


def open_table(location: Location, *, version: int | None = None) -> DeltaTable | None:
    """The Delta table at ``location`` (at ``version`` when given), or None when none has been written yet
    (govlake.storage's, for every reader)."""
    try:
        return DeltaTable(str(location), version=version, storage_options=objectstore.delta_options(location))
    except TableNotFoundError:
        return None


def _add_columns(table: DeltaTable, data: pa.Schema, commit: CommitProperties) -> None:
    """Give ``table`` the columns of ``data`` it lacks (a commit of its own, before the data's: a commit of files
    does not change the schema; a crash between the two leaves columns of nulls, which the next write fills)."""
    current = set(table.schema().to_arrow().names)
    added = [_as_delta(f) for f in data if f.name not in current]
    if added:
        # the commit's metadata, not its txn: that stamps the data's commit alone (govlake.steps)
        table.alter.add_columns(DeltaSchema.from_arrow(pa.schema(added)).fields,
                                commit_properties=CommitProperties(custom_metadata=commit.custom_metadata))
        table.update_incremental()


def _commit_schema(data: pa.Schema, table: DeltaTable | None, mode: str) -> pa.Schema:
    """The table's schema after the write: the data's for a new table or an overwrite, else the table's — as
    Delta holds it (a timestamp in any zone is UTC microseconds, large and view strings are strings, …)."""
    if table is None or mode == "overwrite":
        return pa.schema(DeltaSchema.from_arrow(pa.schema([_as_delta(f) for f in data])).to_arrow())
    return pa.schema(table.schema().to_arrow())


def _as_delta(field: pa.Field) -> pa.Field:
    """``field`` with the timestamp types Delta has (microseconds; zoned ones in UTC: the same instants)."""
    t = field.type
    if pa.types.is_timestamp(t):
        return field.with_type(pa.timestamp("us", tz="UTC" if t.tz else None))
    if pa.types.is_struct(t):
        return field.with_type(pa.struct([_as_delta(t.field(i)) for i in range(t.num_fields)]))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return field.with_type(pa.list_(_as_delta(t.value_field)))
    return field


def _cast(reader: pa.RecordBatchReader, schema: pa.Schema) -> Iterable[pa.Table]:
    """The reader's batches with the commit schema's types (an append into an existing column), as tables."""
    names = reader.schema.names
    target = pa.schema([schema.field(n) for n in names])
    same = target.equals(reader.schema)
    for batch in reader:
        t = pa.Table.from_batches([batch])
        yield t if same else t.cast(target)


AHEAD = 4
"""Batches read ahead of the writer, on a thread of their own (:func:`_ahead`)."""


def _ahead(items: Iterable[pa.Table], depth: int = AHEAD) -> Iterator[pa.Table]:
    """``items`` as they come, read on a thread of their own up to ``depth`` ahead: the query (or the file being
    decoded) producing them runs while pyarrow encodes the ones before (both release the GIL), as delta-rs's
    writer overlapped them. An error producing them is raised here; when the writing stops, so does the reading."""
    queue: Queue = Queue(depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put((item, None), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put((done, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            queue.put((done, exc))

    thread = threading.Thread(target=produce, name="govlake-read-ahead", daemon=True)
    thread.start()
    try:
        yield from queued(queue, done)
    finally:
        stop.set()
        while thread.is_alive():  # let a producer blocked on a full queue see the stop
            with contextlib.suppress(Empty):
                queue.get(timeout=0.1)
        thread.join()


def queued(queue: Queue, end: object) -> Iterator:
    """The items another thread puts on ``queue`` as (item, error) pairs, until the pair of ``end``; the error that
    comes with it, if any, is raised here."""
    while True:
        item, error = queue.get()
        if item is end:
            if error is not None:
                raise error
            return
        yield item


def _files(fs, root: str, tables: Iterable[pa.Table], target_bytes: int, row_group_rows: int):
    """Write ``tables`` as Parquet files of ``root`` of about ``target_bytes`` each, in row groups of at most
    ``row_group_rows``; yields (file name, its metadata, its size) as each is closed.

    As delta-rs's writer does, a file is closed at the target and its last row group cut short there: the
    rows a file takes are planned from the bytes per row written so far (the first row group, before
    anything is known, is :data:`PROBE_ROWS` rows)."""
    pending: list[pa.Table] = []
    held = rows_done = bytes_done = 0
    writer = sink = name = None

    def take(k: int) -> pa.Table:
        nonlocal pending, held
        whole = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
        part, rest = whole.slice(0, k), whole.slice(k)
        pending, held = ([rest] if rest.num_rows else []), rest.num_rows
        return part

    def room() -> int:
        """Rows the next row group takes."""
        if not rows_done:
            return min(PROBE_ROWS, row_group_rows)
        written = sink.tell() if writer is not None else 0
        return max(1, min(row_group_rows, int((target_bytes - written) * rows_done / bytes_done)))

    def put(part: pa.Table) -> tuple[str, pq.FileMetaData, int] | None:
        nonlocal writer, sink, name, rows_done, bytes_done
        if writer is None:
            name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
            sink = fs.open_output_stream(f"{root}/{name}")
            writer = pq.ParquetWriter(sink, part.schema, compression="snappy", coerce_timestamps="us",
                                      allow_truncated_timestamps=False, store_schema=False)
        before = sink.tell()
        writer.write_table(part, row_group_size=row_group_rows)
        rows_done += part.num_rows
        bytes_done += sink.tell() - before
        return close() if sink.tell() >= target_bytes * 0.98 else None

    def close() -> tuple[str, pq.FileMetaData, int]:
        nonlocal writer, sink
        writer.close()
        size = sink.tell()
        sink.close()
        done = (name, writer.writer.metadata, size)  # the footer as written
        writer = sink = None
        return done

    try:
        for t in tables:
            if not t.num_rows:
                continue
            pending.append(t)
            held += t.num_rows
            while pending and held >= room():
                closed = put(take(room()))
                if closed:
                    yield closed
        while pending:
            closed = put(take(min(held, room())))
            if closed:
                yield closed
        if writer is not None:
            yield close()
    except BaseException:  # the rows failed (or the write stopped): the file being written was never handed out
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()
            with contextlib.suppress(Exception):
                sink.close()
            with contextlib.suppress(Exception):
                fs.delete_file(f"{root}/{name}")
        raise


def file_stats(meta: pq.FileMetaData, schema: pa.Schema) -> dict:
    """The Delta log's statistics of a data file (``numRecords``, ``nullCount``, ``minValues``/``maxValues``)
    from its Parquet footer: per top-level primitive column, nulls summed over the row groups; bounds for the
    types of ``_BOUNDED`` when every row group holding a value has exact ones."""
    stats: dict = {"numRecords": meta.num_rows, "minValues": {}, "maxValues": {}, "nullCount": {}}
    columns = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    groups = [meta.row_group(g) for g in range(meta.num_row_groups)]
    for field in schema:
        i = columns.get(field.name)
        if i is None or pa.types.is_nested(field.type):
            continue
        chunks = [(g.num_rows, g.column(i).statistics) for g in groups]
        if any(s is None or not s.has_null_count for _, s in chunks):
            continue
        stats["nullCount"][field.name] = sum(s.null_count for _, s in chunks)
        if not any(check(field.type) for check in _BOUNDED):
            continue
        valued = [s for n, s in chunks if s.null_count < n]
        if not valued or not all(s.has_min_max for s in valued):
            continue
        stats["minValues"][field.name] = _json_value(min(s.min for s in valued))
        stats["maxValues"][field.name] = _json_value(max(s.max for s in valued))
    return stats


def _json_value(value):
    return value.isoformat() if isinstance(value, dt.date) else value
