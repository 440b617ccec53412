"""The one storage layer: Delta tables through deltalake (delta-rs), read by DuckDB.

Jobs never open files themselves; they ask for a table by layer and name and hand back
Arrow data. Every write is stamped with the run id in the Delta commit metadata. Data files are written
by pyarrow and committed by delta-rs (govlake.deltafiles); an upsert rewrites the files holding its keys
(:func:`replace_span`).

A table's location is a local ``Path`` or, for a lake on S3 (GOVLAKE_LAKE=s3://…), an ``s3://`` URI
(``str``): govlake.objectstore gives delta-rs its storage options and DuckDB its S3 secret for it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from queue import Full, Queue
from typing import Literal, NamedTuple
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.compute
from deltalake import CommitProperties, DeltaTable
from deltalake.transaction import Transaction

from govlake import deltafiles, objectstore
from govlake._faults import crash_point
from govlake.config import Settings
from govlake.deltafiles import open_table
from govlake.layout import LAYERS
from govlake.objectstore import Location

log = logging.getLogger(__name__)

WriteMode = Literal["append", "overwrite"]

ROW_GROUP_ROWS = 131_072
"""Rows per Parquet row group of every data file written. The writer holds a file's open row group in
memory (delta-rs's default, about a million rows, held some 160 MiB more than this at the peak of a
1-million-record process step); DuckDB scans row groups in parallel, so reads lose nothing."""

FILE_BYTES = 32 << 20
"""Target size of the data files written (delta-rs's default: 100 MiB): with it, the peak of a 1-million-record
process step (a rebuild) fell by ~140 MiB, measured; silver at 10 million rows is some 20 files."""
CLUSTERED_FILE_BYTES = 4 << 20
"""Target size of the files of a table written clustered (``cluster_by``): small enough that a day's changes,
which share a narrow span of the clustering column, fall in one or two files of a table of any size. An upsert
rewrites each file holding one of its keys whole (:func:`replace_span`): at 8 MiB (~145,000 record rows) that cost
a 1-million-record day's credit step 0.3 s more than at 4 MiB (records phase 0.97–1.03 → 0.69–0.75 s)."""
KEY_HASH = "_key_hash"
"""A clustered table's column holding a number made from its key (:func:`key_hash_sql`; the credit step writes it
with every row, on either engine, and :func:`split_matched` gives it to a day's rows): :func:`split_matched` finds
the table's rows of a day's keys by it, reading one 8-byte column (and the date) instead of the key's strings (the
record table of 10 million penalty records: 0.10 s against 0.28 s), then compares the keys themselves only in
the row groups of the dates it found. silver's tables carry it too (written by the process step, outside
silver's contract), for the contest's lookup of a day's keys (govlake.quality._process._silver_may_hold). Not a
published column: the extract leaves it out."""


def key_hash_sql(key: Sequence[str], alias: str = "") -> str:
    """DuckDB SQL for :data:`KEY_HASH` of the row's ``key`` columns (prefixed ``alias.`` when given): the first
    60 bits of the md5 of the key's values, joined by a unit separator. md5, not DuckDB's ``hash``, so that the
    numbers stored stay right across DuckDB versions; two keys sharing one are told apart by the keys."""
    prefix = f"{alias}." if alias else ""
    joined = ", ".join(f"{prefix}{k}::varchar" for k in key)
    return f"('0x' || substr(md5(concat_ws(chr(31), {joined})), 1, 15))::bigint"


def table_path(settings: Settings, layer: str, name: str) -> Location:
    """The location of table ``name`` of ``layer``: a Path, or an ``s3://`` URI for a lake on S3."""
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; layers are {LAYERS}")
    return settings.table_path(layer, name)


def _commit(run_id: str, txn: tuple[str, int] | None) -> CommitProperties:
    """Commit metadata: the run id, and the step's transaction identifier (govlake.steps)."""
    apps = [Transaction(app_id=txn[0], version=txn[1])] if txn else None
    return CommitProperties(custom_metadata={"govlake.run_id": run_id}, app_transactions=apps)


def commit_run_id(commit: dict) -> str | None:
    """The run id a commit (an entry of DeltaTable.history) was stamped with: delta-rs writes it as
    ``govlake.run_id`` in the commit info, delta-spark in its ``userMetadata`` (govlake._spark_delta)."""
    if commit.get("govlake.run_id"):
        return commit["govlake.run_id"]
    meta = commit.get("userMetadata")
    if isinstance(meta, str) and meta.startswith("{"):
        try:
            return json.loads(meta).get("govlake.run_id")
        except ValueError:
            return None
    return None


def _label(path: Location, label: str | None) -> str:
    return label or f"commit:{objectstore.name(objectstore.parent(path))}/{objectstore.name(path)}"


def is_spark(data) -> bool:
    """Whether ``data`` is a Spark DataFrame (classic or Spark Connect), without importing pyspark."""
    return type(data).__module__.startswith("pyspark.")


def write_table(
    path: Location,
    data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch],
    *,
    mode: WriteMode,
    run_id: str,
    schema: pa.Schema | None = None,
    txn: tuple[str, int] | None = None,
    label: str | None = None,
    cluster_by: str | None = None,
    removes: Sequence[tuple[str, int]] = (),
    snapshot: DeltaTable | None = None,
) -> None:
    """Write Arrow data (or a DuckDB query's rows: govlake.compute's ``data``) as one Delta commit; streams a reader
    without holding it in memory.

    The files are written by pyarrow, or DuckDB for a query's rows, and committed by delta-rs (govlake.deltafiles:
    pyarrow's four times faster than delta-rs's writer, DuckDB's faster still: every core encodes). ``txn`` (app
    id, version) is recorded in the commit (Delta ``txn`` action): see govlake.steps. ``cluster_by``: the data
    comes sorted by this column, and is cut into files of :data:`CLUSTERED_FILE_BYTES`, each spanning a narrow
    range of it (what :func:`split_matched` is for). ``removes``: files of the table (log path, size) the commit
    removes, ``snapshot`` the version they were read at, which the commit is checked against
    (:func:`replace_span`). A Spark DataFrame (the Spark engine's result) is written by delta-spark with the
    same stamps.
    """
    if is_spark(data):
        from govlake import _spark_delta

        _spark_delta.write(path, data, mode=mode, run_id=run_id, txn=txn)
        crash_point(_label(path, label))
        return
    if isinstance(data, pa.Table):
        data = pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
    elif not isinstance(data, pa.RecordBatchReader | deltafiles.Rows):
        if schema is None:
            raise ValueError("an iterable of batches needs its schema")
        data = pa.RecordBatchReader.from_batches(schema, iter(data))
    if isinstance(path, Path):
        path.parent.mkdir(parents=True, exist_ok=True)
    table = snapshot if snapshot is not None else open_table(path)
    deltafiles.write(path, data, mode=mode, table=table, commit=_commit(run_id, txn),
                     target_bytes=CLUSTERED_FILE_BYTES if cluster_by else FILE_BYTES, row_group_rows=ROW_GROUP_ROWS,
                     removes=removes, ordered=cluster_by is not None)
    crash_point(_label(path, label))


def row_count(path: Location, *, version: int | None = None) -> int:
    """Rows in the Delta table at ``path`` (its current version, or ``version``); 0 when absent.

    The sum of the record counts the Delta log holds for the live files (delta-rs and delta-spark write one
    with every file): no file is opened (a 10-million-record table's 81 footers took 0.14 s locally, one
    request each on S3; the log 0.01 s). A table with a file whose count the log lacks is counted from the
    files' Parquet footers."""
    dt = open_table(path)
    if dt is not None and version is not None:
        dt = open_table(path, version=version)
    if dt is None:
        return 0
    counts = pa.table(dt.get_add_actions(flatten=False)).column("num_records")
    if counts.null_count:
        return dt.to_pyarrow_dataset().count_rows()
    return int(pa.compute.sum(counts).as_py() or 0)


def quiet(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """``con`` without DuckDB's progress bar, which it draws on standard output, terminal or not, for a query running
    past two seconds — inside a command's ``--json`` output, a task's log, a test's captured numbers. A connection's
    own setting (DuckDB takes it for no database as a whole); its cursors, GX's among them, inherit it."""
    con.execute("set enable_progress_bar = false")
    return con


def connect(settings: Settings, *, database: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection tuned for this machine, spilling to var/work."""
    from govlake.config import memory_bytes

    settings.work.mkdir(parents=True, exist_ok=True)
    # Settings go in as configuration values, never pasted into SQL. The allocator's background thread gives the
    # system back what DuckDB frees (a dropped table: govlake.compute's ``drop``); without it DuckDB's allocator
    # (its own jemalloc) kept the pages, and a process step held its buffer pool to the end.
    con = quiet(duckdb.connect(database or ":memory:", config={
        "temp_directory": str(settings.work / "duckdb_tmp"),
        "memory_limit": f"{memory_bytes(settings.duckdb_memory_limit)}B",
        "preserve_insertion_order": False,
        "allocator_background_threads": True,
    }))
    _keep_footers(con)
    return con


def _keep_footers(con: duckdb.DuckDBPyConnection) -> None:
    """Keep the footers of the Parquet files ``con`` reads for its life (``parquet_metadata_cache``): a view over a
    table's files (:func:`_parquet_view`, ``union_by_name``) read every file's footer to bind each query and again
    to run it, a cost per file of every query — for :func:`split_matched`'s two queries on the 105 files of a
    10-million-record credit table, 0.124 + 0.068 → 0.110 + 0.045 s. A Delta data file is never written again under
    its name; a step's scratch file is (govlake.compute), and DuckDB checks a kept footer against the file: one
    written again is read again (tests/test_compute.py). A setting of the parquet extension, so set once it is
    loaded, not in the configuration."""
    con.execute("set parquet_metadata_cache = true")


def files_since(path: Location, version: int | None, *, until: int | None = None) -> tuple[int | None, list[str]]:
    """The table's version (``until``, else the current one) and the data files live at it that were
    added after ``version``.

    ``version`` None means the whole table. For an append-only table these files hold exactly the
    rows added since; after a merge they also hold rows copied unchanged from rewritten files, so a
    consumer must treat them as "rows that may have changed" (re-deriving them is idempotent).
    """
    dt = open_table(path, version=until)
    if dt is None:
        return None, []
    files = dt.file_uris()
    if version is None:
        return dt.version(), files
    if version > dt.version():
        raise ValueError(f"{path}: consumed version {version} is newer than the table ({dt.version()}); "
                         "was the table rewritten? rebuild its consumers")
    seen = set(open_table(path, version=version).file_uris())
    return dt.version(), [f for f in files if f not in seen]


def file_changes(path: Location, since: int, until: int) -> tuple[list[str], list[str]] | None:
    """The data files of the table live at version ``since`` and gone at ``until`` (removed), and those live
    at ``until`` and not at ``since`` (added): the table at ``until`` is the one at ``since`` less the rows of
    the removed files plus those of the added ones. None when that cannot be told from the files (the log of
    ``since`` is gone, a removed file was vacuumed, the table is partitioned: its files lack those columns)."""
    try:
        before, after = open_table(path, version=since), open_table(path, version=until)
    except Exception as e:  # noqa: BLE001 - delta-rs raises its own errors for a log that was cleaned up
        log.info("%s: no file changes from version %s to %s (%s)", path, since, until, e)
        return None
    if before is None or after is None or after.metadata().partition_columns:
        return None
    old, new = before.file_uris(), after.file_uris()
    live = set(new)
    removed = [f for f in old if f not in live]
    if not all(objectstore.exists(f if objectstore.is_s3(f) else Path(f.removeprefix("file://"))) for f in removed):
        return None
    seen = set(old)
    return removed, [f for f in new if f not in seen]


def register_files(con: duckdb.DuckDBPyConnection, name: str, files: Sequence[str], schema: pa.Schema) -> None:
    """Expose the given Parquet data files of a Delta table as view ``name`` (empty when none)."""
    if not files:
        con.register(name, schema.empty_table())
        return
    _parquet_view(con, name, files)


def remove_abandoned(root: Path) -> None:
    """Remove the scratch folders (``<pid>-…``) in ``root`` of processes that are gone (killed: they could not)."""
    for folder in root.iterdir():
        pid = folder.name.split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # alive, another user's
            pass


def _parquet_view(con: duckdb.DuckDBPyConnection, name: str, files: Sequence[str], *, file_column: bool = False
                  ) -> None:
    """View ``name`` over Parquet data files through DuckDB's own reader (parallel, and several times
    faster than an Arrow dataset scan); files written before a schema change are read by column name.
    Files on S3 are read through httpfs with the lake's secret (govlake.objectstore). ``file_column``: each row's
    file in column :data:`FILE_COLUMN`."""
    listed = _files_literal(con, files)
    named = f", filename = '{FILE_COLUMN}'" if file_column else ""
    con.execute(f'create or replace temp view "{name}" as select * from read_parquet([{listed}], '
                f'union_by_name = true{named})')


def _files_literal(con: duckdb.DuckDBPyConnection, files: Sequence[str]) -> str:
    """``files`` (as delta-rs gives them) as the items of a DuckDB list literal (:func:`_readable`); on S3, ``con``
    given the lake's secret to read them."""
    if files and objectstore.is_s3(files[0]):
        objectstore.duckdb_s3(con, files[0])
    return ", ".join("'" + f.replace("'", "''") + "'" for f in _readable(files))


def _readable(files: Sequence[str]) -> list[str]:
    """Data files' paths as DuckDB reads them: delta-rs gives a local one percent-encoded (a folder ``my lake`` as
    ``my%20lake``), which DuckDB would take literally; an S3 URI stays as it is."""
    if files and objectstore.is_s3(files[0]):
        return list(files)
    return [unquote(f) for f in files]


FILE_COLUMN = "_file"
"""The column of a view :func:`_parquet_view` makes with ``file_column``: the data file each row is in."""


def merge_table(path: Location, source: pa.Table | pa.RecordBatchReader, *, key: Sequence[str], run_id: str,
                delete_flag: str | None = None, txn: tuple[str, int] | None = None, label: str | None = None,
                keys: pa.Table | None = None, cluster_by: str | None = None) -> dict:
    """Upsert ``source`` into the Delta table at ``path`` by ``key`` (created when absent), as one commit.

    With ``delete_flag`` (a boolean source column, not written): a flagged row deletes the target row
    with its key instead (and is not inserted). The rows of the source's keys are replaced by rewriting only
    the files holding one of them (:func:`replace_span`, the search narrowed by :func:`key_span`), streamed, not
    by delta-rs's MERGE, which holds the target in memory (7.5 GB for a day of re-sent decisions on silver at
    10 million rows). A column the table has and ``source`` lacks
    keeps its values in the rows kept, null in the rows written; a column ``source`` brings is added.
    ``keys``: the key columns of every source row; given, a stream ``source`` is streamed, not held (a
    department re-sending its whole table corrected: at 1 million records the process step held 3 GB).
    ``cluster_by``: the table is clustered on that date column and ``source`` comes sorted by it
    (:func:`write_table`).
    A Spark DataFrame is merged by delta-spark (DeltaTable.merge, the same stamps and clauses). Returns
    :func:`replace_span`'s counts (``created`` when the table was made).
    """
    if is_spark(source):
        from govlake import _spark_delta

        metrics = _spark_delta.merge(path, source, key=key, run_id=run_id, delete_flag=delete_flag, txn=txn)
        crash_point(_label(path, label))
        return metrics
    source = source.reader() if isinstance(source, deltafiles.Rows) else source
    if keys is None:
        source = source.read_all() if isinstance(source, pa.RecordBatchReader) else source
        keys = source.select(list(key))
    if open_table(path) is None:
        written = 0

        def rows() -> Iterable[pa.RecordBatch]:
            nonlocal written
            for batch in _batches(source):
                kept = _without_flagged(pa.Table.from_batches([batch]), delete_flag)
                written += kept.num_rows
                yield from kept.to_batches()

        schema = pa.schema([f for f in source.schema if f.name != delete_flag])
        write_table(path, rows(), schema=schema, mode="append", run_id=run_id, txn=txn, label=label,
                    cluster_by=cluster_by)
        return {"num_source_rows": keys.num_rows, "num_target_rows_written": written, "created": True}
    return replace_span(path, source, key=key, span=key_span(keys, key), run_id=run_id, delete_flag=delete_flag,
                        txn=txn, label=label, keys=keys, cluster_by=cluster_by)


def _batches(source: pa.Table | pa.RecordBatchReader) -> Iterable[pa.RecordBatch]:
    return source.to_batches() if isinstance(source, pa.Table) else source


KEY_LIST_VALUES = 20_000
"""Most distinct values of a key column :func:`key_span` lists (a day brings 10,000 records); a column with
more is left out of the predicate (a wider span, the same result)."""


def key_span(source: pa.Table, key: Sequence[str]) -> str:
    """A predicate holding every row with one of ``source``'s keys: per key column, its distinct values as an
    ``in`` list (and ``is null`` when one is null), joined by ``and``. It may hold rows of other keys too (a
    composite key's values paired otherwise): :func:`replace_span` keeps those. ``true`` when no column can be
    listed (too many values, or a type without a literal here): the whole table."""
    parts = []
    for k in key:
        values = _distinct(source[k], KEY_LIST_VALUES)
        literals = [sql_literal(v) for v in values] if values is not None else [None]
        if None in literals:
            continue
        terms = [f"{k} in ({', '.join(literals)})"] if literals else []
        if source[k].null_count:
            terms.append(f"{k} is null")
        parts.append("(" + " or ".join(terms) + ")")
    return " and ".join(parts) or "true"


def _distinct(values: pa.ChunkedArray, most: int) -> list | None:
    """The distinct non-null values of ``values`` in their order, or None as soon as there are more than ``most``:
    read a slice at a time (a whole table's 8.2 million decision numbers are not hashed at once to learn that)."""
    seen: dict = {}
    for chunk in values.chunks:
        for start in range(0, len(chunk), _DISTINCT_SLICE):
            seen.update(dict.fromkeys(pa.compute.unique(chunk.slice(start, _DISTINCT_SLICE)).drop_null().to_pylist()))
            if len(seen) > most:
                return None
    return list(seen)


_DISTINCT_SLICE = 65_536


def sql_literal(value) -> str | None:
    """``value`` as a DuckDB SQL literal; None for a type it does not write."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (str, date)) and not isinstance(value, datetime):
        return "'" + str(value).replace("'", "''") + "'"
    return None


def replace_span(path: Location, matched: pa.Table | pa.RecordBatchReader, *, key: Sequence[str], span: str,
                 run_id: str, delete_flag: str | None = None, txn: tuple[str, int] | None = None,
                 label: str | None = None, keys: pa.Table | None = None, cluster_by: str | None = None,
                 files: Sequence[str] = (), version: int | None = None) -> dict:
    """Upsert ``matched`` by rewriting only the data files holding a row of one of its keys: one commit removing
    those files and adding, as new files, their rows of other keys with ``matched`` less the rows flagged
    ``delete_flag``. DuckDB finds the files: the rows ``span`` selects (row groups outside it skipped by their
    statistics) joined with the keys. ``span`` must hold every row of ``matched``'s keys in the table: the dates
    of :func:`split_matched`'s rows on a table clustered on one, or :func:`key_span`'s lists of the keys.

    Neither delta-rs's MERGE (it read the whole table into memory: 8.6 GB at 10 million records) nor its predicate
    overwrite (the predicate evaluated again by delta-rs over the files its statistics select, ~36 µs a listed
    key, and stored in the commit: 371 KB for 10,000 keys). The rows are streamed from DuckDB, not held: a day
    re-sending decisions of many dates rewrites many files; so is a stream ``matched`` when ``keys`` (the key
    columns of all its rows) is given. A column the table has and ``matched`` lacks keeps its values in the rows
    kept. ``cluster_by``: the table is clustered on that date column, its files cut as :func:`write_table` cuts
    them. ``files`` (with the ``version`` they were found in: :func:`split_matched`'s): the data files holding
    every row of the keys; only they are read, in that version, on which the commit is made (a commit made
    meanwhile that removed one of them fails it). Returns the source's rows, the rows written from it, the
    table's rows it replaced (removed: updated or deleted) and the rows of the rewritten files kept (copied)."""
    if keys is None:
        matched = matched.read_all() if isinstance(matched, pa.RecordBatchReader) else matched
        keys = matched.select(list(key))
    table = open_table(path, version=version if files else None)
    target = pa.schema(table.schema().to_arrow())
    fields = [f for f in matched.schema if f.name != delete_flag]
    schema = pa.schema(fields + [f for f in target if f.name not in {g.name for g in fields}])
    columns, have = schema.names, set(target.names)
    on = " and ".join(f"t.{k} = s.{k}" for k in key)
    hit = f"exists (select 1 from source_keys as s where {on})"
    copied = written = 0
    logged = _logged_files(table)
    with _probe() as con:
        con.register("source_keys", keys)
        found: list[tuple[str, int]] = []  # (a file holding rows of the keys, how many)
        named = set(files)
        searched = [f for f in logged if f in named] if named else list(logged)
        if len(searched) < len(named):
            raise ValueError(f"{path}: version {version} does not hold every file the keys were found in")
        if searched:
            _parquet_view(con, "target", searched, file_column=True)
            found = con.sql(f"select {FILE_COLUMN}, count(*) from target as t where ({span}) and {hit} "
                            f"group by {FILE_COLUMN}").fetchall()
        rewritten = [f for f, _ in found]
        removed = sum(n for _, n in found)
        made = key_hash_sql(key, "t")  # the kept rows' hash, for those written without it

        def pick(c: str) -> str:
            if c == KEY_HASH:
                return f"{f'coalesce(t.{KEY_HASH}, {made})' if KEY_HASH in have else made} as {KEY_HASH}"
            return f"t.{c}" if c in have else f"null as {c}"

        listed = ", ".join(pick(c) for c in columns)  # in the order of ``schema``
        kept_rows: Iterable[pa.RecordBatch] = []
        if rewritten:
            _parquet_view(con, "rewritten", rewritten)
            kept_rows = con.sql(f"select {listed} from rewritten as t where not {hit}").to_arrow_reader(
                KEPT_BATCH_ROWS)

        def rows() -> Iterable[pa.RecordBatch]:
            nonlocal copied, written
            for batch in kept_rows:
                copied += batch.num_rows
                yield batch if batch.schema.equals(schema) else batch.cast(schema)
            read = 0
            for batch in _batches(matched):  # the source's rows, less the flagged ones, with the table's columns
                read += batch.num_rows
                upserts = _without_flagged(pa.Table.from_batches([batch]), delete_flag)
                for f in schema:
                    if f.name not in upserts.column_names:
                        upserts = upserts.append_column(f.name, pa.nulls(upserts.num_rows, f.type))
                written += upserts.num_rows
                yield from upserts.select(columns).cast(schema).to_batches()
            if read != keys.num_rows:  # a stream cut short (another query on its connection ends it): no commit
                raise RuntimeError(f"{path}: the rows to merge ended after {read:,} of {keys.num_rows:,}; "
                                   "nothing was written")

        write_table(path, rows(), schema=schema, mode="append", run_id=run_id, txn=txn, label=label,
                    cluster_by=cluster_by, removes=[logged[f] for f in rewritten], snapshot=table)
    return {"num_source_rows": keys.num_rows, "num_target_rows_written": written,
            "num_target_rows_removed": removed, "num_target_rows_copied": copied, "num_removed_files": len(rewritten)}


def _logged_files(table: DeltaTable) -> dict[str, tuple[str, int]]:
    """The table's data files: their URIs (as DuckDB reads them) → (path in the log, size)."""
    actions = pa.table(table.get_add_actions(flatten=False)).select(["path", "size_bytes"]).to_pylist()
    by_name = {a["path"].rsplit("/", 1)[-1]: (a["path"], a["size_bytes"]) for a in actions}
    return {uri: by_name[uri.rsplit("/", 1)[-1]] for uri in table.file_uris()}


KEPT_BATCH_ROWS = 10_000
"""Rows per Arrow batch of :func:`replace_span`'s stream of the span's rows (as govlake.compute streams)."""
PROBE_MEMORY = "512MB"
"""DuckDB's memory limit for :func:`split_matched`'s lookup and :func:`replace_span`'s copy (a hash table of the
source's keys)."""


@contextmanager
def _probe() -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection of :data:`PROBE_MEMORY` spilling to a folder of its own (``govlake-duckdb/<pid>-…`` in
    the system's temporary folder), removed after, and by the next one if its process was killed (DuckDB's
    default is ``.tmp`` in the working directory: a department's whole table re-sent spilled the keys' hash
    table there). It keeps the Parquet footers it reads (:func:`_keep_footers`)."""
    root = Path(tempfile.gettempdir()) / "govlake-duckdb"
    root.mkdir(exist_ok=True)
    remove_abandoned(root)
    spill = tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root)
    con = quiet(duckdb.connect(config={"memory_limit": PROBE_MEMORY, "temp_directory": spill}))
    try:
        _keep_footers(con)
        yield con
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)


class Split(NamedTuple):
    """:func:`split_matched`'s parts of a source: the rows whose key the table holds, for :func:`replace_span`; the
    others, to append (less any flagged); the span of the matched rows' dates (None when no key matched); the
    data files (URIs) holding their keys' rows, in the table's ``version`` that was looked up."""

    matched: pa.Table
    new: pa.Table
    span: str | None
    files: tuple[str, ...] = ()
    version: int | None = None


def split_matched(path: Location, source: pa.Table, *, key: Sequence[str], cluster_by: str,
                  delete_flag: str | None = None) -> Split:
    """``source`` split for a table clustered on the date column ``cluster_by`` (written sorted by it with
    :func:`write_table`'s ``cluster_by``), as a :class:`Split`. Both parts carry :data:`KEY_HASH`, for the table.

    The span is a predicate on ``cluster_by`` holding the dates of the matched rows, both as the table has them
    and as ``source`` has them (``is null`` added for null ones), as literals DuckDB skips row groups by: a row
    whose date changed is found where it was and lands where it goes. The lookup is DuckDB reading the target's
    files (locally or on S3, through :func:`_parquet_view`): the dates of the rows whose :data:`KEY_HASH` is one
    of the source's (that column and ``cluster_by`` read whole), then the keys compared in the row groups of
    those dates only, and in the rows written without the hash (a table written before it, or by delta-spark). A
    table without the column is looked up by its key columns, the one scan of them all.

    The lookup also names the files the keys' rows are in: :func:`replace_span` reads those alone, in the same
    version of the table. The span alone cannot narrow the search when the keys' dates lie all over the table
    (a day re-sending decisions of every year: at 10 million records the span was the whole table and finding
    the two files holding the keys took 3.8 s).
    """
    index = pa.array(range(source.num_rows), pa.int64())
    table = open_table(path)
    with _probe() as con:
        con.register("keys", source.select(list(key)).append_column("_i", index))
        source_keys = con.sql(f"select *, {key_hash_sql(key)} as {KEY_HASH} from keys order by _i").to_arrow_table()
        con.register("source_keys", source_keys)
        if KEY_HASH in source.schema.names:  # made here whoever made it
            source = source.drop_columns([KEY_HASH])
        source = source.append_column(KEY_HASH, source_keys[KEY_HASH])
        files = table.file_uris() if table is not None else []
        if not files:
            return Split(source.slice(0, 0), _without_flagged(source, delete_flag), None)
        _parquet_view(con, "target", files, file_column=True)
        hits = con.sql(_lookup(con, key, cluster_by, pa.schema(table.schema().to_arrow()).names)).to_arrow_table()
        is_matched = pa.compute.is_in(index, hits["_i"])
        matched, new = source.filter(is_matched), _without_flagged(source.filter(pa.compute.invert(is_matched)),
                                                                   delete_flag)
        if not hits.num_rows:
            return Split(matched, new, None)
        values = pa.chunked_array([*hits[cluster_by].chunks, *matched[cluster_by].chunks], pa.date32())
        found = tuple(sorted(pa.compute.unique(hits[FILE_COLUMN]).to_pylist()))
        return Split(matched, new, _span(cluster_by, values), found, table.version())


def clustered_rows(path: Location, cluster_by: str, select: str) -> pa.RecordBatchReader:
    """The rows of ``select`` (a query of view ``t``: the Delta table at ``path``) in the table's order, for a
    table written clustered on the date column ``cluster_by`` (:func:`write_table`'s ``cluster_by``): its files
    are read one after the other in the order of their ranges of ``cluster_by`` (from the files' footers;
    nulls last, as the table was sorted) and each file's rows as they lie, in a DuckDB connection of its own
    that keeps that order — the table's sort, without sorting again. A filter and a projection keep the
    order. Streamed; the connection ends with the stream."""
    table = open_table(path)
    if table is None:
        raise ValueError(f"{path}: no Delta table to read")
    files = table.file_uris()
    stack = contextlib.ExitStack()
    con = stack.enter_context(_probe())
    try:
        con.execute("set preserve_insertion_order = true")  # the files' order, and each file's, kept
        if files:
            listed = _files_literal(con, files)
            ordered = [r[0] for r in con.sql(
                f"select file_name from parquet_metadata([{listed}]) where path_in_schema = '{cluster_by}' "
                "group by file_name order by min(stats_min_value::date) nulls last, max(stats_max_value::date) "
                "nulls last, file_name").fetchall()]
            given = dict(zip(_readable(files), files, strict=True))  # DuckDB names the files as it read them
            if sorted(ordered) != sorted(given):  # a file without statistics: the table is not clustered here
                raise ValueError(f"{path}: not every file has statistics of {cluster_by}")
            _parquet_view(con, "t", [given[f] for f in ordered])
        else:
            con.register("t", pa.schema(table.schema().to_arrow()).empty_table())
        reader = con.sql(select).to_arrow_reader(KEPT_BATCH_ROWS)
    except BaseException:
        stack.close()
        raise

    def batches() -> Iterator[pa.RecordBatch]:
        with stack:
            yield from reader

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def write_with_derived(reader: pa.RecordBatchReader, write: Callable[[pa.RecordBatchReader], object], *,
                       derive: Callable[[pa.RecordBatch], pa.RecordBatch], schema: pa.Schema,
                       write_derived: Callable[[pa.RecordBatchReader], object]) -> None:
    """Write the batches of ``reader`` (``write``, on this thread) and, read from the same stream, the batch ``derive``
    makes of each (``write_derived``, on a thread of its own; ``schema``: its columns), for two tables of one query
    that is read once (the credit step's records and their publication: one sort, not a second read).

    Each write commits on its own when its stream ends, as two writes one after the other would, in either order. A
    failure of ``reader``, ``derive`` or ``write`` ends the derived stream with an error, so that nothing of it is
    committed; a failure of ``write_derived`` is raised after ``write`` has finished (the batches are no longer
    handed to it). ``write_derived`` runs at most :data:`deltafiles.AHEAD` batches behind ``write``."""
    queue: Queue = Queue(deltafiles.AHEAD)
    gone = threading.Event()  # write_derived has returned: nothing takes the derived batches any more
    end = object()
    finished = False

    def hand(item) -> None:
        while not gone.is_set():
            try:
                queue.put(item, timeout=0.1)
                return
            except Full:
                continue

    def main() -> Iterator[pa.RecordBatch]:
        nonlocal finished
        for batch in reader:
            if not gone.is_set():
                hand((derive(batch), None))
            yield batch
        finished = True

    failure: list[BaseException] = []

    def side() -> None:
        try:
            write_derived(pa.RecordBatchReader.from_batches(schema, deltafiles.queued(queue, end)))
        except BaseException as exc:  # noqa: BLE001 - raised on the calling thread
            failure.append(exc)
        finally:
            gone.set()

    thread = threading.Thread(target=side, name="govlake-derived-write", daemon=True)
    thread.start()
    try:
        write(pa.RecordBatchReader.from_batches(reader.schema, main()))
    finally:
        hand((end, None if finished else RuntimeError("the rows it is derived from were not all written")))
        thread.join()
    if failure:
        raise failure[0]


def _without_flagged(rows: pa.Table, delete_flag: str | None) -> pa.Table:
    """``rows`` less those flagged ``delete_flag`` (the column dropped)."""
    if not delete_flag:
        return rows
    return rows.filter(pa.compute.invert(rows[delete_flag].fill_null(False))).drop_columns([delete_flag])


def date_span(column: str, dates: Sequence[dt.date | None]) -> str:
    """A predicate on date ``column`` holding ``dates`` (nulls too), with literals DuckDB skips row groups by: for a
    lookup in a table clustered on ``column`` (:func:`write_table`'s ``cluster_by``)."""
    return _span(column, pa.chunked_array([pa.array(dates, pa.date32())]))


def _span(column: str, values: pa.ChunkedArray) -> str:
    """A predicate on date ``column`` holding ``values`` (nulls too), with literals DuckDB skips row groups
    by."""
    span, parts = pa.compute.min_max(values), []
    if span["min"].is_valid:
        parts.append(f"{column} between '{span['min'].as_py().isoformat()}' and '{span['max'].as_py().isoformat()}'")
    if values.null_count:
        parts.append(f"{column} is null")
    return "(" + " or ".join(parts) + ")"


def _lookup(con: duckdb.DuckDBPyConnection, key: Sequence[str], cluster_by: str, have: Sequence[str]) -> str:
    """:func:`split_matched`'s query of (source row, the target's date, its file) for the source's keys the target
    ``target`` holds (view ``source_keys``: the keys, their :data:`KEY_HASH`, ``_i``; ``target`` with
    :data:`FILE_COLUMN`; ``have``: the table's columns, from its Delta schema — asking DuckDB for the view's read
    every file's footer: 0.03 s at 10 million records)."""
    on = " and ".join(f"t.{k} = s.{k}" for k in key)
    columns = ", ".join([*key, cluster_by, FILE_COLUMN])
    found = f"t.{cluster_by}, t.{FILE_COLUMN}"
    if KEY_HASH not in have:
        return f"select s._i, {found} from source_keys as s join target as t on {on}"
    dates = con.sql(f"select distinct t.{cluster_by} from target as t semi join source_keys as s "
                    f"on t.{KEY_HASH} = s.{KEY_HASH}").to_arrow_table()[cluster_by]
    # the rows written without the hash: a filter on its nulls, which row groups without any skip by their
    # statistics; the others only in the dates found (a clustered table's row groups each span a few)
    within = [f"{KEY_HASH} is null"]
    if len(dates):
        within.append(f"{KEY_HASH} is not null and {_span(cluster_by, dates)}")
    return " union all ".join(f"select s._i, {found} from source_keys as s join "
                              f"(select {columns} from target where {w}) as t on {on}" for w in within)


def register(con: duckdb.DuckDBPyConnection, name: str, path: Location, *,
             empty_schema: pa.Schema | None = None, version: int | None = None) -> bool:
    """Expose the Delta table at ``path`` (at ``version`` when given) to DuckDB as view ``name``.

    Returns False when the table does not exist; with ``empty_schema`` an empty view is
    registered instead so that models still run.
    """
    dt = open_table(path, version=version)
    if dt is None:
        if empty_schema is None:
            return False
        con.register(name, empty_schema.empty_table())
        return True
    files = dt.file_uris()
    if dt.metadata().partition_columns or not files:
        con.register(name, dt.to_pyarrow_dataset())
    else:
        # delta-rs writes neither deletion vectors nor column mapping here: the file list is the table
        _parquet_view(con, name, files)
    return True
