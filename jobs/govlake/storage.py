"""The one storage layer: Delta tables on disk through deltalake (delta-rs), read by DuckDB.

Jobs never open files themselves; they ask for a table by layer and name and hand back
Arrow data. Every write is stamped with the run id in the Delta commit metadata (STYLE.md §8).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from govlake.config import Settings

WriteMode = Literal["append", "overwrite"]
LAYERS = ("bronze", "silver", "quarantine", "gold", "meta")


def table_path(settings: Settings, layer: str, name: str) -> Path:
    if layer not in LAYERS:
        raise ValueError(f"unknown layer {layer!r}; layers are {LAYERS}")
    return settings.table_path(layer, name)


def open_table(path: Path) -> DeltaTable | None:
    """The Delta table at ``path``, or None when none has been written yet."""
    try:
        return DeltaTable(str(path))
    except TableNotFoundError:
        return None


def write_table(
    path: Path,
    data: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch],
    *,
    mode: WriteMode,
    run_id: str,
    schema: pa.Schema | None = None,
    predicate: str | None = None,
    partition_by: list[str] | None = None,
) -> None:
    """Write Arrow data as one Delta commit; streams a reader without holding it in memory."""
    if not isinstance(data, (pa.Table, pa.RecordBatchReader)):
        if schema is None:
            raise ValueError("an iterable of batches needs its schema")
        data = pa.RecordBatchReader.from_batches(schema, iter(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_deltalake(
        str(path),
        data,
        mode=mode,
        predicate=predicate,
        partition_by=partition_by,
        schema_mode="merge" if mode == "append" else "overwrite",
        commit_properties=CommitProperties(custom_metadata={"govlake.run_id": run_id}),
    )


def row_count(path: Path) -> int:
    """Rows in the current version of the Delta table at ``path`` (0 when absent)."""
    dt = open_table(path)
    return 0 if dt is None else dt.to_pyarrow_dataset().count_rows()


def connect(settings: Settings, *, database: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection tuned for this machine, spilling to var/work."""
    settings.work.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(database or ":memory:")
    con.execute(f"set temp_directory = '{settings.work / 'duckdb_tmp'}'")
    con.execute(f"set memory_limit = '{settings.duckdb_memory_limit}'")
    con.execute("set preserve_insertion_order = false")
    return con


def register(con: duckdb.DuckDBPyConnection, name: str, path: Path, *,
             empty_schema: pa.Schema | None = None) -> bool:
    """Expose the Delta table at ``path`` to DuckDB as view ``name`` (lazy Arrow dataset scan).

    Returns False when the table does not exist; with ``empty_schema`` an empty view is
    registered instead so that models still run.
    """
    dt = open_table(path)
    if dt is None:
        if empty_schema is None:
            return False
        con.register(name, empty_schema.empty_table())
        return True
    files = dt.file_uris()
    if dt.metadata().partition_columns or not files:
        con.register(name, dt.to_pyarrow_dataset())
    else:
        # The current version's Parquet files through DuckDB's own reader: parallel and several
        # times faster than an Arrow dataset scan. delta-rs writes neither deletion vectors nor
        # column mapping here, so the file list is the table.
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        con.execute(f'create or replace temp view "{name}" as select * from read_parquet([{listed}])')
    return True
