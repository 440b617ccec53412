"""一数一源 conflicts: hand-made silver with hand-computed rates, the merge, and a generated city."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections import Counter
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from govlake import pipeline, storage
from govlake.catalog import get_catalog
from govlake.config import REPO_ROOT, Settings
from govlake.contracts import silver_schema
from govlake.generate import generate_city
from govlake.gold import build_gold, entity_plan
from govlake.governance import conflict_plan, detect_conflicts, raise_objection
from govlake.governance._conflicts import comparable_sql
from govlake.governance.kpis import conflict_kpis, conflict_rates
from govlake.identifiers import is_valid_id_number
from test_gold import id_number, uscc

RECEIVED = dt.datetime(2026, 5, 6, 8, 0, tzinfo=dt.UTC)
T1, T2, T3, T4 = (dt.datetime(2026, 11, d, 9, 0, tzinfo=dt.UTC) for d in (1, 2, 3, 4))


E1, E2, E3, E9 = (uscc(n) for n in (1, 2, 3, 9))


def _amr(code: str, name: str, legal_rep: str, address: str | None) -> dict:
    return {"uscc": code, "name": name, "legal_rep": legal_rep, "reg_capital": Decimal(100),
            "established": dt.date(2015, 3, 1), "address": address, "region_code": "370102", "status": "存续",
            "updated_at": dt.datetime(2026, 5, 1, 9, 0)}


AMR = [
    _amr(E1, "济南甲有限公司", "张三", "山东省济南市历下区泉城路1号"),
    _amr(E2, "济南乙商贸(集团)有限公司", "李四", "山东省济南市天桥区北园大街2号"),
    _amr(E3, "济南丙餐饮有限公司", "王五", None),
]
TAX = [
    # agrees (whitespace inside the address is not a difference)
    {"uscc": E1, "name": "济南甲有限公司", "address": "山东省济南市历下区泉城路 1 号", "year": 2024, "rating": "B"},
    # name agrees after full-width folding; address disagrees
    {"uscc": E2, "name": "济南乙商贸（集团）有限公司", "address": "山东省济南市天桥区北园大街20号", "year": 2025,
     "rating": "A"},
    # name disagrees; the authority has no address: only tax has one (not a conflict, gold uses it, flagged)
    {"uscc": E3, "name": "济南丙饭店", "address": "山东省济南市市中区经四路3号", "year": 2025, "rating": "M"},
    # not in the registry: nothing to compare with
    {"uscc": E9, "name": "外地企业", "address": "北京市东城区1号", "year": 2025, "rating": "B"},
]
HRSS = [
    {"uscc": E1, "name": "济南甲有限公司", "legal_rep": "张 三", "period": "202401"},
    {"uscc": E1, "name": "甲公司", "legal_rep": "张三", "period": "202402"},
    {"uscc": E2, "name": "济南乙商贸(集团)有限公司", "legal_rep": "赵六", "period": "202402"},
    {"uscc": E3, "name": "济南丙餐饮有限公司", "legal_rep": None, "period": "202402"},
]
# compared / disagreeing, by hand:
#   tax   name 3 / 1 (E3), address 2 / 1 (E2)              → 2 / 5
#   hrss  name 4 / 1 (E1 202402), legal_rep 3 / 1 (E2)      → 2 / 7
EXPECTED = {
    ("tax.credit_rating", "name", E3, "year=2025", "济南丙餐饮有限公司", "济南丙饭店"),
    ("tax.credit_rating", "address", E2, "year=2025", "山东省济南市天桥区北园大街2号",
     "山东省济南市天桥区北园大街20号"),
    ("hrss.social_insurance", "name", E1, "period=202402", "济南甲有限公司", "甲公司"),
    ("hrss.social_insurance", "legal_rep", E2, "period=202402", "李四", "赵六"),
}


def write_silver(settings: Settings, code: str, rows: list[dict]) -> None:
    res = get_catalog(settings.catalog_dir).resource(code)
    extra = [{"_source": f"inbox/{res.slug}.csv", "_row_number": i + 1, "_batch_id": "b1", "_received_at": RECEIVED,
              "_dept": res.provider} for i in range(len(rows))]
    table = pa.Table.from_pylist([e | r for r, e in zip(rows, extra)], schema=silver_schema(res))
    storage.write_table(storage.table_path(settings, "silver", res.slug), table, mode="overwrite", run_id="test")


def read(settings: Settings, layer: str, name: str) -> list[dict]:
    return storage.open_table(storage.table_path(settings, layer, name)).to_pyarrow_table().to_pylist()


@pytest.fixture
def silver(settings: Settings) -> Settings:
    for code, rows in (("amr.enterprise", AMR), ("tax.credit_rating", TAX), ("hrss.social_insurance", HRSS)):
        write_silver(settings, code, rows)
    return settings


def _found(rows: list[dict]) -> set[tuple]:
    return {(r["resource"], r["item"], r["entity_key"], r["record_key"], r["authoritative_value"], r["other_value"])
            for r in rows}


def test_the_plan_follows_the_catalog_authorities(settings):
    plan = conflict_plan(get_catalog(settings.catalog_dir))
    pairs = {(c.copy.code, c.column, c.authority.code, c.department) for c in plan}
    assert {("tax.credit_rating", "name", "amr.enterprise", "amr"),
            ("tax.credit_rating", "address", "amr.enterprise", "amr"),
            ("hrss.social_insurance", "name", "amr.enterprise", "amr"),
            ("hrss.social_insurance", "legal_rep", "amr.enterprise", "amr")} <= pairs
    assert all(c.copy.provider != c.department for c in plan)


def test_conflicts_are_exactly_the_disagreeing_copies(silver):
    summary = detect_conflicts(settings=silver, run_id="r1", now=T1)
    rows = read(silver, "gold", "conflicts")
    assert _found(rows) == EXPECTED
    assert (summary.compared, summary.disagreeing, summary.new, summary.resolved) == (12, 4, 4, 0)
    assert {r["department"] for r in rows if r["resource"] == "tax.credit_rating"} == {"tax"}
    assert all(r["status"] == "open" and r["authority_department"] == "amr" and r["entity_key_type"] == "uscc"
               and r["first_seen"] == T1 and r["last_seen"] == T1 and r["resolved_at"] is None for r in rows)
    assert len({r["conflict_id"] for r in rows}) == 4


def test_rates_per_department_and_item_equal_hand_counts(silver):
    rates = conflict_rates(silver)
    assert rates.by_department == {"hrss": (2, 7), "tax": (2, 5)}
    assert rates.by_item == {"amr.enterprise.address": (1, 2), "amr.enterprise.legal_rep": (1, 3),
                             "amr.enterprise.name": (2, 7)}
    kpis = {k.id: k for k in conflict_kpis(silver)}
    by_dept = {v.scope: v for v in kpis["governance.conflict_rate_by_department"].values}
    assert by_dept["tax"].value == pytest.approx(0.4)
    assert by_dept["hrss"].value == pytest.approx(2 / 7)
    assert (by_dept["all"].numerator, by_dept["all"].denominator) == (4, 12)
    by_item = {v.scope: v.value for v in kpis["governance.conflict_rate_by_item"].values}
    assert by_item["amr.enterprise.address"] == pytest.approx(0.5)
    assert kpis["governance.conflict_rate_by_item"].definition_zh


def test_rerun_keeps_first_seen_and_a_copy_that_agrees_again_is_resolved(silver):
    detect_conflicts(settings=silver, run_id="r1", now=T1)
    second = detect_conflicts(settings=silver, run_id="r2", now=T2)
    rows = read(silver, "gold", "conflicts")
    assert (second.new, second.resolved, len(rows)) == (0, 0, 4)
    assert {(r["first_seen"], r["last_seen"]) for r in rows} == {(T1, T2)}

    fixed = [r | {"name": "济南丙餐饮有限公司"} if r["uscc"] == E3 else r for r in TAX]
    write_silver(silver, "tax.credit_rating", fixed)
    third = detect_conflicts(settings=silver, run_id="r3", now=T3)
    rows = {r["item"] + r["resource"]: r for r in read(silver, "gold", "conflicts")}
    gone = rows["nametax.credit_rating"]
    assert (third.resolved, gone["status"], gone["first_seen"], gone["last_seen"], gone["resolved_at"]) == (
        1, "resolved", T1, T2, T3)
    assert rows["addresstax.credit_rating"]["last_seen"] == T3

    write_silver(silver, "tax.credit_rating", TAX)  # disagrees again
    detect_conflicts(settings=silver, run_id="r4", now=T4)
    back = {r["item"] + r["resource"]: r for r in read(silver, "gold", "conflicts")}["nametax.credit_rating"]
    assert (back["status"], back["first_seen"], back["last_seen"], back["resolved_at"]) == ("open", T1, T4, None)


def test_values_are_compared_numerically_dates_as_dates_text_folded(settings):
    catalog = get_catalog(settings.catalog_dir)
    capital, established = catalog.resource("amr.enterprise").item("reg_capital"), catalog.resource(
        "amr.enterprise").item("established")
    name = catalog.resource("amr.enterprise").item("name")
    con = duckdb.connect()
    eq = lambda a, b, item: con.execute(  # noqa: E731
        f"select {comparable_sql(a, item)} = {comparable_sql(b, item)}").fetchone()[0]
    assert eq("cast(50.5 as decimal(18, 4))", "'50.50'", capital)
    assert not eq("cast(50.5 as decimal(18, 4))", "'50.05'", capital)
    assert eq("date '2024-01-02'", "'2024-01-02'", established)
    assert eq("'ABC 济南（甲）公司'", "'abc济南(甲)公司'", name)
    assert not eq("'济南甲公司'", "'济南乙公司'", name)


def test_gold_takes_the_authority_and_flags_values_only_a_copy_has(silver):
    build_gold(settings=silver, run_id="g1")
    gold = {r["uscc"]: r for r in read(silver, "gold", "legal_entity")}
    assert (gold[E1]["name"], gold[E1]["attrs_from_non_authority"]) == ("济南甲有限公司", None)
    assert (gold[E2]["legal_rep"], gold[E2]["address"]) == ("李四", "山东省济南市天桥区北园大街2号")
    # amr holds E3 but without an address: tax's address is used and flagged
    assert (gold[E3]["address"], gold[E3]["attrs_from_non_authority"]) == ("山东省济南市市中区经四路3号", "address")
    # E9 only in tax: name and address from tax, flagged
    assert (gold[E9]["name"], gold[E9]["attrs_from_non_authority"]) == ("外地企业", "name;address")


# ---- people: psb.population as the authority, id numbers masked in what is printed ----------

PERSON = id_number("19900307", "123")
MOBILE = "13812345678"
PENSION = """code: hrss.pension
name: 养老保险参保人员
name_en: Pension insured persons (test)
kind: 部门
category: 社会保障
provider: hrss
summary: 测试用的人员副本。
format: csv
share_type: 无条件共享
share_method: 接口
open_type: 不予开放
update_cycle: monthly
published: 2024-01-01
grain: one row per person
key: [id_number]
source: {kind: csv, pattern: "hrss/pension/*.csv"}
items:
  - {column: id_number, name: 身份证号, name_en: ID number, type: id_number, required: true, level: L4, pii: id_number}
  - {column: name, name: 姓名, name_en: Name, level: L3, pii: person_name, authority: psb}
  - {column: address, name: 住址, name_en: Address, level: L3, pii: address, authority: psb}
"""


def _no_identifiers(text: str) -> None:
    assert not [t for t in re.findall(r"\d{17}[\dXx]", text) if is_valid_id_number(t)]
    assert not re.findall(r"1[3-9]\d{9}", text)


def test_person_copies_are_checked_and_printed_masked(tmp_path, monkeypatch):
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(REPO_ROOT / "catalog", catalog_dir)
    (catalog_dir / "resources" / "hrss.pension.yml").write_text(PENSION, encoding="utf-8")
    settings = Settings(var=tmp_path / "var", catalog_dir=catalog_dir)
    write_silver(settings, "psb.population", [
        {"id_number": PERSON, "name": "孙八", "sex": "男", "birth_date": dt.date(1990, 3, 7),
         "hukou_region": "370102", "address": "山东省济南市历下区泉城路8号", "mobile": MOBILE}])
    write_silver(settings, "hrss.pension", [
        {"id_number": PERSON, "name": "孙八", "address": "山东省济南市历下区泉城路18号"}])
    detect_conflicts(settings=settings, run_id="p1", now=T1)
    rows = read(settings, "gold", "conflicts")
    assert _found(rows) == {("hrss.pension", "address", PERSON, None, "山东省济南市历下区泉城路8号",
                             "山东省济南市历下区泉城路18号")}
    assert rows[0]["entity_key_type"] == "id_number"

    from govlake.cli import app

    monkeypatch.setenv("GOVLAKE_VAR", str(settings.var))
    monkeypatch.setenv("GOVLAKE_CATALOG_DIR", str(catalog_dir))
    out = CliRunner().invoke(app, ["objection", "conflicts", "--json"])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)[0]
    assert shown["entity_key"] == PERSON[:6] + "********" + PERSON[-4:]
    assert (shown["authoritative_value"], shown["other_value"]) == ("山东省济南市历下区****", "山东省济南市历下区****")
    table = CliRunner().invoke(app, ["objection", "conflicts"], env={"COLUMNS": "250"})
    _no_identifiers(out.output + table.output)


# ---- a natural person's name: copies of psb.population.name under other columns ----------------

P1, P2, P3, P4, P5, P9 = (id_number("19850101", f"{n:03d}") for n in (11, 22, 33, 44, 55, 99))
POPULATION = [{"id_number": p, "name": n, "sex": "男", "birth_date": dt.date(1985, 1, 1), "hukou_region": "370102"}
              for p, n in ((P1, "孙八"), (P2, "周九"), (P3, "吴十"), (P4, "张三"), (P5, "李思"))]
AMR_REPS = [AMR[0] | {"legal_rep_id": P4},   # 张三 = 张三
            AMR[1] | {"legal_rep_id": P5},   # 李四 ≠ 李思: a conflict
            AMR[2] | {"legal_rep_id": None}]  # no 身份证号: not compared


def _penalty(no: str, subject_type: str, name: str, id_no: str | None) -> dict:
    return {"decision_no": no, "authority_uscc": E9, "subject_type": subject_type, "subject_name": name,
            "id_no": id_no, "_dept": "emerg"}


PENALTY = [
    _penalty("罚1", "自然人", "孙八", P1),                # agrees
    _penalty("罚2", "自然人", "周 九", P2),               # agrees after whitespace folding
    _penalty("罚3", "自然人", "吴拾", P3),                # disagrees
    _penalty("罚4", "法人及非法人组织", "济南甲有限公司", P1),  # not a 自然人: not a copy of a person's name
    _penalty("罚5", "自然人", "郑一", P9),                # not in the population: nothing to compare with
]
COURT = [
    {"case_no": "（2026）鲁01执1号", "subject_type": "自然人", "subject_name": "孙捌", "id_no": P1},  # disagrees
    {"case_no": "（2026）鲁01执2号", "subject_type": "法人及非法人组织", "subject_name": "济南乙商贸(集团)有限公司",
     "uscc": E2},
]
# compared / disagreeing, by hand:
#   amr    legal_rep: E1, E2 → 2 / 1;  emerg (credit.penalty) 罚1-罚3 → 3 / 1;  court 1 / 1
#   item psb.population.name: 6 / 3
PERSON_EXPECTED = {
    ("amr.enterprise", "name", P5, f"uscc={E2}", "李思", "李四"),  # the copy's own key tells its rows apart
    ("credit.penalty", "name", P3, f"decision_no=罚3;authority_uscc={E9}", "吴十", "吴拾"),
    ("court.dishonest", "name", P1, "case_no=（2026）鲁01执1号", "孙八", "孙捌"),
}


@pytest.fixture
def people(settings: Settings) -> Settings:
    for code, rows in (("psb.population", POPULATION), ("amr.enterprise", AMR_REPS), ("credit.penalty", PENALTY),
                       ("court.dishonest", COURT)):
        write_silver(settings, code, rows)
    return settings


def test_person_name_copies_are_declared_with_copy_of(settings):
    catalog = get_catalog(settings.catalog_dir)
    person = {(c.copy.code, c.copy_column): (c.column, c.authority.code, c.copy_key, c.when, c.entity_key_type)
              for c in conflict_plan(catalog) if c.authority.code == "psb.population"}
    natural = "subject_type = '自然人'"
    assert person == {
        ("amr.enterprise", "legal_rep"): ("name", "psb.population", "legal_rep_id", None, "id_number"),
        ("credit.penalty", "subject_name"): ("name", "psb.population", "id_no", natural, "id_number"),
        ("credit.license", "subject_name"): ("name", "psb.population", "id_no", natural, "id_number"),
        ("court.dishonest", "subject_name"): ("name", "psb.population", "id_no", natural, "id_number"),
    }
    # the 法人库's legal_rep is still decided by amr: gold's entity plan does not look for psb
    legal_rep = next(a for a in entity_plan(catalog).attributes if a.column == "legal_rep")
    assert (legal_rep.authority.code, [r.code for r in legal_rep.copies]) == ("amr.enterprise",
                                                                               ["hrss.social_insurance"])


def test_person_names_are_compared_only_for_natural_persons_in_the_population(people):
    summary = detect_conflicts(settings=people, run_id="n1", now=T1)
    rows = read(people, "gold", "conflicts")
    assert _found(rows) == PERSON_EXPECTED
    assert (summary.compared, summary.disagreeing) == (6, 3)
    assert {r["resource"]: r["department"] for r in rows} == {
        "amr.enterprise": "amr", "credit.penalty": "emerg", "court.dishonest": "court"}
    assert all((r["entity_key_type"], r["authority_department"], r["authority_resource"], r["item_name"])
               == ("id_number", "psb", "psb.population", "姓名") for r in rows)
    rates = conflict_rates(people)
    assert rates.by_department == {"amr": (1, 2), "court": (1, 1), "emerg": (1, 3)}
    assert rates.by_item == {"psb.population.name": (3, 6)}
    by_item = {v.scope: v for v in next(k for k in conflict_kpis(people)
                                         if k.id == "governance.conflict_rate_by_item").values}
    assert by_item["psb.population.name"].value == pytest.approx(0.5)
    # an objection about a person conflict disputes the population's name (the item, not the copy's column)
    court = next(r for r in rows if r["resource"] == "court.dishonest")
    o = raise_objection(settings=people, conflict_id=court["conflict_id"], by="court", reason="姓名与户籍不一致",
                        run_id="o1", now=T2)
    assert (o.resource, o.item, o.entity_key_type, o.entity_key, o.disputed_value) == (
        "psb.population", "name", "id_number", P1, "孙八")
    # gold keeps amr's legal representative (the registry decides the 法人库's value)
    build_gold(settings=people, run_id="g1")
    assert {r["uscc"]: r["legal_rep"] for r in read(people, "gold", "legal_entity")}[E2] == "李四"


def test_copy_declarations_are_validated_with_file_and_line(tmp_path):
    from govlake.catalog import CatalogError, load_catalog

    catalog_dir = tmp_path / "catalog"
    shutil.copytree(REPO_ROOT / "catalog", catalog_dir)
    bad = PENSION.replace("pii: person_name, authority: psb}",
                          "pii: person_name, copy_of: psb.population.nom, copy_key: idno, copy_when: \"kind = 1\"}")
    (catalog_dir / "resources" / "hrss.pension.yml").write_text(bad, encoding="utf-8")
    with pytest.raises(CatalogError) as err:
        load_catalog(catalog_dir)
    path = catalog_dir / "resources" / "hrss.pension.yml"
    assert err.value.problems == [
        f"{path}:19:83: items.1.copy_of: psb.population has no item 'nom'",
        f"{path}:19:113: items.1.copy_key: 'idno' is not an item of hrss.pension",
        f"{path}:19:130: items.1.copy_when: unknown column kind in 'kind = 1'",
    ]
    (catalog_dir / "resources" / "hrss.pension.yml").write_text(
        PENSION.replace("authority: psb}", "authority: psb, copy_key: id_number}"), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"hrss.pension.yml:19:5: items.1: copy_key and copy_when need"):
        load_catalog(catalog_dir)


# ---- the generated city: exactly the injected disagreements -----------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_generated_city_conflicts_are_exactly_the_injected_disagreements(tmp_path):
    as_of = dt.date(2026, 11, 20)
    settings = Settings(var=tmp_path / "var", inbox=tmp_path / "inbox", as_of=as_of)
    manifest = generate_city(settings.city, scale=6000, seed=11, as_of=as_of)
    for code in get_catalog(settings.catalog_dir).resources:
        pipeline.ingest(code, settings=settings)
        pipeline.process(code, settings=settings, run_id="city-1")
    pipeline.gold(settings=settings, run_id="city-1")
    summary = pipeline.conflicts(settings=settings, run_id="city-1")
    rows = read(settings, "gold", "conflicts")
    expected = Counter((d.resource, d.item, d.entity_key, d.department, d.authoritative_value, d.other_value)
                       for d in manifest.disagreements)
    found = Counter((r["resource"], r["item"], r["entity_key"], r["department"], r["authoritative_value"],
                     r["other_value"]) for r in rows)
    assert len(expected) >= 5
    assert {"credit.penalty", "credit.license", "court.dishonest"} <= {d.resource for d in manifest.disagreements
                                                                       if d.id_number}
    assert found == expected
    per_item = Counter((d.item, d.department) for d in manifest.disagreements)
    assert Counter((r["item"], r["department"]) for r in rows) == per_item
    assert summary.disagreeing == sum(expected.values())
