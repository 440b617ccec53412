"""The analyst extract: gold tables, masked, commented, atomically replaced."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest

import govlake.extract
from govlake import storage
from govlake.config import Settings
from govlake.credit import build_credit
from govlake.extract import INFO_TABLE, build_extract
from govlake.gold import PUBLIC_TABLES, build_gold
from govlake.identifiers import is_valid_id_number
from govlake.layout import gold_path
from test_credit import put_silver
from test_gold import E1, E5, MOBILE, PERSON_ID, PERSON_ID_2, _penalty, write_sample_silver

ID_RE = re.compile(r"[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]")
MOBILE_RE = re.compile(r"1[3-9]\d{9}")


@pytest.fixture
def extract(tmp_path):
    settings = Settings(var=tmp_path / "var", as_of=dt.date(2024, 5, 6))
    write_sample_silver(settings)
    build_gold(settings=settings, run_id="run-1")
    build_credit(settings=settings, run_id="run-1")
    path = build_extract(settings=settings, run_id="run-1")
    return settings, path


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> list[dict]:
    cur = con.execute(f'select * from "{table}"')
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def test_extract_holds_the_gold_tables(extract):
    settings, path = extract
    assert path == settings.extracts / "analyst.duckdb"
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()}
        assert tables == {*PUBLIC_TABLES, INFO_TABLE}
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in PUBLIC_TABLES}
        info = {r["gold_table"]: r for r in _rows(con, INFO_TABLE)}
    # legal_entity: E1–E4; the profile adds E5, named only by a penalty; no repairs
    assert counts == {"legal_entity": 4, "license_publication": 3, "penalty_publication": 4,
                      "enterprise_credit_profile": 5, "credit_repair_review": 0}
    assert {t: info[t]["rows"] for t in PUBLIC_TABLES} == counts
    assert {r["run_id"] for r in info.values()} == {"run-1"}
    # the clustered publications' lookup column (storage.KEY_HASH) stays in the lake, neither released nor
    # reported as withheld
    gold = storage.open_table(settings.lake_location(gold_path("penalty_publication")))
    assert storage.KEY_HASH in gold.schema().to_arrow().names
    with duckdb.connect(str(path), read_only=True) as con:
        released = {c for (c,) in con.execute("select column_name from duckdb_columns() "
                                              "where table_name = 'penalty_publication'").fetchall()}
    assert released and storage.KEY_HASH not in released
    assert info["penalty_publication"]["withheld_columns"] is None


def test_tables_and_columns_carry_catalog_comments(extract):
    _, path = extract
    with duckdb.connect(str(path), read_only=True) as con:
        tables = dict(con.execute("select table_name, comment from duckdb_tables()").fetchall())
        columns = {(t, c): comment for t, c, comment in con.execute(
            "select table_name, column_name, comment from duckdb_columns()").fetchall()}
    assert all(tables.values())
    assert "grain: one row per 统一社会信用代码" in tables["legal_entity"]
    assert tables["penalty_publication"].startswith("行政处罚信息（双公示）")
    assert all(comment for (t, _c), comment in columns.items() if t in PUBLIC_TABLES)
    assert columns[("penalty_publication", "subject_name")].startswith("行政相对人名称 | Subject name | L3 | masked")
    assert columns[("legal_entity", "tax_rating")].startswith("纳税信用级别（最新） | Rating | L1")
    assert "derived" in columns[("legal_entity", "license_count")]


def test_no_id_or_mobile_number_survives(extract):
    _, path = extract
    with duckdb.connect(str(path), read_only=True) as con:
        cells = [v for t in (*PUBLIC_TABLES, INFO_TABLE) for row in _rows(con, t) for v in row.values()
                 if isinstance(v, str)]
    assert cells
    assert not [c for c in cells if is_valid_id_number(c)]
    assert not [c for c in cells if ID_RE.search(c)]
    assert not [c for c in cells if MOBILE_RE.search(c)]
    assert not [c for c in cells if PERSON_ID in c or PERSON_ID_2 in c or MOBILE in c]


def test_personal_columns_are_masked_per_catalog(extract):
    _, path = extract
    with duckdb.connect(str(path), read_only=True) as con:
        penalties = {r["decision_no"]: r for r in _rows(con, "penalty_publication")}
        licenses = {r["doc_no"]: r for r in _rows(con, "license_publication")}
        entities = {r["uscc"]: r for r in _rows(con, "legal_entity")}
    company, person = penalties["济环罚〔2024〕1号"], penalties["济环罚〔2024〕4号"]
    assert company["subject_name"] == "济南甲有限公司"  # public_when: an organisation's name is public
    assert company["legal_rep"] == "张*"
    assert company["legal_rep_id_no"] == PERSON_ID[:6] + "********" + PERSON_ID[-4:]
    assert person["subject_name"] == "孙*"
    assert person["id_no"] == PERSON_ID[:6] + "********" + PERSON_ID[-4:]
    assert "身份证号370102********" in person["facts"] and "138****5678" in person["facts"]
    # the subject's own name inside 违法事实 is masked too (a company's name is not)
    assert person["facts"].startswith("当事人孙*（") and "孙八" not in person["facts"]
    assert licenses["济市监许〔2024〕4号"]["subject_name"] == "赵*"
    assert entities[E1]["legal_rep"] == "张*"
    assert entities[E1]["name"] == "济南甲有限公司"
    assert entities[E1]["address"] == "山东省济南市历下区泉城路1号"  # a registered address is not personal


def test_rerun_replaces_the_file_atomically(extract):
    settings, path = extract
    build_gold(settings=settings, run_id="run-2")
    assert build_extract(settings=settings, run_id="run-2") == path
    assert sorted(p.name for p in settings.extracts.iterdir()) == ["analyst.duckdb"]
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.execute(f"select distinct run_id from {INFO_TABLE}").fetchall() == [("run-2",)]
        assert con.execute("select count(*) from legal_entity").fetchone()[0] == 4


def test_extract_needs_gold(tmp_path):
    settings = Settings(var=tmp_path / "var")
    with pytest.raises(FileNotFoundError, match="run gold first"):
        build_extract(settings=settings, run_id="run-0")
    assert not (settings.extracts / "analyst.duckdb").exists()
    assert not settings.extracts.exists() or list(settings.extracts.iterdir()) == []


# ---- a day's extract: the previous file updated by the gold files that changed ---------------------


def _content(path) -> dict[str, list[str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {t: sorted(map(repr, con.execute(f'select * from "{t}"').fetchall())) for t in PUBLIC_TABLES}


def _methods(path) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return dict(con.execute(f"select gold_table, method from {INFO_TABLE} where method <> 'read'").fetchall())


def _withdrawn(settings) -> list[tuple]:
    table = storage.open_table(storage.table_path(settings, "gold", "withdrawal_log"))
    return [] if table is None else sorted(
        (r["output"], r["decision_no"], r["reason"], r["run_id"]) for r in table.to_pyarrow_table().to_pylist())


def _a_day(settings) -> Settings:
    """One penalty revoked (济环罚〔2024〕1号 turns 无效), one new; gold and credit rebuilt for the next day."""
    day = dataclasses.replace(settings, as_of=settings.today + dt.timedelta(days=1))
    put_silver(settings, "credit.penalty", [_penalty("济环罚〔2024〕1号", status="无效"),
                                            _penalty("济环罚〔2024〕9号", decision_date=dt.date(2024, 5, 6))],
               batch="b2")
    build_gold(settings=day, run_id="run-2")
    build_credit(settings=day, run_id="run-2")
    return day


@pytest.mark.parametrize("case", ["updated", "over its churn budget", "released differently"])
def test_a_day_applies_the_changed_gold_files_and_equals_a_full_copy(extract, monkeypatch, case):
    settings, path = extract
    assert set(_methods(path).values()) == {"full"}
    monkeypatch.setattr(govlake.extract, "REBUILD_CHURN", 0.0 if case == "over its churn budget" else 100.0)
    if case == "released differently":  # e.g. a column's masking changed since the previous extract
        with duckdb.connect(str(path)) as con:
            con.execute(f"update {INFO_TABLE} set release = 'before' where gold_table = 'penalty_publication'")
    day = _a_day(settings)
    build_extract(settings=day, run_id="run-2")
    methods = _methods(path)
    assert methods["penalty_publication"] == ("updated" if case == "updated" else "full")
    assert methods["license_publication"] == "kept"  # its gold table did not change
    if case == "updated":
        # the merge rewrote the table's one file; of its rows, only the revoked one went and the new one came
        with duckdb.connect(str(path), read_only=True) as con:
            assert con.execute(f"select churn from {INFO_TABLE} where gold_table = 'penalty_publication'"
                               ).fetchone() == (2,)
            assert con.execute("select count(*) from penalty_publication").fetchone()[0] > 2
    log = _withdrawn(settings)
    assert log == [("extract/analyst.duckdb:penalty_publication", "济环罚〔2024〕1号", "revoked", "run-2"),
                   ("gold/penalty_publication", "济环罚〔2024〕1号", "revoked", "run-2")]
    day_content = _content(path)
    assert "济环罚〔2024〕9号" in str(day_content["penalty_publication"])
    assert "济环罚〔2024〕1号" not in str(day_content["penalty_publication"])
    # the same gold versions copied in full into a new file: the same rows
    path.rename(path.with_name("day.duckdb"))
    build_extract(settings=day, run_id="run-3")
    assert set(_methods(path).values()) == {"full"}
    assert _content(path) == day_content
    assert _withdrawn(settings) == log  # no previous file: nothing to compare, nothing logged


def test_a_record_changed_and_still_published_is_updated_and_not_withdrawn(extract, monkeypatch):
    """A day re-sends one published decision with another fine and revokes another: the extract's copy holds the
    new fine, and only the revoked decision is logged as withdrawn from it (the changed one left the copy and came
    back: the withdrawals are the removed keys no inserted row brings back)."""
    settings, path = extract
    monkeypatch.setattr(govlake.extract, "REBUILD_CHURN", 100.0)
    day = dataclasses.replace(settings, as_of=settings.today + dt.timedelta(days=1))
    put_silver(settings, "credit.penalty", [_penalty("济环罚〔2024〕1号", status="无效"),
                                            _penalty("济环罚〔2024〕5号", uscc=E5, subject_name="济南戊有限公司",
                                                     fine_amount=Decimal(7))], batch="b2")
    build_gold(settings=day, run_id="run-2")
    build_credit(settings=day, run_id="run-2")
    build_extract(settings=day, run_id="run-2")
    assert _methods(path)["penalty_publication"] == "updated"
    with duckdb.connect(str(path), read_only=True) as con:
        fines = dict(con.execute("select decision_no, fine_amount from penalty_publication").fetchall())
    assert fines["济环罚〔2024〕5号"] == Decimal(7) and "济环罚〔2024〕1号" not in fines
    assert [r for r in _withdrawn(settings) if r[0].startswith("extract/")] == [
        ("extract/analyst.duckdb:penalty_publication", "济环罚〔2024〕1号", "revoked", "run-2")]
    day_content = _content(path)
    path.rename(path.with_name("day.duckdb"))
    build_extract(settings=day, run_id="run-3")   # the same versions copied in full: the same rows
    assert _content(path) == day_content


def _hash_twins() -> tuple[str, str]:
    """Two licence numbers that DuckDB's ``hash()`` gives one number: they differ only in two bytes that each end an
    8-byte block of the text (govlake.extract.row_fingerprint)."""
    text = "排污许可证91370100MA3C00797X001P"
    data = text.encode()
    ends = [i for i, b in enumerate(data) if i % 8 == 7 and chr(b).isdigit()][:2]
    variants = []
    for x in "0123456789":
        for y in "0123456789":
            b = bytearray(data)
            b[ends[0]], b[ends[1]] = ord(x), ord(y)
            variants.append(b.decode())
    with duckdb.connect() as con:
        con.execute("create table v as select unnest(?) as t", [variants])
        twins = con.execute("select a.t, b.t from v as a join v as b on a.t < b.t and hash(a.t) = hash(b.t) "
                            "order by 1, 2 limit 1").fetchone()
    if twins is None:
        pytest.skip("DuckDB's hash() now tells such texts apart")
    return twins


def test_a_value_changed_where_duckdb_s_hash_cannot_tell_reaches_the_extract(extract, monkeypatch):
    """A decision re-sent twice in a file of the same name, its licence number corrected the second time in two bytes
    DuckDB's ``hash()`` does not tell apart (nothing else of the published row changes): each day's extract, updated
    from the changed files, holds the value of that day."""
    settings, path = extract
    monkeypatch.setattr(govlake.extract, "REBUILD_CHURN", 100.0)
    before, after = _hash_twins()
    day = settings
    for n, licence in enumerate((before, after), start=2):
        day = dataclasses.replace(day, as_of=day.today + dt.timedelta(days=1))
        put_silver(settings, "credit.penalty", [_penalty("济环罚〔2024〕5号", uscc=E5, subject_name="济南戊有限公司",
                                                         licence_revoked=licence,
                                                         _source="inbox/credit_penalty_corrected.csv")],
                   batch=f"b{n}")
        build_gold(settings=day, run_id=f"run-{n}")
        build_credit(settings=day, run_id=f"run-{n}")
        build_extract(settings=day, run_id=f"run-{n}")
        assert _methods(path)["penalty_publication"] == "updated"
        with duckdb.connect(str(path), read_only=True) as con:
            held = dict(con.execute("select decision_no, licence_revoked from penalty_publication").fetchall())
        assert held["济环罚〔2024〕5号"] == licence


def test_the_reason_of_a_withdrawal_the_credit_step_did_not_derive_is_found_all_the_same(extract, monkeypatch):
    """A day's withdrawals are looked up in the record files written since the previous extract read the table
    (the credit step derives a record again to withdraw it); a publication row deleted by hand, its record
    untouched, is found in the whole table."""
    settings, path = extract
    monkeypatch.setattr(govlake.extract, "REBUILD_CHURN", 100.0)
    with duckdb.connect(str(path), read_only=True) as con:
        read = dict(con.execute(f"select gold_table, gold_version from {INFO_TABLE} where method = 'read'").fetchall())
    assert read == {name: storage.open_table(storage.table_path(settings, "gold", name)).version()
                    for name in ("penalty_record", "license_record")}
    publication = storage.open_table(storage.table_path(settings, "gold", "penalty_publication"))
    no = publication.to_pyarrow_table().column("decision_no")[0].as_py()
    publication.delete(f"decision_no = '{no}'")
    build_extract(settings=settings, run_id="run-2")
    assert _methods(path)["penalty_publication"] == "updated"
    assert [r for r in _withdrawn(settings) if r[0].startswith("extract/")] == [
        ("extract/analyst.duckdb:penalty_publication", no, "rebuilt", "run-2")]  # its record is still 公示中


def test_a_key_held_twice_is_copied_in_full(extract, monkeypatch):
    """A removed gold file whose key another file also holds: deleting by key would take both rows; the
    update is rolled back and the table copied in full."""
    settings, path = extract
    monkeypatch.setattr(govlake.extract, "REBUILD_CHURN", 100.0)
    gold = storage.table_path(settings, "gold", "penalty_publication")
    row = storage.open_table(gold).to_pyarrow_table().slice(0, 1)
    storage.write_table(gold, row.set_column(row.schema.get_field_index("remark"), "remark",
                                             pa.array(["重复"], pa.string())), mode="append", run_id="dup")
    build_extract(settings=settings, run_id="run-2")
    assert _methods(path)["penalty_publication"] == "updated"  # an added file: inserted
    storage.open_table(gold).delete("remark = '重复'")  # the duplicate's file only
    build_extract(settings=settings, run_id="run-3")
    assert _methods(path)["penalty_publication"] == "full"
    with duckdb.connect(str(path), read_only=True) as con:
        no = row.column("decision_no")[0].as_py()
        assert con.execute("select count(*) from penalty_publication where decision_no = ?", [no]).fetchone() == (1,)
        assert con.execute("select count(*) from penalty_publication").fetchone() == (4,)


def test_an_unreadable_previous_extract_is_replaced_in_full(extract, caplog):
    settings, path = extract
    path.write_bytes(b"not a duckdb file")
    day = _a_day(settings)
    build_extract(settings=day, run_id="run-2")
    assert set(_methods(path).values()) == {"full"}
    assert "cannot be opened" in caplog.text
    assert [r for r in _withdrawn(settings) if r[0].startswith("extract/")] == []
