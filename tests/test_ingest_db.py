"""Incremental ingest of the registry table through SQLAlchemy, on SQLite and a real PostgreSQL:
windows with a look-back, rows deduplicated by content hash, watermarks in other formats, NULL and
unparseable watermarks, late rows, rows committed after the read, and a full scan."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil

import duckdb
import pyarrow as pa
import pytest
import sqlalchemy as sa
from deltalake import DeltaTable, write_deltalake
from pydantic import ValidationError
from typer.testing import CliRunner

from govlake import pipeline, storage
from govlake.catalog import get_catalog
from govlake.catalog._models import Source
from govlake.identifiers import uscc_check_char
from govlake.ingest import IngestError, ingest_resource, row_hash_sql
from govlake.ingest._watermark import parse_lookback, parse_watermark

ENTERPRISE = get_catalog().resource("amr.enterprise")
COLUMNS = [i.column for i in ENTERPRISE.items]
AS_OF = dt.date(2026, 12, 31)


def uscc(n: int) -> str:
    first17 = f"91370102MA{n:07d}"
    return first17 + uscc_check_char(first17)


def _enterprise(n: int, updated_at: str | None, **values: str | None) -> dict:
    """A registry row that passes every rule (as long as ``updated_at`` reads as a date and time)."""
    row = {c: None for c in COLUMNS} | {"internal_note": None}
    row.update(uscc=uscc(n), name=f"济南企业{n}有限公司", legal_rep="张三", reg_capital="100",
               established="2020-01-02", reg_authority="济南市市场监督管理局", address=f"济南市历下区{n}号",
               region_code="370102", status="存续", updated_at=updated_at)
    row.update(values)
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


@pytest.fixture
def lake(db, settings):
    """Settings reading the ``db`` table, and its engine."""
    url, engine = db
    return dataclasses.replace(settings, source_db_url=url), engine


def _insert(engine, rows: list[dict], conn=None) -> None:
    table = sa.table("amr_enterprise", *[sa.column(c) for c in [*COLUMNS, "internal_note"]])
    if conn is not None:
        conn.execute(sa.insert(table), rows)
        return
    with engine.begin() as c:
        c.execute(sa.insert(table), rows)


def _ingest(settings, run_id: str, **options):
    [batch] = ingest_resource("amr.enterprise", files=None, settings=settings, run_id=run_id, **options).batches
    return batch


def _bronze(settings) -> list[dict]:
    path = storage.table_path(settings, "bronze", ENTERPRISE.slug)
    rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    return sorted(rows, key=lambda r: (r["_received_at"], r["_row_number"]))


def _log(settings) -> list[dict]:
    path = storage.table_path(settings, "meta", "ingest_log")
    return DeltaTable(str(path)).to_pyarrow_table().to_pylist()


def _assert_accounted(settings, engine) -> None:
    """Every row of the source table landed, and no content landed twice: count(source) == distinct
    (key, content) in bronze == bronze rows."""
    with engine.connect() as conn:
        source = [dict(r._mapping) for r in conn.execute(sa.text(f"select {', '.join(COLUMNS)} from amr_enterprise"))]
    con = duckdb.connect()
    hashes = f"select uscc, {row_hash_sql(ENTERPRISE)} as h from t"
    con.register("t", pa.Table.from_pylist(source))
    expected = set(con.execute(hashes).fetchall())
    landed = [{c: r[c] for c in COLUMNS} for r in _bronze(settings)]
    con.register("t", pa.Table.from_pylist(landed))
    got = con.execute(hashes).fetchall()
    assert len(source) == len(expected), "the test table holds two identical rows"
    assert len(got) == len(set(got)), "a row landed twice"
    assert set(got) == expected


# ---- watermark values and the catalog's look-back ---------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-20 10:00:00", dt.datetime(2026, 11, 20, 10)),
    ("2026-11-20T10:00:00.25", dt.datetime(2026, 11, 20, 10, 0, 0, 250000)),
    ("2026/11/20 10:00:00", dt.datetime(2026, 11, 20, 10)),
    ("2026.11.20 10:00", dt.datetime(2026, 11, 20, 10)),
    ("2026/1/5", dt.datetime(2026, 1, 5)),
    ("20261120100000", dt.datetime(2026, 11, 20, 10)),
    ("20261120", dt.datetime(2026, 11, 20)),
    (" 2026-11-20 ", dt.datetime(2026, 11, 20)),
    ("2026-11-20T02:00:00Z", dt.datetime(2026, 11, 20, 10)),
    ("2026-11-20 10:00:00+08", dt.datetime(2026, 11, 20, 10)),
    ("2026-11-20 02:00+00", dt.datetime(2026, 11, 20, 10)),
    ("2026-11-19 21:00:00-05:00", dt.datetime(2026, 11, 20, 10)),
    (dt.datetime(2026, 11, 20, 2, tzinfo=dt.UTC), dt.datetime(2026, 11, 20, 10)),
    (dt.date(2026, 11, 20), dt.datetime(2026, 11, 20)),
    (20261120100000, dt.datetime(2026, 11, 20, 10)),
])
def test_watermark_formats_parse_to_one_local_instant(value, expected):
    assert parse_watermark(value) == expected


@pytest.mark.parametrize("value", ["not a date", "2026-13-01", "2026-11-20 25:00:00", "2026/11-20", "", "1e9",
                                   3.5])
def test_unreadable_watermarks_raise_naming_the_value(value):
    with pytest.raises(ValueError, match=f"{value!r}"):
        parse_watermark(value)


def test_lookback_is_validated():
    assert parse_lookback(None) == dt.timedelta(days=1)
    assert parse_lookback("1d12h") == dt.timedelta(days=1, hours=12)
    assert parse_lookback("0s") == dt.timedelta(0)
    assert Source(kind="db", table="t", watermark="w", lookback="2h").lookback == "2h"
    for bad in ("1 day", "2H", "-1d", "h"):
        with pytest.raises(ValidationError, match="pattern"):
            Source(kind="db", table="t", watermark="w", lookback=bad)
    assert ENTERPRISE.source.lookback == "1d"


# ---- windows ------------------------------------------------------------------------------

def test_incremental_windows_by_watermark(lake):
    settings, engine = lake
    _insert(engine, [
        _enterprise(2, "2026-11-02 09:00:00", internal_note="核查中"),
        _enterprise(1, "2026-11-02 09:00:00", reg_capital=" 100 "),
        _enterprise(3, "2026-11-01 08:00:00"),
    ])

    batch = _ingest(settings, "r1")

    assert (batch.status, batch.rows) == ("landed", 3)
    assert batch.source == "db:amr_enterprise?updated_at in [-inf, 2026-11-02 09:00:00]"
    assert batch.watermark_hi == "2026-11-02 09:00:00"
    rows = _bronze(settings)
    assert [(r["uscc"], r["_row_number"]) for r in rows] == [(uscc(3), 1), (uscc(1), 2), (uscc(2), 3)]
    assert rows[1]["reg_capital"] == " 100 "
    assert json.loads(rows[2]["_extra"]) == {"internal_note": "核查中"}
    assert {(r["_source"], r["_source_hash"]) for r in rows} == {(batch.source, batch.source_hash)}

    _insert(engine, [_enterprise(4, "2026-11-03 10:00:00"), _enterprise(1, "2026-11-03 11:00:00", name="新名称")])
    second = _ingest(settings, "r2")

    assert (second.status, second.rows) == ("landed", 2)
    assert second.source == "db:amr_enterprise?updated_at in [2026-11-01 09:00:00, 2026-11-03 11:00:00]"
    new = _bronze(settings)[3:]
    assert [(r["uscc"], r["name"], r["_row_number"]) for r in new] == [
        (uscc(4), "济南企业4有限公司", 1), (uscc(1), "新名称", 2)]

    third = _ingest(settings, "r3")
    assert (third.status, third.rows) == ("skipped_already_ingested", 0)
    assert len(_bronze(settings)) == 5
    landed = sorted(r["watermark_hi"] for r in _log(settings) if r["status"] == "landed")
    assert landed == ["2026-11-02 09:00:00", "2026-11-03 11:00:00"]
    _assert_accounted(settings, engine)


def test_null_watermarks_land_once_first_in_their_window(lake):
    settings, engine = lake
    _insert(engine, [_enterprise(1, "2026-11-02 09:00:00"), _enterprise(2, None), _enterprise(3, None)])

    first = _ingest(settings, "r1")

    assert (first.rows, first.unwatermarked_rows, first.watermark_hi) == (3, 2, "2026-11-02 09:00:00")
    assert [(r["uscc"], r["_row_number"]) for r in _bronze(settings)] == [(uscc(2), 1), (uscc(3), 2), (uscc(1), 3)]
    assert _ingest(settings, "r2").status == "skipped_already_ingested"
    # Far beyond the look-back the first window is still compared: it holds rows without a watermark.
    _insert(engine, [_enterprise(4, "2026-12-20 09:00:00"), _enterprise(5, None)])
    third = _ingest(settings, "r3")
    assert (third.rows, third.unwatermarked_rows) == (2, 1)
    assert third.source == "db:amr_enterprise?updated_at in [2026-11-01 09:00:00, 2026-12-20 09:00:00]"
    _insert(engine, [_enterprise(6, "2027-02-01 09:00:00")])
    assert _ingest(settings, "r4").rows == 1
    assert _ingest(settings, "r5").status == "skipped_already_ingested"
    _assert_accounted(settings, engine)


def test_late_row_below_the_high_water_mark_lands_on_the_next_ingest(lake):
    settings, engine = lake
    _insert(engine, [_enterprise(1, "2026-11-02 09:00:00"), _enterprise(2, "2026-11-01 12:00:00")])
    _ingest(settings, "r1")

    _insert(engine, [_enterprise(3, "2026-11-02 08:59:59"), _enterprise(4, "2026-11-01 09:00:00"),
                     _enterprise(5, "2026-11-01 08:59:59")])  # the last one is older than the look-back
    second = _ingest(settings, "r2")

    assert (second.status, second.rows, second.watermark_hi) == ("landed", 2, "2026-11-02 09:00:00")
    assert [(r["uscc"], r["_row_number"]) for r in _bronze(settings)[2:]] == [(uscc(4), 1), (uscc(3), 2)]
    assert _ingest(settings, "r3").status == "skipped_already_ingested"


def test_row_at_the_high_water_instant_committed_after_the_read_lands_next_time(lake):
    settings, engine = lake
    _insert(engine, [_enterprise(1, "2026-11-02 09:00:00")])
    other = engine.connect()
    tx = other.begin()
    try:
        _insert(engine, [_enterprise(2, "2026-11-02 09:00:00")], conn=other)  # not committed yet
        first = _ingest(settings, "r1")
        tx.commit()
    finally:
        other.close()

    assert (first.rows, first.watermark_hi) == (1, "2026-11-02 09:00:00")
    second = _ingest(settings, "r2")
    assert (second.rows, second.watermark_hi) == (1, "2026-11-02 09:00:00")
    assert [r["uscc"] for r in _bronze(settings)] == [uscc(1), uscc(2)]
    _assert_accounted(settings, engine)


def test_changed_content_under_the_same_key_lands_again_and_wins_in_silver(lake):
    settings, engine = lake
    _insert(engine, [_enterprise(1, "2026-11-02 09:00:00"), _enterprise(2, "2026-11-02 09:00:00")])
    _ingest(settings, "r1")
    with engine.begin() as conn:  # corrected in place, the watermark left as it was
        conn.execute(sa.text("update amr_enterprise set address = '济南市历下区新地址1号' where uscc = :u"),
                     {"u": uscc(1)})

    second = _ingest(settings, "r2")

    assert second.rows == 1
    assert _bronze(settings)[-1]["address"] == "济南市历下区新地址1号"
    pipeline.process("amr.enterprise", settings=settings, run_id="p1", as_of=AS_OF)
    silver = DeltaTable(str(storage.table_path(settings, "silver", ENTERPRISE.slug))).to_pyarrow_table().to_pylist()
    assert {r["uscc"]: r["address"] for r in silver}[uscc(1)] == "济南市历下区新地址1号"


def test_watermarks_in_other_formats_are_parsed_and_later_rows_still_land(lake):
    settings, engine = lake
    _insert(engine, [_enterprise(1, "2026/11/20 10:00:00"), _enterprise(2, "20261120100000"),
                     _enterprise(3, "2026-11-19 08:00:00"), _enterprise(4, "2026-11-20T09:00:00+08:00")])

    first = _ingest(settings, "r1")

    assert (first.rows, first.watermark_hi, first.error) == (4, "2026-11-20 10:00:00", None)
    assert [r["uscc"] for r in _bronze(settings)] == [uscc(3), uscc(4), uscc(1), uscc(2)]
    _insert(engine, [_enterprise(5, "2026-11-20 10:00:01"), _enterprise(6, "2026.11.21 08:00:00")])
    second = _ingest(settings, "r2")
    assert (second.rows, second.watermark_hi) == (2, "2026-11-21 08:00:00")
    assert [r["uscc"] for r in _bronze(settings)[4:]] == [uscc(5), uscc(6)]
    assert _ingest(settings, "r3").status == "skipped_already_ingested"
    _assert_accounted(settings, engine)


def test_unparseable_watermark_lands_for_quarantine_and_never_stalls_the_feed(lake):
    settings, engine = lake
    _insert(engine, [_enterprise(1, "2026-11-02 09:00:00"), _enterprise(2, "not a date")])

    first = _ingest(settings, "r1")

    assert (first.status, first.rows, first.watermark_hi) == ("landed", 2, "2026-11-02 09:00:00")
    assert first.error == ("warning: 1 row(s) with a watermark that is not a date and time land with "
                           "_parse_error (quarantine): row 1 (updated_at 'not a date')")
    bad = _bronze(settings)[0]
    assert (bad["uscc"], bad["updated_at"]) == (uscc(2), "not a date")
    assert "updated_at" in bad["_parse_error"] and "'not a date'" in bad["_parse_error"]
    _insert(engine, [_enterprise(3, "2026-11-03 09:00:00")])
    second = _ingest(settings, "r2")
    assert (second.rows, second.error, second.watermark_hi) == (1, None, "2026-11-03 09:00:00")
    assert _ingest(settings, "r3").status == "skipped_already_ingested"

    pipeline.process("amr.enterprise", settings=settings, run_id="p1", as_of=AS_OF)
    quarantine = DeltaTable(str(storage.table_path(settings, "quarantine", ENTERPRISE.slug))).to_pyarrow_table()
    assert [(r["uscc"], r["_failed_rules"]) for r in quarantine.to_pylist()] == [
        (uscc(2), ["parse.row", "format.updated_at"])]
    silver = DeltaTable(str(storage.table_path(settings, "silver", ENTERPRISE.slug))).to_pyarrow_table()
    assert sorted(silver.column("uscc").to_pylist()) == [uscc(1), uscc(3)]


def test_a_window_whose_every_watermark_is_unparseable_is_rejected_loudly(lake):
    settings, engine = lake
    _insert(engine, [_enterprise(1, "not a date"), _enterprise(2, "11/20/2026 10:00")])

    with pytest.raises(IngestError, match=r"no updated_at read is a date and time \(2 new row\(s\)") as info:
        ingest_resource("amr.enterprise", files=None, settings=settings, run_id="r1")

    assert [(b.status, b.rows) for b in info.value.result.batches] == [("rejected", 0)]
    assert storage.open_table(storage.table_path(settings, "bronze", ENTERPRISE.slug)) is None
    _insert(engine, [_enterprise(3, "2026-11-02 09:00:00")])
    batch = _ingest(settings, "r2")  # now the column reads: the two land for quarantine
    assert (batch.rows, batch.watermark_hi) == (3, "2026-11-02 09:00:00")
    assert "row 1 (updated_at 'not a date'), row 2 (updated_at '11/20/2026 10:00')" in batch.error


def test_repeated_ingests_account_for_every_row_of_a_mixed_history(lake):
    settings, engine = lake
    _insert(engine, [_enterprise(1, "2026-11-01 09:00:00"), _enterprise(2, None), _enterprise(3, "bad")])
    _ingest(settings, "r1")
    _insert(engine, [_enterprise(4, "2026/11/02 10:00:00"), _enterprise(5, None), _enterprise(1, "2026-11-02 11:00")])
    _ingest(settings, "r2")
    _insert(engine, [_enterprise(6, "2026-11-02 00:00:00"), _enterprise(7, "20261102110000")])
    _ingest(settings, "r3")
    for run in ("r4", "r5"):
        assert _ingest(settings, run).status == "skipped_already_ingested"
    _assert_accounted(settings, engine)


def test_full_scan_lands_rows_older_than_the_look_back(lake):
    settings, engine = lake
    _insert(engine, [_enterprise(1, "2026-11-10 09:00:00"), _enterprise(2, None)])
    _ingest(settings, "r1")
    _insert(engine, [_enterprise(3, "2026-11-01 09:00:00")])  # committed ten days late
    assert _ingest(settings, "r2").status == "skipped_already_ingested"  # the one thing a window misses

    batch = _ingest(settings, "r3", full_scan=True)

    assert (batch.status, batch.rows) == ("landed", 1)
    assert batch.source == "db:amr_enterprise?updated_at in [-inf, 2026-11-10 09:00:00] (full scan)"
    assert [(r["uscc"], r["_row_number"], r["_source"]) for r in _bronze(settings)[2:]] == [
        (uscc(3), 1, batch.source)]
    assert _ingest(settings, "r4", full_scan=True).status == "skipped_already_ingested"
    _assert_accounted(settings, engine)


def test_a_non_canonical_high_water_mark_in_the_log_recovers_by_itself(lake):
    """A lake whose log holds ``2026/11/20 10:00:00`` as the mark (written as text by an older version,
    which skipped every later row) is read from the parsed mark on the next ingest."""
    settings, engine = lake
    _insert(engine, [_enterprise(1, "2026-11-19 09:00:00"), _enterprise(2, "2026/11/20 10:00:00")])
    _ingest(settings, "r1")
    log_path = storage.table_path(settings, "meta", "ingest_log")
    old = DeltaTable(str(log_path)).to_pyarrow_table().drop_columns(["unwatermarked_rows"])
    old = old.set_column(old.schema.get_field_index("watermark_hi"), "watermark_hi",
                         pa.array(["2026/11/20 10:00:00"] * old.num_rows))
    write_deltalake(str(log_path), old, mode="overwrite", schema_mode="overwrite")
    _insert(engine, [_enterprise(3, "2026-11-20 11:00:00"), _enterprise(4, "2026-11-19 12:00:00")])

    batch = _ingest(settings, "r2")

    assert (batch.rows, batch.watermark_hi) == (2, "2026-11-20 11:00:00")
    assert [r["uscc"] for r in _bronze(settings)[2:]] == [uscc(4), uscc(3)]
    _assert_accounted(settings, engine)


def test_cli_exit_codes(lake, monkeypatch):
    settings, engine = lake
    from govlake.cli import app

    monkeypatch.setenv("GOVLAKE_VAR", str(settings.var))
    monkeypatch.setenv("GOVLAKE_SOURCE_DB_URL", settings.source_db_url)
    def ingest(*args: str) -> tuple[int, str]:
        out = CliRunner().invoke(app, ["ingest", *args])
        return out.exit_code, " ".join(out.output.split())

    _insert(engine, [_enterprise(1, "not a date")])
    code, text = ingest("amr.enterprise")
    assert (code, "no updated_at read is a date and time" in text) == (1, True), text
    _insert(engine, [_enterprise(2, "2026-11-02 09:00:00")])
    code, text = ingest("amr.enterprise")
    assert (code, "landed 2 rows" in text, "row 1 (updated_at 'not a date')" in text) == (0, True, True), text
    code, text = ingest("amr.enterprise", "--full-scan")
    assert (code, "skipped_already_ingested 0 rows" in text, "(full scan)" in text) == (0, True, True), text
    code, text = ingest("credit.penalty", "--full-scan")
    assert (code, "a full scan is for database sources" in text) == (1, True), text


# ---- connection, columns, types -------------------------------------------------------------

def test_missing_table_or_required_column_raises(lake):
    settings, engine = lake
    with engine.begin() as conn:
        conn.execute(sa.text("alter table amr_enterprise rename column address to addr"))
    with pytest.raises(IngestError, match=r"db:amr_enterprise: missing required columns: 住所 \(address\)"):
        ingest_resource("amr.enterprise", files=None, settings=settings, run_id="r1")
    with engine.begin() as conn:
        conn.execute(sa.text("drop table amr_enterprise"))
    with pytest.raises(IngestError, match="no such table"):
        ingest_resource("amr.enterprise", files=None, settings=settings, run_id="r2")


@pytest.mark.postgres
@pytest.mark.parametrize("stamp", ["timestamp", "timestamptz"])
def test_postgres_typed_columns_land_as_text_and_window_natively(pg_url, settings, stamp):
    engine = sa.create_engine(pg_url)
    types = {"reg_capital": "numeric(18,4)", "established": "date", "updated_at": stamp}
    with engine.begin() as conn:
        conn.execute(sa.text("drop table if exists amr_enterprise"))
        cols = ", ".join(f"{c} {types.get(c, 'text')}" for c in COLUMNS)
        conn.execute(sa.text(f"create table amr_enterprise ({cols})"))
        conn.execute(sa.text("set time zone 'UTC'"))
        conn.execute(sa.text("insert into amr_enterprise (uscc, name, reg_capital, established, updated_at) values "
                             "('U1', '甲', 12.5, '2020-01-02', '2026-11-02 09:00:00+08'),"
                             "('U2', '乙', null, '2021-03-04', '2026-11-02 09:30:00.250000+08'),"
                             "('U3', '丙', null, '2021-03-04', null)"))
    settings = dataclasses.replace(settings, source_db_url=pg_url)

    first = _ingest(settings, "r1")

    assert (first.rows, first.watermark_hi) == (3, "2026-11-02 09:30:00.250000")
    _, one, two = _bronze(settings)
    assert (one["reg_capital"], one["established"]) == ("12.5000", "2020-01-02")
    if stamp == "timestamp":
        assert (one["updated_at"], two["updated_at"]) == ("2026-11-02 09:00:00", "2026-11-02 09:30:00.250000")
    other = engine.connect()
    tx = other.begin()
    other.execute(sa.text("insert into amr_enterprise (uscc, updated_at) values "
                          "('U4', '2026-11-02 09:30:00.250000+08'), ('U5', '2026-11-01 10:00:00+08'),"
                          "('U6', '2026-11-01 09:00:00+08')"))  # U6 is older than the look-back
    assert _ingest(settings, "r2").status == "skipped_already_ingested"
    tx.commit()
    other.close()
    engine.dispose()
    second = _ingest(settings, "r3")
    assert second.source == "db:amr_enterprise?updated_at in [2026-11-01 09:30:00.250000, 2026-11-02 09:30:00.250000]"
    assert [r["uscc"] for r in _bronze(settings)[3:]] == ["U5", "U4"]
    assert _ingest(settings, "r4").status == "skipped_already_ingested"


def test_absent_sqlite_database_is_rejected_not_created(settings, tmp_path):
    missing = tmp_path / "nowhere.sqlite"
    settings = dataclasses.replace(settings, source_db_url=f"sqlite:///{missing}")
    with pytest.raises(IngestError, match="does not exist") as info:
        ingest_resource("amr.enterprise", files=None, settings=settings, run_id="r1")
    assert not missing.exists()
    assert [b.status for b in info.value.result.batches] == ["rejected"]


@pytest.mark.parametrize(("lookback", "lo", "landed"), [("2h", "2026-11-02 07:00:00", [2, 4]),
                                                         ("0s", "2026-11-02 09:00:00", [4])])
def test_lookback_from_the_catalog(settings, tmp_path, lookback, lo, landed):
    """A row below the mark lands when it is within the look-back; one at the mark's very instant
    lands even with none."""
    catalog = tmp_path / "catalog"
    shutil.copytree(settings.catalog_dir, catalog)
    path = catalog / "resources" / "amr.enterprise.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("lookback: 1d", f"lookback: {lookback}"),
                    encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"create table amr_enterprise ({', '.join(f'{c} text' for c in COLUMNS)})"))
    table = sa.table("amr_enterprise", *[sa.column(c) for c in COLUMNS])

    def insert(*rows: tuple[int, str]) -> None:
        with engine.begin() as conn:
            conn.execute(sa.insert(table), [{c: _enterprise(n, stamp)[c] for c in COLUMNS} for n, stamp in rows])

    insert((1, "2026-11-02 09:00:00"))
    settings = dataclasses.replace(settings, source_db_url=url, catalog_dir=catalog)
    _ingest(settings, "r1")
    insert((2, "2026-11-02 08:00:00"), (3, "2026-11-02 06:00:00"), (4, "2026-11-02 09:00:00"))
    engine.dispose()

    batch = _ingest(settings, "r2")

    assert batch.source == f"db:amr_enterprise?updated_at in [{lo}, 2026-11-02 09:00:00]"
    assert [r["uscc"] for r in _bronze(settings)[1:]] == [uscc(n) for n in landed]
