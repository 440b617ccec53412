"""Database tables through SQLAlchemy, read incrementally by the catalog's watermark column.

A window is (lo, hi]: lo is the high-water mark of the last landed window (from the ingest log),
hi the largest watermark when the read starts. Watermarks are compared as text (``cast(... as
varchar)`` on both sides), which orders ISO ``YYYY-MM-DD HH:MM:SS`` values correctly in SQLite and
PostgreSQL alike. Rows stream through a server-side cursor (``stream_results`` + ``yield_per``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from govlake.catalog import Resource
from govlake.ingest._bronze import BATCH_ROWS, Assembler, extra_json
from govlake.ingest._headers import Layout, layout
from govlake.ingest._results import IngestError
from govlake.ingest._values import column_text


@dataclass(frozen=True)
class Window:
    """One read of a table: (lo, hi] of the watermark; ``source`` and ``source_hash`` name it."""

    table: str
    watermark: str
    lo: str | None
    hi: str | None

    @property
    def source(self) -> str:
        return f"db:{self.table}?{self.watermark} in ({self.lo or '-inf'}, {self.hi or self.lo or '-inf'}]"

    @property
    def source_hash(self) -> str:
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    @property
    def empty(self) -> bool:
        return self.hi is None or (self.lo is not None and self.hi <= self.lo)


class WindowReader:
    """An open connection positioned on one window; ``batches`` streams its rows."""

    def __init__(self, conn: Connection, resource: Resource, table: sa.TableClause, lay: Layout, window: Window):
        self.conn, self.resource, self.table, self.layout, self.window = conn, resource, table, lay, window

    def _watermark(self) -> sa.ColumnElement:
        return sa.cast(self.table.c[self.window.watermark], sa.String)

    def batches(self, asm: Assembler) -> Iterator[pa.RecordBatch]:
        w, lay = self.window, self.layout
        mark = self._watermark()
        cond = [mark <= w.hi] + ([mark > w.lo] if w.lo is not None else [])
        keys = [self.table.c[lay.headers[lay.columns[k]]] for k in self.resource.key if k in lay.columns]
        stmt = sa.select(*[self.table.c[h] for h in lay.headers]).where(*cond).order_by(mark, *keys)
        result = self.conn.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(stmt)
        start = 1
        for part in result.partitions():
            n = len(part)
            by_field = [column_text(list(col)) for col in zip(*part)]
            columns = {col: by_field[i] for col, i in lay.columns.items()}
            extra = extra_json([k for _, k in lay.extras], [by_field[i] for i, _ in lay.extras], n=n)
            yield asm.batch(n, columns, range(start, start + n), extra=extra)
            start += n


@contextmanager
def open_window(url: str, resource: Resource, lo: str | None) -> Iterator[WindowReader]:
    """Connect, check the table's columns against the catalog, and fix the window's hi."""
    name, watermark_item = resource.source.table, resource.source.watermark
    assert name and watermark_item
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not Path(parsed.database).exists():
        raise IngestError(f"db:{name}: the SQLite database {parsed.database} does not exist")
    engine = sa.create_engine(parsed)
    try:
        with engine.connect() as conn:
            try:
                db_columns = [c["name"] for c in sa.inspect(conn).get_columns(name)]
            except sa.exc.NoSuchTableError:
                raise IngestError(f"db:{name}: no such table in {engine.url.render_as_string()}") from None
            lay = layout(resource, db_columns)
            problem = lay.describe_missing(resource)
            if problem:
                raise IngestError(f"db:{name}: {problem}")
            watermark = db_columns[lay.columns[watermark_item]]
            table = sa.table(name, *[sa.column(c) for c in db_columns])
            probe = WindowReader(conn, resource, table, lay, Window(name, watermark, lo, None))
            hi = conn.execute(sa.select(sa.func.max(probe._watermark()))).scalar()
            yield WindowReader(conn, resource, table, lay, Window(name, watermark, lo, hi))
    except sa.exc.SQLAlchemyError as exc:
        raise IngestError(f"db:{name}: {type(exc).__name__}: {exc}") from None
    finally:
        engine.dispose()
