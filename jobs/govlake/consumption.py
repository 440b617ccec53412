"""Which version of a Delta table each consumer has processed (lake/meta/consumption).

Incremental steps (process: bronze → silver; credit: silver → gold) read only the data files added
since the version they consumed last (:func:`govlake.storage.files_since`) and record the version
they consumed once their outputs are committed. The table is append-only history; the latest row
per consumer and table wins. A rebuild records ``version = null`` ("nothing consumed").
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from govlake import storage
from govlake.config import Settings

SCHEMA = pa.schema([
    ("consumer", pa.string()), ("table_path", pa.string()), ("version", pa.int64()),
    ("run_id", pa.string()), ("recorded_at", pa.timestamp("us", tz="UTC")),
])
NAME = "consumption"


def consumed_version(settings: Settings, consumer: str, table: str) -> int | None:
    """The version of ``table`` (a lake-relative path such as ``bronze/credit_penalty``) last consumed."""
    dt = storage.open_table(storage.table_path(settings, "meta", NAME))
    if dt is None:
        return None
    con = storage.connect(settings)
    try:
        storage.register(con, "consumption", storage.table_path(settings, "meta", NAME))
        row = con.execute("""select version from consumption where consumer = ? and table_path = ?
                             order by recorded_at desc limit 1""", [consumer, table]).fetchone()
    finally:
        con.close()
    return None if row is None or row[0] is None else int(row[0])


def record_consumed(settings: Settings, consumer: str, versions: dict[str, int | None], run_id: str) -> None:
    """Record the versions ``consumer`` has now processed (None: start again from nothing)."""
    at = dt.datetime.now(dt.UTC)
    rows = [{"consumer": consumer, "table_path": t, "version": v, "run_id": run_id, "recorded_at": at}
            for t, v in versions.items()]
    storage.write_table(storage.table_path(settings, "meta", NAME), pa.Table.from_pylist(rows, schema=SCHEMA),
                        mode="append", run_id=run_id)
