"""Database tables through SQLAlchemy, read by the catalog's watermark column with a look-back.

A read fetches the rows whose watermark is at or above ``lo`` = the high-water mark of the landed
windows minus the source's ``lookback`` (all rows on the first read and on a full scan), plus every
row whose watermark is null or not ISO text. Text columns are selected loosely in SQL (null, not
shaped ``YYYY-MM-DD…``, or not below the day before ``lo``), date-time columns natively; the
watermarks are then parsed in Python (``_watermark``) and the rows below ``lo`` dropped. The
fetched rows go into DuckDB with their content hash (``row_hash_sql``, the expression bronze rows
are hashed with); rows whose hash is already in bronze — in the batches of the windows the log says
may overlap the read — are dropped, the rest are numbered (rows without a usable watermark first,
then by watermark, key, hash) and land as one window. Rows stream from a server-side cursor
(``stream_results`` + ``yield_per``) into DuckDB, which spills to disk beyond its memory limit.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import sqlalchemy as sa

from govlake import storage
from govlake.catalog import Resource
from govlake.contracts import bronze_schema, row_hash_sql
from govlake.ingest._bronze import BATCH_ROWS, STRING, Assembler, extra_json
from govlake.ingest._headers import Layout, layout
from govlake.ingest._results import IngestError
from govlake.ingest._values import column_text
from govlake.ingest._watermark import CANONICAL_SHAPE, LOCAL, canonical, parse_watermark

_SHOWN = 5
"""Rows named in a warning about unparseable watermarks."""


@dataclass(frozen=True)
class Window:
    """One read of a table: watermarks in [lo, hi] plus the rows without a usable watermark."""

    table: str
    watermark: str
    lo: str | None
    """The read's lower bound, canonical; None: from the start (first read, full scan)."""
    hi: str | None
    """The high-water mark after the read: the largest of the previous mark and the watermarks read."""
    full_scan: bool = False

    @property
    def source(self) -> str:
        text = f"db:{self.table}?{self.watermark} in [{self.lo or '-inf'}, {self.hi or '-inf'}]"
        return text + " (full scan)" if self.full_scan else text


@dataclass
class WindowRead:
    """A window read and deduplicated, waiting in DuckDB (table ``window_rows``) to land."""

    con: duckdb.DuckDBPyConnection
    resource: Resource
    window: Window
    fetched: int
    """Rows read at or above ``lo`` or without a usable watermark, before deduplication."""
    rows: int
    """Rows not in bronze yet: the window."""
    unwatermarked: int
    """Of ``rows``, those whose watermark is null or unparseable."""
    row_hashes: str = ""
    """sha256 of the window's rows' content hashes in row order."""
    unparsed: list[tuple[int, str]] = field(default_factory=list)
    """(row number, value) of the window's rows whose watermark does not parse."""
    readable: bool = True
    """False when the read holds watermark values and none of them parses."""
    fields: list[tuple[str, str]] = field(default_factory=list)
    """The table's columns and their types (for lineage)."""

    @property
    def source_hash(self) -> str:
        """sha256 of the window's description and its rows' content hashes in row order."""
        return hashlib.sha256(f"{self.window.source}\n{self.row_hashes}".encode()).hexdigest()

    def warning(self) -> str | None:
        """The rows that land with an unparseable watermark (for quarantine), or None."""
        if not self.unparsed:
            return None
        named = ", ".join(f"row {n} ({self.window.watermark} {v!r})" for n, v in self.unparsed[:_SHOWN])
        more = f" and {len(self.unparsed) - _SHOWN} more" if len(self.unparsed) > _SHOWN else ""
        return (f"warning: {len(self.unparsed)} row(s) with a watermark that is not a date and time land "
                f"with _parse_error (quarantine): {named}{more}")

    def batches(self, asm: Assembler) -> Iterator[pa.RecordBatch]:
        """The window's rows as bronze record batches, in row-number order."""
        asm.headers, asm.types = [f for f, _ in self.fields], dict(self.fields)
        items = [i.column for i in self.resource.items]
        listed = ", ".join(f'"{c}"' for c in [*items, "_extra", "_parse_error", "_row_number"])
        for b in self.con.sql(f"select {listed} from window_rows order by _row_number").to_arrow_reader(BATCH_ROWS):
            yield asm.batch(b.num_rows, {c: b.column(c) for c in items}, b.column("_row_number"),
                            extra=b.column("_extra"), parse_error=b.column("_parse_error"))


def read_window(url: str, resource: Resource, *, con: duckdb.DuckDBPyConnection, lo: dt.datetime | None,
                high_water: dt.datetime | None, landed: list[str], full_scan: bool = False) -> WindowRead:
    """Read the rows of ``resource``'s table from ``lo`` (None: all) and drop those already landed;
    the database connection is closed when this returns.

    Args:
        url: SQLAlchemy URL of the database.
        con: DuckDB connection that holds the read (table ``window_rows``) until the caller is done.
        lo: the read's lower bound (local time); None reads the whole table.
        high_water: the high-water mark before the read (the window's hi is never below it).
        landed: bronze data files of the windows that may hold rows this read fetches again.
        full_scan: name the window a full scan.

    Raises:
        IngestError: no database, no table, a required or the watermark column missing, or a
            database error.
    """
    name, item = resource.source.table, resource.source.watermark
    assert name and item
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not Path(parsed.database).exists():
        raise IngestError(f"db:{name}: the SQLite database {parsed.database} does not exist")
    engine = sa.create_engine(parsed)
    try:
        with engine.connect() as conn:
            try:
                described = sa.inspect(conn).get_columns(name)
            except sa.exc.NoSuchTableError:
                raise IngestError(f"db:{name}: no such table in {engine.url.render_as_string()}") from None
            headers = [c["name"] for c in described]
            lay = layout(resource, headers)
            problem = lay.describe_missing(resource)
            if problem:
                raise IngestError(f"db:{name}: {problem}")
            if item not in lay.columns:
                raise IngestError(f"db:{name}: no column for the watermark {item}; the columns are: "
                                  f"{', '.join(headers)}")
            index = lay.columns[item]
            kind = described[index]["type"] if parsed.get_backend_name() != "sqlite" else None
            table = sa.table(name, *[sa.column(c) for c in headers])
            stmt = sa.select(*table.c)
            if lo is not None:
                stmt = stmt.where(_candidates(table.c[headers[index]], kind, lo))
            result = conn.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(stmt)
            fetch = _Fetch(resource, lay, index, lo)
            fetch.fields = [(c["name"], str(c["type"])) for c in described]
            con.register("fetched_stream", pa.RecordBatchReader.from_batches(fetch.schema, fetch.batches(result)))
            try:
                con.execute(f"create or replace temp table fetched as select *, {row_hash_sql(resource)} as _hash "
                            "from fetched_stream")
            except duckdb.Error:
                if fetch.failure is not None:
                    raise fetch.failure from None
                raise
            finally:
                con.unregister("fetched_stream")
    except sa.exc.SQLAlchemyError as exc:
        raise IngestError(f"db:{name}: {type(exc).__name__}: {exc}") from None
    finally:
        engine.dispose()
    hi = max((m for m in (high_water, fetch.hi) if m is not None), default=None)
    window = Window(name, item, canonical(lo) if lo else None, canonical(hi) if hi else None, full_scan)
    return _deduplicate(con, resource, window, fetch, landed, lo)


def bronze_files(bronze: Path, batch_ids: list[str]) -> list[str]:
    """The data files of ``bronze`` that hold rows of ``batch_ids`` (by the Delta log's column stats)."""
    table = storage.open_table(bronze)
    if table is None or not batch_ids:
        return []
    wanted = sorted(set(batch_ids))

    def holds_one(lo: str | None, hi: str | None) -> bool:
        if lo is None or hi is None:
            return True
        at = bisect.bisect_left(wanted, lo)
        return at < len(wanted) and wanted[at] <= hi

    stats = pa.table(table.get_add_actions(flatten=True))
    lows = stats.column("min._batch_id").to_pylist() if "min._batch_id" in stats.column_names else None
    highs = stats.column("max._batch_id").to_pylist() if "max._batch_id" in stats.column_names else None
    uris = {Path(u).name: u for u in table.file_uris()}
    out = []
    for i, path in enumerate(stats.column("path").to_pylist()):
        if holds_one(lows[i] if lows else None, highs[i] if highs else None):
            out.append(uris[Path(path).name])
    return out


def _candidates(column: sa.ColumnClause, kind: sa.types.TypeEngine | None, lo: dt.datetime) -> sa.ColumnElement:
    """SQL for the rows a read from ``lo`` must parse: a superset, made exact in Python."""
    if isinstance(kind, sa.DateTime):
        zoned = bool(getattr(kind, "timezone", False))
        bound = sa.bindparam("lo", lo.replace(tzinfo=LOCAL) if zoned else lo, type_=sa.DateTime(timezone=zoned))
        return sa.or_(column.is_(None), column >= bound)
    if isinstance(kind, sa.Date):
        return sa.or_(column.is_(None), column >= sa.bindparam("lo", lo.date(), type_=sa.Date()))
    text = sa.cast(column, sa.String)
    # As text only ISO-shaped values compare in time order; the day's margin covers time zone offsets.
    bound = (lo - dt.timedelta(days=1)).date().isoformat()
    return sa.or_(column.is_(None), sa.not_(text.like(CANONICAL_SHAPE)), text >= bound)


def _where_landed(resource: Resource, lo: dt.datetime | None) -> str:
    """The same loose selection over bronze's raw text: the landed rows a read from ``lo`` can fetch."""
    if lo is None:
        return "true"
    col = f'"{resource.source.watermark}"'
    bound = (lo - dt.timedelta(days=1)).date().isoformat()
    return (f"({col} is null or _parse_error is not null or {col} not like '{CANONICAL_SHAPE}' "
            f"or {col} >= '{bound}')")


class _Fetch:
    """Turns result partitions into record batches of item columns, ``_extra``, ``_parse_error`` and
    ``_wm`` (the canonical watermark), keeping the rows from ``lo`` and those without a usable one."""

    def __init__(self, resource: Resource, lay: Layout, index: int, lo: dt.datetime | None):
        self.resource, self.layout, self.index, self.lo = resource, lay, index, lo
        self.items = [i.column for i in resource.items]
        self.schema = pa.schema([(c, STRING) for c in [*self.items, "_extra", "_parse_error", "_wm"]])
        self.hi: dt.datetime | None = None
        self.fields: list[tuple[str, str]] = []
        """The table's columns and their types, as the database describes them."""
        self.parsed = self.unparseable = 0
        self.failure: sa.exc.SQLAlchemyError | None = None

    def batches(self, result: sa.engine.CursorResult) -> Iterator[pa.RecordBatch]:
        """Record batches of the kept rows of each partition; a database error is kept in ``failure``
        (DuckDB, which consumes the batches, would report it under its own name)."""
        try:
            for part in result.partitions():
                batch = self._batch(part)
                if batch is not None:
                    yield batch
        except sa.exc.SQLAlchemyError as exc:
            self.failure = exc
            raise

    def _batch(self, part: list) -> pa.RecordBatch | None:
        watermark, lo = self.resource.source.watermark, self.lo
        rows, marks, errors = [], [], []
        for row in part:
            value, mark, error = row[self.index], None, None
            if value is not None:
                try:
                    moment = parse_watermark(value)
                except ValueError as exc:
                    self.unparseable += 1
                    error = f"watermark {watermark}: {exc}"
                else:
                    self.parsed += 1
                    if lo is not None and moment < lo:
                        continue
                    self.hi = moment if self.hi is None or moment > self.hi else self.hi
                    mark = canonical(moment)
            rows.append(row)
            marks.append(mark)
            errors.append(error)
        if not rows:
            return None
        n = len(rows)
        by_field = [column_text(list(col)) for col in zip(*rows)]
        columns = {col: by_field[i] for col, i in self.layout.columns.items()}
        extra = extra_json([k for _, k in self.layout.extras], [by_field[i] for i, _ in self.layout.extras], n=n)
        arrays = [pa.array(columns.get(c, [None] * n), STRING) for c in self.items]
        arrays += [pa.array(extra or [None] * n, STRING), pa.array(errors, STRING), pa.array(marks, STRING)]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)


def _deduplicate(con: duckdb.DuckDBPyConnection, resource: Resource, window: Window, fetch: _Fetch,
                 landed: list[str], lo: dt.datetime | None) -> WindowRead:
    """Drop the fetched rows whose content hash is in ``landed``; number the others as the window."""
    items = [i.column for i in resource.items]
    storage.register_files(con, "landed_files", landed, bronze_schema(resource))
    present = {d[0] for d in con.execute("select * from landed_files limit 0").description}
    # Files written before an item was catalogued lack its column: it was null in those rows.
    listed = ", ".join(f'"{c}"' if c in present else f'null::varchar as "{c}"' for c in [*items, "_parse_error"])
    con.execute(f"""create or replace temp table landed_hashes as
        select distinct {row_hash_sql(resource)} as _hash
        from (select {listed} from landed_files) as landed_rows where {_where_landed(resource, lo)}""")
    keys = "".join(f'"{k}", ' for k in resource.key)
    con.execute(f"""create or replace temp table window_rows as
        select *, row_number() over (order by _wm nulls first, {keys}_hash) as _row_number
        from fetched anti join landed_hashes using (_hash)""")
    fetched = con.execute("select count(*) from fetched").fetchone()[0]
    rows, unwatermarked, digest = con.execute("""select count(*), count(*) filter (where _wm is null),
        sha256(coalesce(string_agg(_hash, ',' order by _row_number), '')) from window_rows""").fetchone()
    unparsed = con.execute(f"""select _row_number, "{resource.source.watermark}" from window_rows
        where _parse_error is not null order by _row_number""").fetchall()
    return WindowRead(con, resource, window, fetched, rows, unwatermarked, digest, unparsed,
                      readable=fetch.parsed > 0 or fetch.unparseable == 0, fields=fetch.fields)
