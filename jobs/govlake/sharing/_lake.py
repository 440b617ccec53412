"""What the lake says about each resource: last landing, rows in silver, rows landed per department, and
its 认领/挂载 history."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pyarrow as pa

from govlake import storage
from govlake.catalog import Catalog
from govlake.config import Settings

BEIJING = dt.timezone(dt.timedelta(hours=8))
"""Landing dates are counted in Beijing time (no daylight saving, so a fixed offset)."""
_OFFSET_US = 8 * 3600 * 1_000_000
"""Beijing time from a UTC instant in SQL, independent of DuckDB's session time zone."""
UNRESOLVED = "unresolved"
"""Department scope of bronze rows whose 数据来源单位统一社会信用代码 names no known department."""


@dataclass(frozen=True)
class LakeFacts:
    """Inputs the KPIs take from the lake, already reduced."""

    last_landed: dict[str, dt.date]
    """Resource code → Beijing date of its latest ``landed`` batch with rows (meta/ingest_log)."""
    mounted_rows: dict[str, int]
    """Resource code → rows of ``silver/<resource>`` (0 when the table is missing)."""
    landed_rows: tuple[tuple[str, str, int], ...]
    """(department, month ``YYYY-MM`` of landing in Beijing time, rows) from bronze."""
    claims: tuple[dict, ...] = ()
    """Every 认领/挂载 step (meta/catalog_claims_history and the seeded YAML claims not recorded yet)."""
    table_rows: dict[str, int] = field(default_factory=dict)
    """Table mounted in ``claims`` (``silver/<name>``) → its rows now (0 when the table is missing)."""


def read_lake(settings: Settings, catalog: Catalog) -> LakeFacts:
    """Reduce meta/ingest_log, bronze, silver and the claim history to :class:`LakeFacts`."""
    from govlake.governance import claim_history

    claims = claim_history(settings, catalog=catalog)
    tables = {r["mounted_table"] for r in claims if r["mounted_table"]}
    table_rows = {t: storage.row_count(storage.table_path(settings, "silver", t.removeprefix("silver/")))
                  for t in tables}
    con = storage.connect(settings)
    try:
        last: dict[str, dt.date] = {}
        if storage.register(con, "ingest_log", storage.table_path(settings, "meta", "ingest_log")):
            rows = con.execute("""
                select resource, max(epoch_us(received_at)) from ingest_log
                where status = 'landed' and rows > 0 group by resource""").fetchall()
            last = {code: _beijing(us).date() for code, us in rows if us is not None}
        mounted = {code: storage.row_count(storage.table_path(settings, "silver", res.slug))
                   for code, res in catalog.resources.items()}
        depts = pa.table({"code": [d.code for d in catalog.departments.values()],
                          "uscc": [d.uscc for d in catalog.departments.values()]})
        con.register("ref_department", depts)
        landed: dict[tuple[str, str], int] = {}
        for res in catalog.resources.values():
            name = f"bronze_{res.slug}"
            if not storage.register(con, name, storage.table_path(settings, "bronze", res.slug)):
                continue
            if res.department_from:
                dept = f"coalesce(d.code, '{UNRESOLVED}')"
                join = (f"left join ref_department as d "
                        f"on upper(trim(b.{res.department_from})) = d.uscc")
            else:
                dept, join = f"'{res.provider}'", ""
            for dep, month, n in con.execute(f"""
                    select {dept} as dept, strftime(make_timestamp(epoch_us(b._received_at) + {_OFFSET_US}), '%Y-%m')
                        as month,
                        count(*) as n
                    from {name} as b {join}
                    group by all""").fetchall():
                landed[(dep, month)] = landed.get((dep, month), 0) + n
    finally:
        con.close()
    return LakeFacts(last, mounted, tuple((d, m, n) for (d, m), n in sorted(landed.items())), tuple(claims),
                     table_rows)


def _beijing(epoch_us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch_us / 1_000_000, tz=BEIJING)
