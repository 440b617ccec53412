"""Incremental ingest of the registry table through SQLAlchemy: SQLite and a real PostgreSQL."""

from __future__ import annotations

import dataclasses
import json

import pytest
import sqlalchemy as sa
from deltalake import DeltaTable

from govlake import storage
from govlake.catalog import get_catalog
from govlake.ingest import IngestError, ingest_resource

ENTERPRISE = get_catalog().resource("amr.enterprise")
COLUMNS = [i.column for i in ENTERPRISE.items]


def _enterprise(n: int, updated_at: str, **values: str) -> dict:
    row = {c: f"{c}-{n}" for c in COLUMNS} | {"internal_note": None}
    row.update(uscc=f"USCC{n:04d}", updated_at=updated_at, **values)
    return row


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request, tmp_path):
    """(SQLAlchemy URL, engine) with an empty text-typed ``amr_enterprise`` table plus one unknown column."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("drop table if exists amr_enterprise"))
        cols = ", ".join(f"{c} text" for c in [*COLUMNS, "internal_note"])
        conn.execute(sa.text(f"create table amr_enterprise ({cols})"))
    yield url, engine
    engine.dispose()


def _insert(engine, rows: list[dict]) -> None:
    table = sa.table("amr_enterprise", *[sa.column(c) for c in [*COLUMNS, "internal_note"]])
    with engine.begin() as conn:
        conn.execute(sa.insert(table), rows)


def _bronze(settings) -> list[dict]:
    path = storage.table_path(settings, "bronze", ENTERPRISE.slug)
    rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    return sorted(rows, key=lambda r: (r["_received_at"], r["_row_number"]))


def test_incremental_windows_by_watermark(db, settings):
    url, engine = db
    settings = dataclasses.replace(settings, source_db_url=url)
    _insert(engine, [
        _enterprise(2, "2026-11-02 09:00:00", internal_note="核查中"),
        _enterprise(1, "2026-11-02 09:00:00", reg_capital=" 100 "),
        _enterprise(3, "2026-11-01 08:00:00"),
    ])

    first = ingest_resource("amr.enterprise", files=None, settings=settings, run_id="r1")

    [batch] = first.batches
    assert (batch.status, batch.rows) == ("landed", 3)
    assert batch.source == "db:amr_enterprise?updated_at in (-inf, 2026-11-02 09:00:00]"
    assert batch.watermark_hi == "2026-11-02 09:00:00"
    rows = _bronze(settings)
    assert [(r["uscc"], r["_row_number"]) for r in rows] == [("USCC0003", 1), ("USCC0001", 2), ("USCC0002", 3)]
    assert rows[1]["reg_capital"] == " 100 "
    assert json.loads(rows[2]["_extra"]) == {"internal_note": "核查中"}
    assert {r["_source"] for r in rows} == {batch.source}

    _insert(engine, [_enterprise(4, "2026-11-03 10:00:00"), _enterprise(1, "2026-11-03 11:00:00", name="新名称")])
    second = ingest_resource("amr.enterprise", files=None, settings=settings, run_id="r2")

    assert [(b.status, b.rows) for b in second.batches] == [("landed", 2)]
    assert second.batches[0].source == (
        "db:amr_enterprise?updated_at in (2026-11-02 09:00:00, 2026-11-03 11:00:00]")
    new = _bronze(settings)[3:]
    assert [(r["uscc"], r["name"], r["_row_number"]) for r in new] == [
        ("USCC0004", "name-4", 1), ("USCC0001", "新名称", 2)]

    third = ingest_resource("amr.enterprise", files=None, settings=settings, run_id="r3")
    assert [(b.status, b.rows) for b in third.batches] == [("skipped_already_ingested", 0)]
    assert len(_bronze(settings)) == 5
    log = DeltaTable(str(storage.table_path(settings, "meta", "ingest_log"))).to_pyarrow_table().to_pylist()
    landed = sorted(r["watermark_hi"] for r in log if r["status"] == "landed")
    assert landed == ["2026-11-02 09:00:00", "2026-11-03 11:00:00"]


def test_missing_table_or_required_column_raises(db, settings):
    url, engine = db
    settings = dataclasses.replace(settings, source_db_url=url)
    with engine.begin() as conn:
        conn.execute(sa.text("alter table amr_enterprise rename column address to addr"))
    with pytest.raises(IngestError, match=r"db:amr_enterprise: missing required columns: 住所 \(address\)"):
        ingest_resource("amr.enterprise", files=None, settings=settings, run_id="r1")
    with engine.begin() as conn:
        conn.execute(sa.text("drop table amr_enterprise"))
    with pytest.raises(IngestError, match="no such table"):
        ingest_resource("amr.enterprise", files=None, settings=settings, run_id="r2")


@pytest.mark.postgres
def test_postgres_typed_columns_land_as_text(pg_url, settings):
    engine = sa.create_engine(pg_url)
    types = {"reg_capital": "numeric(18,4)", "established": "date", "updated_at": "timestamp"}
    with engine.begin() as conn:
        conn.execute(sa.text("drop table if exists amr_enterprise"))
        cols = ", ".join(f"{c} {types.get(c, 'text')}" for c in COLUMNS)
        conn.execute(sa.text(f"create table amr_enterprise ({cols})"))
        conn.execute(sa.text("insert into amr_enterprise (uscc, name, reg_capital, established, updated_at) values "
                             "('U1', '甲', 12.5, '2020-01-02', '2026-11-02 09:00:00'),"
                             "('U2', '乙', null, '2021-03-04', '2026-11-02 09:30:00.250000')"))
    engine.dispose()
    settings = dataclasses.replace(settings, source_db_url=pg_url)

    result = ingest_resource("amr.enterprise", files=None, settings=settings, run_id="r1")

    assert result.batches[0].watermark_hi == "2026-11-02 09:30:00.25"
    first, second = _bronze(settings)
    assert (first["reg_capital"], first["established"], first["updated_at"]) == (
        "12.5000", "2020-01-02", "2026-11-02 09:00:00")
    assert (second["reg_capital"], second["updated_at"]) == (None, "2026-11-02 09:30:00.250000")
    again = ingest_resource("amr.enterprise", files=None, settings=settings, run_id="r2")
    assert again.batches[0].status == "skipped_already_ingested"


def test_absent_sqlite_database_is_rejected_not_created(settings, tmp_path):
    missing = tmp_path / "nowhere.sqlite"
    settings = dataclasses.replace(settings, source_db_url=f"sqlite:///{missing}")
    with pytest.raises(IngestError, match="does not exist") as info:
        ingest_resource("amr.enterprise", files=None, settings=settings, run_id="r1")
    assert not missing.exists()
    assert [b.status for b in info.value.result.batches] == ["rejected"]
