"""Which version of a Delta table each consumer has processed (lake/meta/consumption).

Incremental steps (process: bronze → silver; credit: silver → gold) read only the data files added
since the version they consumed last (:func:`govlake.storage.files_since`) and record the version
they consumed once their outputs are committed. The table is append-only history; the latest row
per consumer and table wins. A rebuild records ``version = null`` ("nothing consumed").
"""

from __future__ import annotations

import datetime as dt

from govlake import contracts, storage
from govlake.config import Settings

SCHEMA = contracts.CONSUMPTION
NAME = "consumption"


def consumed_versions(settings: Settings, consumer: str) -> dict[str, int | None]:
    """Per table (a lake-relative path such as ``bronze/credit_penalty``), the version ``consumer``
    consumed last; a table it never consumed (or rebuilt from nothing) is absent or None."""
    if storage.open_table(storage.table_path(settings, "meta", NAME)) is None:
        return {}
    con = storage.connect(settings)
    try:
        storage.register(con, "consumption", storage.table_path(settings, "meta", NAME))
        rows = con.execute("""select table_path, arg_max(version, recorded_at) from consumption
                              where consumer = ? group by table_path""", [consumer]).fetchall()
    finally:
        con.close()
    return {table: None if version is None else int(version) for table, version in rows}


def consumption_rows(consumer: str, versions: dict[str, int | None], run_id: str) -> list[dict]:
    """The rows recording that ``consumer`` has now processed ``versions`` (None: start again from
    nothing); a step appends them as its last output (govlake.steps.Intent.append_rows)."""
    at = dt.datetime.now(dt.UTC)
    return [{"consumer": consumer, "table_path": t, "version": v, "run_id": run_id, "recorded_at": at}
            for t, v in versions.items()]
