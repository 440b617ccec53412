"""The session a pipeline step computes in: the same operations on DuckDB and on Spark.

A step names its relations and writes its SQL in DuckDB's dialect (the models' language); a
:class:`Compute` runs it on the engine the settings choose (govlake.engine):

- :class:`DuckCompute`: one in-memory DuckDB database spilling to var/work, Delta tables read as their
  Parquet data files (govlake.storage), results written as Parquet files by DuckDB itself or streamed to pyarrow
  as Arrow (govlake.deltafiles), committed by delta-rs;
- :class:`SparkCompute`: the process's SparkSession with Delta Lake, Delta tables read by delta-spark
  (at a version), the SQL translated by the dialect layer (govlake.transform), materialized relations
  checkpointed on the executors, results handed to delta-spark as DataFrames (govlake.storage writes
  them with the same commit stamps as delta-rs).

What a step reads back to the driver is small (counts, ids, a held batch's rules); rows go from the
engine to the Delta table without passing through the driver on Spark.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import pyarrow as pa

from govlake import deltafiles, storage
from govlake.config import memory_bytes
from govlake.transform import DUCKDB, SPARK, Dialect
from govlake.transform._models import parsed, referenced_relations

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

Kind = Literal["table", "view", "file"]


class Compute:
    """What every engine's session does for a step (see the module's docstring)."""

    dialect: Dialect
    name: str
    join_rows: int | None = None
    """Most rows on the build side of one of the large hash joins a step runs a part at a time (govlake.quality's
    flagged rows): None, one join whatever its size (Spark partitions its own joins)."""

    # ---- inputs ---------------------------------------------------------------------------------
    def register_arrow(self, name: str, table: pa.Table, *, shared: bool = False) -> None:
        """``table`` as relation ``name`` (materialized: it may be read several times; ``shared``: as
        :meth:`create`)."""
        raise NotImplementedError

    def register_delta(self, name: str, path: Path, *, version: int | None = None,
                       empty_schema: pa.Schema | None = None) -> bool:
        """The Delta table at ``path`` (at ``version``) as view ``name``; False when it does not exist
        (an empty view of ``empty_schema`` then, when given, and True)."""
        raise NotImplementedError

    def register_files(self, name: str, files: Sequence[str], schema: pa.Schema) -> None:
        """Data files of a Delta table (govlake.storage.files_since) as view ``name``, read by column name."""
        raise NotImplementedError

    # ---- relations ------------------------------------------------------------------------------
    def create(self, name: str, sql: str, *, kind: Kind = "table", shared: bool = False) -> None:
        """Relation ``name`` from ``sql`` (DuckDB dialect): a view, or a materialized table. ``file``: a
        materialized table too, for a large one read a few columns at a time — DuckDB writes it to a Parquet
        file of the session's scratch folder and reads it back (compressed, by column; an in-memory table
        beyond the memory limit would spill whole rows, uncompressed, and read them all back on every scan),
        Spark checkpoints it as any table. ``shared``: visible to other cursors of the session (DuckDB: GX's)."""
        raise NotImplementedError

    def delete_where(self, name: str, column: str, values: Iterable[str]) -> None:
        """Drop the rows of table ``name`` whose ``column`` is one of ``values``."""
        raise NotImplementedError

    def drop(self, *names: str) -> None:
        """Relations no longer needed, let go now rather than when the session closes: a materialized table's
        memory (DuckDB's in-memory tables stay in its buffer pool until dropped, and at the limit they push
        what comes after them to disk), a ``file`` relation's scratch file."""
        raise NotImplementedError

    def relations(self) -> set[str]:
        raise NotImplementedError

    def columns(self, name: str) -> list[str]:
        raise NotImplementedError

    # ---- reading back ---------------------------------------------------------------------------
    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """The rows of a small query (``?`` parameters)."""
        raise NotImplementedError

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple:
        rows = self.rows(sql, params)
        return rows[0] if rows else ()

    def count(self, sql_or_name: str) -> int:
        query = sql_or_name if " " in sql_or_name.strip() else f"select * from {sql_or_name}"
        return self.one(f"select count(*) from ({query}) as counted")[0]

    def data(self, sql: str, *, schema: pa.Schema | None = None, whole: bool = False, order_by: str | None = None,
             rows: int | None = None):
        """The result of ``sql`` as what govlake.storage writes on this engine: :class:`DuckRows` (an Arrow table
        when ``whole``) on DuckDB, a DataFrame on Spark; cast to ``schema`` (its columns, in its order).
        ``order_by``: a column the rows come ordered by, nulls last (``rows``: how many ``sql`` has, or more, when
        the caller knows; DuckDB sorts a large result in slices, :meth:`DuckCompute._ordered`)."""
        raise NotImplementedError

    def arrow(self, sql: str) -> pa.Table:
        """A small result as an Arrow table on the driver."""
        raise NotImplementedError

    def close(self) -> None:
        pass


def release_memory() -> None:
    """Give back to the system the memory a finished job freed. Arrow's allocator (mimalloc) and glibc's malloc
    keep freed pages for reuse, so in one process running job after job (``govlake run``, the benchmark) the next
    job would start with them: after a 10-million-record ingest the process held 739 MiB, 469 MiB once released.
    DuckDB and delta-rs bring allocators of their own (jemalloc), which neither call reaches: DuckDB's gives pages
    back by its background thread (storage.connect); delta-rs's keeps some 90 MiB after that ingest.

    What survives the collection is then frozen (``gc.freeze``): the modules, caches and catalog a job leaves
    behind are not traversed again by the next job's collection, which scans only what that job allocated
    (a full collection of a process that has imported Great Expectations took 0.17 s, every job). A frozen
    object is still freed when its last reference goes, but not as part of a cycle: a cache of cyclic objects
    (sqlglot's trees) is emptied here, before the collection, so that it is not frozen."""
    parsed.cache_clear()
    gc.collect()
    gc.freeze()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


# ---- DuckDB ---------------------------------------------------------------------------------------


class DuckRows(deltafiles.Rows):
    """A DuckDB query's rows bound for a Delta table (:meth:`DuckCompute.data`): streamed as Arrow batches of
    ``batch_rows`` cast to ``schema`` (:meth:`reader`), or written by DuckDB as Parquet files (:meth:`copy`: COPY,
    in parallel, row groups of storage.ROW_GROUP_ROWS rows or ``row_group_bytes``) where govlake.deltafiles can
    commit them. ``parts``: the queries of the result, read one after the other (one, or the slices of an ordered
    result: :meth:`DuckCompute.data`'s ``order_by``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, parts: Sequence[str], schema: pa.Schema | None,
                 batch_rows: int, row_group_bytes: int):
        self.parts = list(parts)
        self.con, self.sql, self._cast_to = con, " union all ".join(f"({q})" for q in self.parts), schema
        self.batch_rows, self.row_group_bytes = batch_rows, row_group_bytes
        self._written: pa.Schema | None = None
        self.schema = schema if schema is not None else self.written_schema()

    def written_schema(self) -> pa.Schema:
        if self._written is None:  # asked for by the constructor and by the write: the query is bound once
            self._written = self.con.sql(f"select * from (\n{self.parts[0]}\n) limit 0").to_arrow_table().schema
        return self._written

    def reader(self) -> pa.RecordBatchReader:
        def batches() -> Iterable[pa.RecordBatch]:
            for part in self.parts:  # one query at a time: the next starts when the last has been read
                yield from self.con.sql(part).to_arrow_reader(self.batch_rows)

        schema = self._cast_to
        if schema is None:
            return pa.RecordBatchReader.from_batches(self.written_schema(), batches())
        return pa.RecordBatchReader.from_batches(
            schema, (pa.Table.from_batches([b]).select(schema.names).cast(schema).to_batches()[0]
                     if b.num_rows else pa.RecordBatch.from_pylist([], schema=schema) for b in batches()))

    def copy(self, folder: Path, prefix: str, *, row_groups_per_file: int, row_group_rows: int) -> list[Path]:
        columns = ", ".join('"' + n.replace('"', '""') + '"' for n in self.schema.names)
        literal = str(folder).replace("'", "''")
        # a byte cap only where rows are written in parallel (storage.connect's sessions; DuckDB refuses it else)
        (ordered,) = self.con.execute("select current_setting('preserve_insertion_order')").fetchone()
        capped = "" if ordered else f"row_group_size_bytes {self.row_group_bytes}, "
        # APPEND: into a folder holding the table's other files; it wants a {uuid} in the names
        rows = self.con.execute(f"""copy (select {columns} from (\n{self.sql}\n) as q) to '{literal}' (
            format parquet, compression snappy, row_groups_per_file {row_groups_per_file},
            row_group_size {row_group_rows}, {capped}filename_pattern '{prefix}{{uuid}}-c000.snappy', append,
            return_files)""").fetchall()
        return [folder / Path(f).name for f in rows[0][1]]


class DuckCompute(Compute):
    """A step's DuckDB database (``con``), or a wrapper of any DuckDB connection."""

    name = "duckdb"
    dialect = DUCKDB
    BATCH_ROWS = 10_000
    """Rows per Arrow batch of :meth:`data`'s stream. delta-rs keeps a queue of batches between the stream and
    its file writers: at 100,000 rows a batch of the quarantine's wide rows (bronze's raw strings) is ~85 MiB
    and writing 1.46 million of them peaked at 1,227 MiB; at 20,000 rows 782 MiB, at 10,000 615 MiB, in the
    same time (5.2, 5.9, 5.0 s)."""

    ROW_GROUP_BYTES = 128 << 20
    """A ``file`` relation's row group ends at :data:`storage.ROW_GROUP_ROWS` rows or at this many bytes as DuckDB
    holds them, whichever comes first: each of DuckDB's threads holds its open row group, and 131,072 rows of the
    standardize model's 70 columns (Great Expectations' rows) made DuckDB spill at its 768 MB — 1.5 million of them
    written in 13.4–15.8 s, 3.8 s so. The checked model's row groups (45 columns) stay whole (at 64 MiB they were
    cut to 73,728 rows, in the same time)."""

    SORT_ROWS = 5_000_000
    """Most rows DuckDB sorts at once for :meth:`data`'s ``order_by`` at the default memory limit (768 MB), and in
    proportion to the limit set (:attr:`sort_rows`). DuckDB 1.5's sort of wide rows needs memory that grows with
    the rows: the credit step's 8.2 million penalty records (44 columns) sorted at 768 MB, took 177 s at 512 MB
    (spilling over and over) and failed at 384 MB ("failed to pin block"); 24.6 million failed at 768 MB."""

    JOIN_ROWS = 2_000_000
    """:attr:`Compute.join_rows` at the default memory limit (768 MB). The process step's join of its flagged rows
    with their bronze rows (the failing rows as sent): at 10 million records 1.5 million flagged rows joined in
    3.7 s; at 30 million 4.5 million took 145 s of DuckDB spilling the join's build side over and over, and in
    parts of at most 1.7 million rows 10.5 s."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *, owned: bool = True, scratch: Path | None = None,
                 memory: int | None = None):
        self.con = con
        self._owned = owned
        scale = 1.0 if memory is None else memory / (768 * 10**6)
        self.sort_rows = max(1, int(self.SORT_ROWS * scale))
        """Rows sorted at once: :attr:`SORT_ROWS` at the default memory limit, in proportion to ``memory`` (the
        connection's limit, bytes)."""
        self.join_rows = max(1, int(self.JOIN_ROWS * scale))
        """:attr:`Compute.join_rows`: :attr:`JOIN_ROWS` at the default memory limit, in proportion to ``memory``."""
        self._sorted = 0
        self._scratch_root = scratch
        """Where the session's ``file`` relations go (a folder of its own in it, removed on close); without it
        they are in-memory tables."""
        self._scratch: Path | None = None
        self._files: dict[str, tuple[str, bool]] = {}
        """``file`` relations: name → (the Parquet file, shared)."""
        self._left_out: dict[str, tuple[str, set[str]]] = {}
        """Of a ``file`` relation, the values of the column :meth:`delete_where` named (name → (column, values))."""

    def _scratch_dir(self) -> Path:
        if self._scratch is None:
            self._scratch_root.mkdir(parents=True, exist_ok=True)
            storage.remove_abandoned(self._scratch_root)
            self._scratch = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=self._scratch_root))
        return self._scratch

    def _file_view(self, name: str, where: str = "") -> None:
        path, shared = self._files[name]
        literal = path.replace("'", "''")
        self.con.execute(f"create or replace {'' if shared else 'temp '}view {name} as "
                         f"select * from read_parquet('{literal}'){where}")

    def register_arrow(self, name: str, table: pa.Table, *, shared: bool = False) -> None:
        self.con.register(f"{name}_arrow", table)
        self.con.execute(f"create or replace {'' if shared else 'temp '}table {name} as select * from {name}_arrow")
        self.con.unregister(f"{name}_arrow")

    def register_delta(self, name: str, path: Path, *, version: int | None = None,
                       empty_schema: pa.Schema | None = None) -> bool:
        return storage.register(self.con, name, path, empty_schema=empty_schema, version=version)

    def register_files(self, name: str, files: Sequence[str], schema: pa.Schema) -> None:
        storage.register_files(self.con, name, files, schema)

    def create(self, name: str, sql: str, *, kind: Kind = "table", shared: bool = False) -> None:
        if kind == "file" and self._scratch_root is not None:
            path = self._scratch_dir() / f"{name}.parquet"
            literal = str(path).replace("'", "''")
            self.con.execute(f"copy (\n{sql}\n) to '{literal}' (format parquet, row_group_size "
                             f"{storage.ROW_GROUP_ROWS}, row_group_size_bytes {self.ROW_GROUP_BYTES})")
            self._files[name] = (str(path), shared)
            self._left_out.pop(name, None)
            self._file_view(name)
            return
        kind = "table" if kind == "file" else kind
        self.con.execute(f"create or replace {'' if shared else 'temp '}{kind} {name} as\n{sql}")

    def delete_where(self, name: str, column: str, values: Iterable[str]) -> None:
        if name in self._files:  # a file is not changed: its view leaves the rows out
            previous_column, left_out = self._left_out.get(name, (column, set()))
            if previous_column != column:
                raise ValueError(f"{name}: rows were left out by {previous_column}, not {column}")
            left_out = left_out | set(values)
            self._left_out[name] = (column, left_out)
            self.register_arrow(f"{name}__deleted", pa.table({"value": pa.array(sorted(left_out), pa.string())}),
                                shared=self._files[name][1])
            self._file_view(name, f" where {column} not in (select value from {name}__deleted)")
            return
        self.con.execute(f"delete from {name} where {column} in (select unnest(?))", [list(values)])

    def drop(self, *names: str) -> None:
        views = {r[0] for r in self.con.execute("select view_name from duckdb_views() where not internal").fetchall()}
        for name in names:
            self.con.execute(f"drop {'view' if name in views else 'table'} if exists {name}")
            if name in self._files:  # a view of its file, and the table of the rows it leaves out
                self.con.execute(f"drop table if exists {name}__deleted")
                Path(self._files.pop(name)[0]).unlink(missing_ok=True)
                self._left_out.pop(name, None)

    def relations(self) -> set[str]:
        return {r[0] for r in self.con.execute(
            "select table_name from duckdb_tables() union all select view_name from duckdb_views() "
            "where not internal").fetchall()}

    def columns(self, name: str) -> list[str]:
        return self.con.sql(f"select * from {name}").columns

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()

    def data(self, sql: str, *, schema: pa.Schema | None = None, whole: bool = False, order_by: str | None = None,
             rows: int | None = None):
        ordered = self._ordered(sql, order_by, rows) if order_by else sql
        parts = [ordered] if isinstance(ordered, str) else ordered
        if whole:
            table = pa.concat_tables(self.con.sql(q).to_arrow_table() for q in parts)
            return table if schema is None else table.select(schema.names).cast(schema)
        return DuckRows(self.con, parts, schema, self.BATCH_ROWS, self.ROW_GROUP_BYTES)

    def _ordered(self, sql: str, by: str, rows: int | None) -> str | list[str]:
        """``sql`` ordered by ``by`` (nulls last): one sort when it has at most :attr:`sort_rows` rows, else its rows
        written once to the scratch folder and sorted in slices of ``by``'s values of at most that many rows each
        (a value holding more is a slice of its own, read unsorted), one slice after the other, nulls last."""
        if rows is None:
            rows = self.count(sql)
        if rows <= self.sort_rows:
            return f"select * from (\n{sql}\n) as q order by {by} nulls last"
        self._sorted += 1
        name = f"ordered_{self._sorted}"
        self.create(name, sql, kind="file")

        def part(low, high) -> str:
            bounds = (storage.sql_literal(low), storage.sql_literal(high))
            if None in bounds:
                raise ValueError(f"{by}: no SQL literal for {low!r} or {high!r}")
            order = f" order by {by}" if low != high else ""
            return f"select * from {name} where {by} between {bounds[0]} and {bounds[1]}{order}"

        counts = self.rows(f"select null, {by}, count(*) from {name} where {by} is not null group by all order by {by}")
        return [*(part(low, high) for _, low, high in runs(counts, self.sort_rows)),
                f"select * from {name} where {by} is null"]

    def arrow(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def close(self) -> None:
        if self._owned:
            self.con.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


def as_compute(con) -> Compute:
    """``con`` as a Compute (a DuckDB connection is wrapped, not closed by the wrapper)."""
    return con if isinstance(con, Compute) else DuckCompute(con, owned=False)


# ---- Spark ----------------------------------------------------------------------------------------


class SparkCompute(Compute):
    """A step's relations in the process's SparkSession: temporary views named per step (dropped on close)."""

    name = "spark"
    dialect = SPARK

    def __init__(self, spark: SparkSession):
        self.spark = spark
        self._columns: dict[str, dict[str, str]] = {}
        """This session's views: name → {column: Spark type}, in order (what the dialect layer expands
        stars with), kept here rather than asked of Spark's catalog each time."""

    # inputs
    def _view(self, name: str, df: DataFrame) -> None:
        df.createOrReplaceTempView(name)
        self._columns[name] = {f.name: f.dataType.simpleString() for f in df.schema}

    def _materialize(self, df: DataFrame) -> DataFrame:
        """``df`` computed once and kept on the executors: it is read several times, and the plans of the
        steps after it start from it instead of growing."""
        return df.localCheckpoint(eager=True)

    def register_arrow(self, name: str, table: pa.Table, *, shared: bool = False) -> None:
        from pyspark.sql.pandas.types import from_arrow_schema

        df = (self.spark.createDataFrame(table) if table.num_rows
              else self.spark.createDataFrame([], schema=from_arrow_schema(table.schema)))
        self._view(name, self._materialize(df))

    def register_delta(self, name: str, path: Path, *, version: int | None = None,
                       empty_schema: pa.Schema | None = None) -> bool:
        if storage.open_table(path, version=version) is None:
            if empty_schema is None:
                return False
            self.register_arrow(name, empty_schema.empty_table())
            return True
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        self._view(name, reader.load(spark_path(path)))
        return True

    def register_files(self, name: str, files: Sequence[str], schema: pa.Schema) -> None:
        from pyspark.sql.pandas.types import from_arrow_schema

        if not files:
            self.register_arrow(name, schema.empty_table())
            return
        # the contract's schema: a column a file lacks (written before it was added) reads as null
        self._view(name, self.spark.read.schema(from_arrow_schema(schema)).parquet(*files))

    # relations
    def _spark_sql(self, sql: str) -> str:
        schema = {r: self._columns[r] for r in referenced_relations(sql) if r in self._columns}
        return self.dialect.to_engine(sql, schema)

    def sql(self, sql: str, params: Sequence[Any] = ()) -> DataFrame:
        """``sql`` (DuckDB dialect) as a DataFrame of this session."""
        return self.spark.sql(self._spark_sql(sql), args=list(params) or None)

    def create(self, name: str, sql: str, *, kind: Kind = "table", shared: bool = False) -> None:
        df = self.sql(sql)
        self._view(name, df if kind == "view" else self._materialize(df))

    def delete_where(self, name: str, column: str, values: Iterable[str]) -> None:
        from pyspark.sql import functions as F

        kept = self.spark.table(name).where(~F.col(column).isin(list(values)))
        self._view(name, self._materialize(kept))

    def drop(self, *names: str) -> None:
        for name in names:
            if self._columns.pop(name, None) is not None:
                self.spark.catalog.dropTempView(name)

    def relations(self) -> set[str]:
        return set(self._columns)

    def columns(self, name: str) -> list[str]:
        return list(self._columns[name])

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return [tuple(r) for r in self.sql(sql, params).collect()]

    def data(self, sql: str, *, schema: pa.Schema | None = None, whole: bool = False, order_by: str | None = None,
             rows: int | None = None) -> DataFrame:
        df = self.sql(f"select * from ({sql}) as q order by {order_by} nulls last" if order_by else sql)
        if schema is None:
            return df
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_type

        return df.select([F.col(f.name).cast(from_arrow_type(f.type)).alias(f.name) for f in schema])

    def arrow(self, sql: str) -> pa.Table:
        return self.sql(sql).toArrow()

    def close(self) -> None:
        for name in self._columns:
            self.spark.catalog.dropTempView(name)
        self._columns.clear()


def spark_path(path: Path | str) -> str:
    """A lake location as Spark reads it."""
    return str(path)


def runs(counts: Iterable[tuple[Any, Any, int]], most: int) -> list[tuple[Any, Any, Any]]:
    """Rows counted per (group, value), in order, gathered into runs (group, first value, last value) of
    consecutive values of one group holding at most ``most`` rows each; a value holding more is a run of its own.
    What a result too large for one DuckDB operation is cut into (:meth:`DuckCompute._ordered`'s slices,
    govlake.quality's flagged parts)."""
    found: list[list] = []
    held = 0
    for group, value, n in counts:
        if not found or group != found[-1][0] or held + n > most:
            found.append([group, value, value])
            held = 0
        found[-1][2] = value
        held += n
    return [(group, first, last) for group, first, last in found]


def open_compute(engine) -> Compute:
    """A new step session on ``engine`` (govlake.engine.Engine)."""
    if engine.name == "duckdb":
        return DuckCompute(engine.connect(), scratch=engine.settings.work / "relations",
                           memory=memory_bytes(engine.settings.duckdb_memory_limit))
    return SparkCompute(engine.session())
