"""人口库 (gold/population) and 一人一档 (gold/person_profile) from a hand-made silver fixture written in
tmp_path: four persons, one known only from a penalty, one legal representative of two enterprises,
one on the court's list, one with penalties. The expected rows are worked out by hand below."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.credit import build_credit
from govlake.extract import INFO_TABLE, build_extract
from govlake.gold import GOLD_TABLES, PUBLIC_TABLES, build_gold, lineage_plan, person_plan, table_docs
from govlake.identifiers import is_valid_id_number
from test_gold import AMR, _penalty, id_number, read_gold, uscc, write_silver

ZHOU = id_number("19800101", "001")  # in psb; a valid penalty with a fine, and a revoked one
WU = id_number("19850202", "002")  # only known from a penalty naming him as a natural person
ZHENG = id_number("19700303", "003")  # in psb; legal representative of two enterprises
FENG = id_number("19900404", "004")  # in psb; on the court's 失信被执行人 list
EA, EB = uscc(101), uscc(202)
NAMES = ("周一", "吴二", "郑三", "郑叁", "冯四")

PSB = [
    {"id_number": ZHOU, "name": "周一", "sex": "男", "birth_date": dt.date(1980, 1, 1), "hukou_region": "370102",
     "address": "历下区文化东路1号", "mobile": "13900000001"},
    {"id_number": ZHENG, "name": "郑三", "sex": "男", "birth_date": dt.date(1970, 3, 3), "hukou_region": "370103",
     "address": None, "mobile": None},
    {"id_number": FENG, "name": "冯四", "sex": "女", "birth_date": dt.date(1990, 4, 4), "hukou_region": "370104",
     "address": "槐荫区经十路4号", "mobile": "13900000004"},
]
# the registry spells 郑三's name 郑叁: a copy, not used while psb holds him
ENTERPRISES = [AMR[0] | {"uscc": EB, "name": "济南乙有限公司", "legal_rep": "郑叁", "legal_rep_id": ZHENG},
               AMR[0] | {"uscc": EA, "name": "济南甲有限公司", "legal_rep": "郑叁", "legal_rep_id": ZHENG}]
_PERSON = {"subject_type": "自然人", "uscc": None, "legal_rep": None, "legal_rep_id_type": None,
           "legal_rep_id_no": None, "id_type": "身份证"}
PENALTIES = [
    _penalty("济环罚〔2024〕11号", **_PERSON, subject_name="周一", id_no=ZHOU, fine_amount=Decimal(3)),
    _penalty("济环罚〔2024〕12号", **_PERSON, subject_name="周一", id_no=ZHOU, fine_amount=Decimal(10), status="无效"),
    _penalty("济环罚〔2024〕13号", **_PERSON, subject_name="吴二", id_no=WU, penalty_category="警告", content="警告",
             fine_amount=None),
]
COURT = [
    {"case_no": "（2024）鲁01执1号", "subject_name": "冯四", "subject_type": "自然人", "id_no": FENG,
     "court_name": "济南市中级人民法院", "filing_date": dt.date(2024, 1, 5), "published_date": dt.date(2024, 3, 1),
     "circumstance": "有履行能力而拒不履行生效法律文书确定义务", "performance": "全部未履行", "removed_date": None},
]
SILVER = {"psb.population": PSB, "amr.enterprise": ENTERPRISES, "credit.penalty": PENALTIES, "court.dishonest": COURT}

# worked out by hand from the rows above
POPULATION = {
    ZHOU: {"name": "周一", "sex": "男", "mobile": "13900000001", "attrs_from_non_authority": None,
           "in_population_register": True, "source_departments": "credit;psb"},
    WU: {"name": "吴二", "sex": None, "mobile": None, "attrs_from_non_authority": "name",
         "in_population_register": False, "source_departments": "credit"},
    ZHENG: {"name": "郑三", "sex": "男", "mobile": None, "attrs_from_non_authority": None,
            "in_population_register": True, "source_departments": "amr;psb"},
    FENG: {"name": "冯四", "sex": "女", "mobile": "13900000004", "attrs_from_non_authority": None,
           "in_population_register": True, "source_departments": "court;psb"},
}
_NONE = {"penalty_count": 0, "penalty_fine_total": Decimal(0), "license_count": 0, "dishonest_listed": False,
         "dishonest_case_count": 0, "legal_rep_count": 0, "legal_rep_usccs": None}
PROFILES = {
    ZHOU: {"name": "周一", "in_population_register": True} | _NONE
    | {"penalty_count": 1, "penalty_fine_total": Decimal(3)},  # the revoked penalty is not counted
    WU: {"name": "吴二", "in_population_register": False} | _NONE | {"penalty_count": 1},  # a warning, no fine
    ZHENG: {"name": "郑三", "in_population_register": True} | _NONE
    | {"legal_rep_count": 2, "legal_rep_usccs": ";".join(sorted([EA, EB]))},
    FENG: {"name": "冯四", "in_population_register": True} | _NONE
    | {"dishonest_listed": True, "dishonest_case_count": 1},
}


def write_person_silver(settings: Settings) -> None:
    for code, rows in SILVER.items():
        write_silver(settings, code, rows)


@pytest.fixture
def built(tmp_path) -> Settings:
    settings = Settings(var=tmp_path / "var", as_of=dt.date(2024, 5, 6))
    write_person_silver(settings)
    build_gold(settings=settings, run_id="run-1")
    return settings


def _by_id(settings: Settings, name: str, columns) -> dict[str, dict]:
    return {r["id_number"]: {c: r[c] for c in columns} for r in read_gold(settings, name)}


def test_population_one_row_per_person_from_the_authority_else_a_copy(built):
    rows = read_gold(built, "population")
    assert len(rows) == 4
    assert _by_id(built, "population", POPULATION[ZHOU]) == POPULATION


def test_person_profile_rows(built):
    assert _by_id(built, "person_profile", PROFILES[ZHOU]) == PROFILES


def test_both_tables_are_written_by_the_gold_step_and_have_lineage(built):
    assert {"population", "person_profile"} <= set(GOLD_TABLES)
    plan = lineage_plan(built)
    children = {c.name: c for c in plan.children}
    assert not plan.errors
    assert {"gold.population", "gold.person_profile"} <= set(children)
    inputs = {name: {d.ref.label for d in children[f"gold.{name}"].inputs} for name in ("population", "person_profile")}
    # population reads the authority and every copy; person_profile's reads go through population
    assert inputs["population"] == {"silver.psb_population", "silver.amr_enterprise", "silver.court_dishonest",
                                    "silver.credit_license", "silver.credit_penalty"}
    assert inputs["person_profile"] == inputs["population"]
    assert [d.ref.label for d in children["gold.person_profile"].outputs] == ["gold.person_profile"]


HRSS_PERSON = """\
code: hrss.insured_person
name: 个人参保登记信息
name_en: Insured persons
kind: 部门
category: 社会保障
provider: hrss
summary: 人社局个人参保登记（身份证号、手机号），测试用。
format: csv
share_type: 有条件共享
share_condition: 政务部门履职使用，手机号脱敏
share_basis: 《社会保险法》
share_method: 接口
open_type: 不予开放
update_cycle: daily
published: 2026-11-01
grain: one row per insured person (身份证号)
key: [id_number]
source: {kind: csv, pattern: "hrss/person/*.csv"}
items:
  - {column: id_number, name: 身份证号, name_en: ID number, type: id_number, required: true, level: L4, pii: id_number}
  - {column: mobile, name: 手机号, name_en: Mobile number, type: phone, level: L3, pii: phone}
"""


def test_an_attribute_whose_authority_changes_in_the_catalog_comes_from_the_new_authority(tmp_path):
    """A copy of the catalog makes hrss the authority of 手机号 (psb.population's mobile says authority:
    hrss, and hrss delivers a person-keyed resource holding it): the 人口库 takes hrss's number; a person
    hrss does not hold keeps psb's, now a copy, and flagged."""
    var = tmp_path / "var"
    catalog_dir = Path(shutil.copytree(Settings(var=var).catalog_dir, tmp_path / "catalog"))
    psb = catalog_dir / "resources" / "psb.population.yml"
    line = "  - {column: mobile, name: 手机号, name_en: Mobile number, type: phone, level: L3, pii: phone}"
    text = psb.read_text(encoding="utf-8")
    assert line in text
    psb.write_text(text.replace(line, line[:-1] + ", authority: hrss}"), encoding="utf-8")
    (catalog_dir / "resources" / "hrss.insured_person.yml").write_text(HRSS_PERSON, encoding="utf-8")
    settings = Settings(var=var, catalog_dir=catalog_dir)

    mobile = next(a for a in person_plan(get_catalog(catalog_dir)).attributes if a.column == "mobile")
    assert mobile.authority.code == "hrss.insured_person"
    assert [c.resource.code for c in mobile.copies] == ["psb.population"]

    write_person_silver(settings)
    newcomer = id_number("20000505", "005")
    write_silver(settings, "hrss.insured_person", [{"id_number": ZHOU, "mobile": "13900000009"},
                                                    {"id_number": newcomer, "mobile": "13900000005"}])
    build_gold(settings=settings, run_id="run-1")
    rows = _by_id(settings, "population", ("name", "mobile", "attrs_from_non_authority", "in_population_register",
                                           "source_departments"))
    assert rows[ZHOU] == {"name": "周一", "mobile": "13900000009", "attrs_from_non_authority": None,
                          "in_population_register": True, "source_departments": "credit;hrss;psb"}
    assert rows[FENG]["mobile"] == "13900000004" and rows[FENG]["attrs_from_non_authority"] == "mobile"
    assert rows[newcomer] == {"name": None, "mobile": "13900000005", "attrs_from_non_authority": None,
                              "in_population_register": False, "source_departments": "hrss"}


ID_RE = re.compile(r"[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]")


def test_neither_table_reaches_the_analyst_extract_and_no_person_is_unmasked(built):
    assert not {"population", "person_profile"} & set(PUBLIC_TABLES)
    build_credit(settings=built, run_id="run-1")
    path = build_extract(settings=built, run_id="run-1")
    with duckdb.connect(str(path), read_only=True) as con:
        tables = {t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()}
        cells = [v for t in tables for row in con.execute(f'select * from "{t}"').fetchall() for v in row
                 if isinstance(v, str)]
    assert tables == {*PUBLIC_TABLES, INFO_TABLE}
    assert "郑*" in cells and "周*" in cells  # the persons are there, masked (legal_entity, penalty_publication)
    assert not [c for c in cells if any(name in c for name in NAMES)]
    assert not [c for c in cells if is_valid_id_number(c) or ID_RE.search(c)]
    assert not [c for c in cells if any(p in c for p in (ZHOU, WU, ZHENG, FENG))]


def test_person_columns_carry_their_catalog_items(built):
    """The person columns are documented from psb.population's items, so levels and masking follow the catalog."""
    docs = table_docs(built)
    for name in ("population", "person_profile"):
        assert docs[name].columns["id_number"].item.level == "L4"
        assert docs[name].columns["name"].item.pii == "person_name"
