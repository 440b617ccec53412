"""The analyst extract: gold tables, masked, commented, atomically replaced."""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import pytest

from govlake.config import Settings
from govlake.credit import build_credit
from govlake.extract import INFO_TABLE, build_extract
from govlake.gold import PUBLIC_TABLES, build_gold
from govlake.identifiers import is_valid_id_number
from test_gold import E1, MOBILE, PERSON_ID, PERSON_ID_2, write_sample_silver

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
