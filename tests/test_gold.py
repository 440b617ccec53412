"""Gold tables from tiny silver Delta tables written in tmp_path."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import signal
import sys
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from _new_resource import RESOURCE
from govlake import objectstore, storage
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.credit import build_credit
from govlake.credit._build import LICENSE, PENALTY
from govlake.gold import (
    GOLD_TABLES,
    MODEL_ORDER,
    SILVER_AT,
    GoldError,
    build_gold,
    entity_plan,
    model_header,
    model_sql,
    silver_schema,
    table_docs,
)
from govlake.identifiers import ric_check_char, uscc_check_char
from govlake.steps import RecoveryError

RECEIVED = dt.datetime(2024, 5, 6, 8, 0, tzinfo=dt.UTC)


def uscc(n: int) -> str:
    first17 = f"91370102MA{n:07d}"
    return first17 + uscc_check_char(first17)


def id_number(birth: str, seq: str) -> str:
    first17 = f"370102{birth}{seq}"
    return first17 + ric_check_char(first17)


E1, E2, E3, E4, E5 = (uscc(n) for n in (11, 22, 33, 44, 55))
PERSON_ID = id_number("19900307", "123")
PERSON_ID_2 = id_number("19851111", "456")
MOBILE = "13812345678"
DEPT = {"amr": "11370100MB0000001A", "ee": "11370100MB0000007W", "credit": "11370100MB0000005N"}

AMR = [
    {"uscc": E1, "name": "济南甲有限公司", "legal_rep": "张三", "legal_rep_id": PERSON_ID, "reg_capital": Decimal(100),
     "established": dt.date(2015, 3, 1), "reg_authority": "济南市市场监督管理局",
     "address": "山东省济南市历下区泉城路1号", "region_code": "370102", "industry_code": "F5211", "status": "存续",
     "updated_at": dt.datetime(2024, 5, 1, 9, 0)},
    {"uscc": E4, "name": "济南丁科技有限公司", "legal_rep": "刘七", "legal_rep_id": PERSON_ID_2,
     "reg_capital": Decimal("50.5"), "established": dt.date(2020, 1, 2), "address": "山东省济南市槐荫区经十路9号",
     "region_code": "370104", "industry_code": "I6510", "status": "在业", "updated_at": dt.datetime(2024, 5, 1, 9, 0)},
]
TAX = [
    {"uscc": E1, "name": "济南甲公司（税务登记名）", "address": "济南市历下区老地址8号", "year": 2023, "rating": "B"},
    {"uscc": E1, "name": "济南甲公司（税务登记名）", "address": "济南市历下区老地址8号", "year": 2024, "rating": "A"},
    {"uscc": E2, "name": "济南乙商贸有限公司", "address": "山东省济南市天桥区北园大街2号", "year": 2024, "rating": "M"},
]
HRSS = [
    {"uscc": E1, "name": "甲公司", "legal_rep": "李四", "period": "202401", "insured_count": 10,
     "due_amount": Decimal(5000), "paid_amount": Decimal(5000), "arrears": Decimal(0)},
    {"uscc": E1, "name": "甲公司", "legal_rep": "李四", "period": "202402", "insured_count": 12,
     "due_amount": Decimal(6000), "paid_amount": Decimal(5000), "arrears": Decimal(1000)},
    {"uscc": E3, "name": "丙餐饮店（旧）", "legal_rep": "王五", "period": "202312", "insured_count": 2,
     "due_amount": Decimal(800), "paid_amount": Decimal(800), "arrears": Decimal(0)},
    {"uscc": E3, "name": "丙餐饮店", "legal_rep": "王五", "period": "202402", "insured_count": 3,
     "due_amount": Decimal(900), "paid_amount": Decimal(600), "arrears": Decimal(300)},
]


def _license(doc_no: str, **kw) -> dict:
    row = {"subject_name": "济南甲有限公司", "subject_type": "法人及非法人组织", "uscc": E1, "legal_rep": "张三",
           "legal_rep_id_type": "身份证", "legal_rep_id_no": PERSON_ID, "doc_name": "食品经营许可决定书",
           "doc_no": doc_no, "license_category": "普通", "content": "食品销售", "decision_date": dt.date(2024, 4, 1),
           "valid_from": dt.date(2024, 4, 1), "valid_to": dt.date(2029, 3, 31), "authority": "济南市市场监督管理局",
           "authority_uscc": DEPT["amr"], "status": "有效", "source_dept": "济南市市场监督管理局",
           "source_dept_uscc": DEPT["amr"], "submitted_at": dt.datetime(2024, 4, 3, 10, 0), "_dept": "amr"}
    return row | kw


def _penalty(decision_no: str, **kw) -> dict:
    row = {"subject_name": "济南甲有限公司", "subject_type": "法人及非法人组织", "uscc": E1, "legal_rep": "张三",
           "legal_rep_id_type": "身份证", "legal_rep_id_no": PERSON_ID, "decision_no": decision_no,
           "violation_type": "超标排放", "facts": "超标排放大气污染物", "basis": "《大气污染防治法》第九十九条",
           "penalty_category": "罚款", "content": "罚款2万元", "fine_amount": Decimal(2),
           "decision_date": dt.date(2024, 4, 2), "valid_until": dt.date(2025, 4, 2), "authority": "济南市生态环境局",
           "authority_uscc": DEPT["ee"], "status": "有效", "source_dept": "济南市生态环境局",
           "source_dept_uscc": DEPT["ee"], "submitted_at": dt.datetime(2024, 4, 5, 10, 0), "_dept": "ee"}
    return row | kw


LICENSES = [
    _license("济市监许〔2024〕1号"),
    _license("济市监许〔2024〕2号"),
    _license("济市监许〔2024〕3号", status="无效"),
    _license("济市监许〔2024〕4号", subject_name="赵六", subject_type="自然人", uscc=None, legal_rep=None,
             legal_rep_id_type=None, legal_rep_id_no=None, id_type="身份证", id_no=PERSON_ID_2),
]
PENALTIES = [
    _penalty("济环罚〔2024〕1号"),
    _penalty("济环罚〔2024〕2号", status="无效"),
    _penalty("济环罚〔2024〕3号", uscc=E4, subject_name="济南丁科技有限公司", legal_rep="刘七",
             legal_rep_id_no=PERSON_ID_2, status=None),
    _penalty("济环罚〔2024〕4号", subject_name="孙八", subject_type="自然人", uscc=None, legal_rep=None,
             legal_rep_id_type=None, legal_rep_id_no=None, id_type="身份证", id_no=PERSON_ID,
             facts=f"当事人孙八（身份证号{PERSON_ID}，电话{MOBILE}）露天焚烧垃圾", penalty_category="警告",
             content="警告", fine_amount=None),
    # a code that no enterprise-keyed resource holds: counted nowhere in legal_entity
    _penalty("济环罚〔2024〕5号", uscc=E5, subject_name="济南戊有限公司"),
]
SILVER = {
    "amr.enterprise": AMR,
    "tax.credit_rating": TAX,
    "hrss.social_insurance": HRSS,
    "credit.license": LICENSES,
    "credit.penalty": PENALTIES,
}


def write_silver(settings: Settings, code: str, rows: list[dict]) -> None:
    res = get_catalog(settings.catalog_dir).resource(code)
    lineage = [
        {"_source": f"inbox/{res.slug}.csv", "_row_number": i + 1, "_batch_id": "b1", "_received_at": RECEIVED}
        | ({} if "_dept" in row else {"_dept": res.provider})
        for i, row in enumerate(rows)
    ]
    table = pa.Table.from_pylist([row | extra for row, extra in zip(rows, lineage)], schema=silver_schema(res))
    storage.write_table(storage.table_path(settings, "silver", res.slug), table, mode="overwrite", run_id="test")


def write_sample_silver(settings: Settings) -> None:
    for code, rows in SILVER.items():
        write_silver(settings, code, rows)


def read_gold(settings: Settings, name: str, *, key: tuple[str, ...] | None = None) -> list[dict]:
    dt_ = storage.open_table(storage.table_path(settings, "gold", name))
    rows = dt_.to_pyarrow_table().to_pylist()
    key = key or model_header(model_sql(settings, name)).key
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in key))


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(var=tmp_path / "var")


@pytest.fixture
def built(settings) -> tuple[Settings, dict[str, int]]:
    write_sample_silver(settings)
    return settings, build_gold(settings=settings, run_id="run-1")


def test_legal_entity_one_row_per_uscc(built):
    settings, counts = built
    rows = read_gold(settings, "legal_entity")
    assert counts["legal_entity"] == len(rows) == 4
    assert sorted(r["uscc"] for r in rows) == sorted([E1, E2, E3, E4])  # E5 only in credit


def test_authoritative_value_wins(built):
    settings, _ = built
    e1 = {r["uscc"]: r for r in read_gold(settings, "legal_entity")}[E1]
    assert e1["name"] == "济南甲有限公司"  # not tax's or hrss's spelling
    assert e1["legal_rep"] == "张三"  # not hrss's 李四
    assert e1["address"] == "山东省济南市历下区泉城路1号"
    assert e1["reg_capital"] == Decimal(100)
    assert e1["established"] == dt.date(2015, 3, 1)
    assert e1["attrs_from_non_authority"] is None
    assert e1["source_departments"] == "amr;credit;hrss;tax"
    assert "legal_rep_id" not in e1  # L4 items stay out of the 法人库


def test_non_authoritative_values_are_flagged(built):
    settings, _ = built
    rows = {r["uscc"]: r for r in read_gold(settings, "legal_entity")}
    e2, e3 = rows[E2], rows[E3]
    assert (e2["name"], e2["address"], e2["legal_rep"]) == ("济南乙商贸有限公司", "山东省济南市天桥区北园大街2号", None)
    assert e2["attrs_from_non_authority"] == "name;address"
    assert e2["source_departments"] == "tax"
    assert e2["status"] is None and e2["established"] is None
    # hrss copies come from the latest month
    assert (e3["name"], e3["legal_rep"]) == ("丙餐饮店", "王五")
    assert e3["attrs_from_non_authority"] == "name;legal_rep"


def test_latest_rating_social_insurance_and_counts(built):
    settings, _ = built
    rows = {r["uscc"]: r for r in read_gold(settings, "legal_entity")}
    e1, e3, e4 = rows[E1], rows[E3], rows[E4]
    assert (e1["tax_rating_year"], e1["tax_rating"]) == (2024, "A")
    assert (e1["social_insurance_period"], e1["social_insurance_insured_count"]) == ("202402", 12)
    assert e1["social_insurance_arrears"] == Decimal(1000)
    assert e3["social_insurance_arrears"] == Decimal(300)
    assert (e1["license_count"], e1["penalty_count"]) == (2, 1)  # the 无效 ones are not counted
    assert (e4["license_count"], e4["penalty_count"]) == (0, 1)  # a missing status means 有效
    assert (e4["tax_rating"], e4["social_insurance_period"]) == (None, None)


def test_publications_hold_valid_decisions_only(built):
    settings, _ = built
    result = build_credit(settings=dataclasses.replace(settings, as_of=dt.date(2024, 5, 6)), run_id="credit-1")
    assert (result.tables["license_publication"], result.tables["penalty_publication"]) == (3, 4)
    licenses = read_gold(settings, "license_publication", key=("doc_no",))
    penalties = read_gold(settings, "penalty_publication", key=("decision_no",))
    assert "济市监许〔2024〕3号" not in {r["doc_no"] for r in licenses}
    assert "济环罚〔2024〕2号" not in {r["decision_no"] for r in penalties}
    assert {r["status"] for r in licenses + penalties} == {"有效"}
    first = licenses[0]
    assert (first["_dept"], first["_source"], first["_row_number"]) == ("amr", "inbox/credit_license.csv", 1)
    catalog = get_catalog(settings.catalog_dir)
    for name, kind in (("license_publication", LICENSE), ("penalty_publication", PENALTY)):
        columns = storage.open_table(storage.table_path(settings, "gold", name)).schema().to_arrow().names
        assert list(columns) == ([i.column for i in catalog.resource(kind.resource).items]
                                 + ["_source", "_row_number", "_dept", *kind.published_extra]
                                 + ([storage.KEY_HASH] if kind.cluster_by else []))  # the lookup column


def test_rerun_gives_the_same_rows(built):
    settings, counts = built
    before = {name: read_gold(settings, name) for name in GOLD_TABLES}
    assert build_gold(settings=settings, run_id="run-2") == counts
    assert {name: read_gold(settings, name) for name in GOLD_TABLES} == before
    history = storage.open_table(storage.table_path(settings, "gold", "legal_entity")).history()
    assert history[0]["govlake.run_id"] == "run-2"


def test_gold_keeps_base_libraries_in_base_and_theme_libraries_in_theme(built):
    settings, _ = built
    build_credit(settings=settings, run_id="run-credit")
    gold = settings.lake / "gold"
    assert sorted(objectstore.delta_tables(gold / "base")) == sorted(GOLD_TABLES)
    assert {"penalty_record", "penalty_publication", "license_publication", "enterprise_credit_profile",
            "credit_repair_review"} <= set(objectstore.delta_tables(gold / "theme"))
    assert set(objectstore.delta_tables(gold)) <= {"withdrawal_log", "conflicts"}  # gold/ itself: the logs


def test_a_lake_from_before_the_libraries_is_moved_into_them_by_the_next_step(built):
    settings, counts = built
    build_credit(settings=settings, run_id="run-credit")
    gold = settings.lake / "gold"
    before = {name: read_gold(settings, name) for name in GOLD_TABLES}
    published = storage.open_table(gold / "theme" / "penalty_publication").to_pyarrow_table()
    for library in ("base", "theme"):  # the old layout: every table directly under gold/
        for name in objectstore.delta_tables(gold / library):
            (gold / library / name).rename(gold / name)
    assert build_gold(settings=settings, run_id="run-2") == counts
    assert {name: read_gold(settings, name) for name in GOLD_TABLES} == before
    assert set(objectstore.delta_tables(gold)) <= {"withdrawal_log", "conflicts"}  # only the logs stayed
    moved = storage.open_table(gold / "theme" / "penalty_publication")
    assert moved.to_pyarrow_table().sort_by("decision_no") == published.sort_by("decision_no")
    assert moved.history()[0]["govlake.run_id"] == "run-credit"  # moved with its history, not rebuilt

    # the same table in both places: the step stops and says which to keep
    shutil.copytree(gold / "base" / "population", gold / "population")
    with pytest.raises(RecoveryError, match=r"gold/population and .*gold/base/population both hold a table"):
        build_gold(settings=settings, run_id="run-3")


def test_missing_silver_gives_empty_gold(settings):
    counts = build_gold(settings=settings, run_id="run-empty")
    assert counts == {name: 0 for name in GOLD_TABLES}


def test_key_tests_stop_a_bad_model(settings):
    write_silver(settings, "credit.license", [_license("重复1号"), _license("重复1号")])
    build_gold(settings=settings, run_id="run-dup")
    with pytest.raises(GoldError, match="duplicated keys"):
        build_credit(settings=settings, run_id="run-dup")
    assert storage.open_table(storage.table_path(settings, "gold", "license_publication")) is None


def test_silver_missing_contract_columns_is_reported(settings):
    path = storage.table_path(settings, "silver", "tax_credit_rating")
    storage.write_table(path, pa.table({"uscc": [E1]}), mode="overwrite", run_id="test")
    with pytest.raises(GoldError, match="tax_credit_rating lacks contract columns"):
        build_gold(settings=settings, run_id="run-bad")


def test_silver_schema_follows_the_contract(settings):
    catalog = get_catalog(settings.catalog_dir)
    schema = silver_schema(catalog.resource("credit.penalty"))
    assert schema.field("uscc").type == pa.string()
    assert schema.field("decision_date").type == pa.date32()
    assert schema.field("fine_amount").type == pa.decimal128(18, 4)
    assert schema.field("submitted_at").type == pa.timestamp("us")
    assert schema.field("penalty_category").type == pa.string()
    assert schema.names[-5:] == ["_source", "_row_number", "_batch_id", "_received_at", "_dept"]
    assert silver_schema(catalog.resource("tax.credit_rating")).field("year").type == pa.int64()


def test_entity_plan_comes_from_the_catalog(settings):
    plan = entity_plan(get_catalog(settings.catalog_dir))
    assert plan.base.code == "amr.enterprise"
    copies = {a.column: [r.code for r in a.copies] for a in plan.attributes}
    # the departments' copies, in code order; a resource added to the catalog may add its own
    assert {"hrss.social_insurance", "tax.credit_rating"} <= set(copies["name"])
    assert all(found == sorted(found) for found in copies.values())
    assert "hrss.social_insurance" in copies["legal_rep"]
    assert "tax.credit_rating" in copies["address"]
    assert "amr.enterprise" not in {code for found in copies.values() for code in found}
    assert "legal_rep_id" not in copies and "updated_at" not in copies
    assert {"court.dishonest", "credit.license", "credit.penalty"} <= {r.code for r in plan.subjects}


@pytest.mark.parametrize("name", MODEL_ORDER)
def test_models_have_a_header(settings, name):
    """(The models' Spark parity: tests/test_spark_parity.py.)"""
    sql = model_sql(settings, name)
    header = model_header(sql)
    assert header.grain.startswith("one row per") and header.unique and header.not_null and header.owner
    assert sql.rstrip().splitlines()[-1].startswith("select * from ")


def test_every_gold_column_is_documented(built):
    """Every column a model makes; the silver table and version the kept summary counts are the step's stamp (its
    yml's comment says so)."""
    settings, _ = built
    docs = table_docs(settings)
    for name in GOLD_TABLES:
        columns = storage.open_table(storage.table_path(settings, "gold", name)).schema().to_arrow().names
        assert set(columns) - set(SILVER_AT) <= set(docs[name].columns), name


def test_a_resource_added_to_the_catalog_is_among_legal_entity_sources(settings, tmp_path):
    """legal_entity.yml lists the resources 法人库 reads; one added to the catalog since (a copy of the
    registry's name, tests/test_new_resource.py) reaches the table with no change, and the extract's
    comment names it too."""
    before = table_docs(settings)["legal_entity"]
    catalog_dir = Path(shutil.copytree(settings.catalog_dir, tmp_path / "catalog"))
    (catalog_dir / "resources" / "ee.discharge_permit.yml").write_text(RESOURCE, encoding="utf-8")
    after = table_docs(dataclasses.replace(settings, catalog_dir=catalog_dir))["legal_entity"]
    assert after.sources == (*before.sources, "ee.discharge_permit")
    assert after.columns == before.columns


# ---- the penalties' summary, kept from run to run ---------------------------------------------

PERSON_ID_3 = id_number("19770605", "789")


def _append_penalties(settings: Settings, rows: list[dict], *, batch: str, received: dt.datetime) -> None:
    """``rows`` appended to silver's penalties as a batch of their own (a new data file: what a day of new
    decisions does to silver)."""
    res = get_catalog(settings.catalog_dir).resource("credit.penalty")
    table = pa.Table.from_pylist(
        [row | {"_source": f"inbox/{batch}.csv", "_row_number": i + 1, "_batch_id": batch, "_received_at": received}
         for i, row in enumerate(rows)], schema=silver_schema(res))
    storage.write_table(storage.table_path(settings, "silver", res.slug), table, mode="append", run_id=batch)


def _file_changes_seen(monkeypatch) -> list:
    """What storage.file_changes returns to the gold step from now on, in order."""
    from _watch import file_changes_seen
    from govlake import gold

    return file_changes_seen(monkeypatch, gold)


def _summary(settings: Settings) -> tuple[list[tuple], set[tuple]]:
    """The kept summary's rows without its stamp (sorted), and the silver table and version it says it counts."""
    table = storage.open_table(storage.table_path(settings, "gold", "penalty_subjects")).to_pyarrow_table()
    stamps = set(zip(*(table[c].to_pylist() for c in SILVER_AT), strict=True))
    rows = table.drop_columns(list(SILVER_AT)).to_pylist()
    return sorted((tuple(r.values()) for r in rows), key=str), stamps


def _base_libraries(settings: Settings) -> dict[str, list[dict]]:
    return {name: read_gold(settings, name) for name in ("legal_entity", "population", "person_profile")}


def test_a_day_appended_to_silver_is_counted_into_the_summary_as_counting_every_row_would(settings, monkeypatch):
    """The base libraries read silver's penalties summed per subject and state (gold/base/penalty_subjects). A day
    that only appends to silver is counted in from the files it added (storage.file_changes: nothing removed),
    and the summary and the libraries are what counting every silver row again gives."""
    write_sample_silver(settings)
    build_gold(settings=settings, run_id="run-1")
    silver = storage.open_table(storage.table_path(settings, "silver", "credit_penalty"))
    assert _summary(settings)[1] == {(silver.metadata().id, silver.version())}
    person = {"subject_type": "自然人", "uscc": None, "legal_rep": None, "legal_rep_id_type": None,
              "legal_rep_id_no": None, "id_type": "身份证", "id_no": PERSON_ID_3}
    _append_penalties(settings, [_penalty("济环罚〔2024〕6号"),
                                 _penalty("济环罚〔2024〕7号", subject_name="周九", **person),
                                 _penalty("济环罚〔2024〕8号", status="无效", uscc=E4)],
                      batch="b2", received=RECEIVED + dt.timedelta(days=1))
    # the same person again, named otherwise: sent later (taken) and, in a batch of its own, earlier (not taken)
    _append_penalties(settings, [_penalty("济环罚〔2024〕9号", subject_name="周玖", fine_amount=Decimal("0.5"),
                                          **person)],
                      batch="b3", received=RECEIVED + dt.timedelta(days=2))
    _append_penalties(settings, [_penalty("济环罚〔2024〕10号", subject_name="周久", **person)],
                      batch="b4", received=RECEIVED - dt.timedelta(days=1))
    seen = _file_changes_seen(monkeypatch)
    build_gold(settings=settings, run_id="run-2")
    assert len(seen) == 1 and seen[0] is not None and seen[0][0] == [] and len(seen[0][1]) == 3   # counted in
    entities = {r["uscc"]: r for r in read_gold(settings, "legal_entity")}
    assert (entities[E1]["penalty_count"], entities[E4]["penalty_count"]) == (2, 1)   # 无效 is not counted
    people = {r["id_number"]: r for r in read_gold(settings, "population")}
    assert people[PERSON_ID_3]["name"] == "周玖"   # the latest row's name, not the last counted in
    profile = {r["id_number"]: r for r in read_gold(settings, "person_profile")}[PERSON_ID_3]
    assert (profile["penalty_count"], profile["penalty_fine_total"]) == (3, Decimal("4.5"))
    kept, libraries = _summary(settings), _base_libraries(settings)
    silver = storage.open_table(storage.table_path(settings, "silver", "credit_penalty"))
    assert kept[1] == {(silver.metadata().id, silver.version())}

    # the same silver counted from scratch (the summary deleted by hand): the same summary and libraries
    shutil.rmtree(storage.table_path(settings, "gold", "penalty_subjects"))
    seen.clear()
    build_gold(settings=settings, run_id="run-3")
    assert seen == []
    assert _summary(settings) == kept and _base_libraries(settings) == libraries
    # silver unchanged since: nothing counted, nothing written
    summary = storage.table_path(settings, "gold", "penalty_subjects")
    version = storage.open_table(summary).version()
    build_gold(settings=settings, run_id="run-4")
    assert seen == [] and storage.open_table(summary).version() == version


def test_rows_silver_lost_are_counted_out_and_silver_made_again_is_counted_whole(settings, monkeypatch):
    """A merge into silver replaces a data file: its rows are counted out and the new file's in. A group whose
    latest row went is given its rows in silver again to find its latest (here a person's latest decision, sent
    again revoked: their name comes from the decision before it). The summary and the libraries are what counting
    every silver row gives. Silver made again (another Delta table, its versions counted from 0 again) is counted
    whole, whatever version the summary names."""
    person = {"subject_type": "自然人", "uscc": None, "legal_rep": None, "legal_rep_id_type": None,
              "legal_rep_id_no": None, "id_type": "身份证", "id_no": PERSON_ID_3}
    write_sample_silver(settings)
    _append_penalties(settings, [_penalty("济环罚〔2024〕7号", subject_name="周九", **person)],
                      batch="b2", received=RECEIVED + dt.timedelta(days=1))
    _append_penalties(settings, [_penalty("济环罚〔2024〕9号", subject_name="周玖", **person)],
                      batch="b3", received=RECEIVED + dt.timedelta(days=2))
    build_gold(settings=settings, run_id="run-1")
    assert {r["id_number"]: r for r in read_gold(settings, "population")}[PERSON_ID_3]["name"] == "周玖"
    path = storage.table_path(settings, "silver", "credit_penalty")
    # b3's decision revoked (a merge: its file replaced by one with the row changed), E1's valid penalty too
    res = get_catalog(settings.catalog_dir).resource("credit.penalty")
    revoked = pa.Table.from_pylist([_penalty("济环罚〔2024〕9号", subject_name="周玖", status="无效", **person)
                                    | {"_source": "inbox/b4.csv", "_row_number": 1, "_batch_id": "b4",
                                       "_received_at": RECEIVED + dt.timedelta(days=3)}], schema=silver_schema(res))
    storage.merge_table(path, revoked, key=res.key, run_id="b4")
    first = [dict(p) for p in PENALTIES]
    first[0]["status"] = "无效"
    storage.merge_table(path, pa.Table.from_pylist([first[0] | {"_source": "inbox/b5.csv", "_row_number": 1,
                                                                "_batch_id": "b5", "_received_at": RECEIVED}],
                                                   schema=silver_schema(res)), key=res.key, run_id="b5")
    seen = _file_changes_seen(monkeypatch)
    build_gold(settings=settings, run_id="run-2")
    assert len(seen) == 1 and seen[0] is not None and all(seen[0])   # files removed and added: counted out and in
    assert {r["uscc"]: r for r in read_gold(settings, "legal_entity")}[E1]["penalty_count"] == 0
    people = {r["id_number"]: r for r in read_gold(settings, "population")}
    assert people[PERSON_ID_3]["name"] == "周玖"   # the revoked row, sent last, is the latest: its group changed
    profile = {r["id_number"]: r for r in read_gold(settings, "person_profile")}[PERSON_ID_3]
    assert profile["penalty_count"] == 1   # the revoked one is not counted
    kept, libraries = _summary(settings), _base_libraries(settings)
    assert [r for r in kept[0] if r[1] == PERSON_ID_3 and r[3] == "有效"][0][7] == "周九"   # its latest row went
    shutil.rmtree(storage.table_path(settings, "gold", "penalty_subjects"))
    build_gold(settings=settings, run_id="run-3")
    assert _summary(settings)[0] == kept[0] and _base_libraries(settings) == libraries

    # silver deleted and written again: a version the summary has seen, of another table
    shutil.rmtree(path)
    write_silver(settings, "credit.penalty", PENALTIES[:1])
    write_silver(settings, "credit.penalty", PENALTIES[:1])
    assert storage.open_table(path).version() == 1
    seen.clear()
    build_gold(settings=settings, run_id="run-4")
    assert seen == []   # not the table the summary counts: nothing to compare with
    entities = {r["uscc"]: r for r in read_gold(settings, "legal_entity")}
    assert (entities[E1]["penalty_count"], entities[E4]["penalty_count"]) == (1, 0)
    assert sum(r[4] for r in _summary(settings)[0]) == 1


@pytest.mark.parametrize("label", ["gold:gold/base/penalty_subjects", "gold:gold/base/legal_entity"])
def test_a_gold_run_killed_after_the_summary_or_a_library_is_finished_by_the_next(tmp_path, label):
    """Killed (SIGKILL) once the summary has counted a day's new file, or once the first library is written,
    the next run ends with the lake a clean run leaves (the summary found at silver's version counts nothing
    again)."""
    import _forked as forked
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
    from chaos import lake_digest

    start = Settings(var=tmp_path / "start")
    write_sample_silver(start)
    build_gold(settings=start, run_id="run-1")
    _append_penalties(start, [_penalty("济环罚〔2024〕6号")], batch="b2", received=RECEIVED + dt.timedelta(days=1))
    clean, case = (Settings(var=shutil.copytree(start.var, tmp_path / name)) for name in ("clean", "case"))
    build_gold(settings=clean, run_id="run-2")
    killed = forked.run(build_gold, settings=case, run_id="run-2", env={"GOVLAKE_CRASH_AT": label})
    assert killed.returncode == -signal.SIGKILL, killed.output
    build_gold(settings=case, run_id="run-3")
    assert lake_digest(case.var) == lake_digest(clean.var)
    assert {r["uscc"]: r for r in read_gold(case, "legal_entity")}[E1]["penalty_count"] == 2


@pytest.mark.spark
@pytest.mark.slow
def test_the_summary_is_kept_alike_on_spark(spark, tmp_path):
    """The same days on the Spark engine (the summary counted whole, then a day's files counted in, then a merge's
    counted out with a group's latest row gone): the same summary and base libraries as on DuckDB."""
    from govlake.config import DEFAULT_SPARK_JARS

    person = {"subject_type": "自然人", "uscc": None, "legal_rep": None, "legal_rep_id_type": None,
              "legal_rep_id_no": None, "id_type": "身份证", "id_no": PERSON_ID_3}
    lakes = {engine: Settings(var=tmp_path / engine, engine=engine, spark_jars=DEFAULT_SPARK_JARS)
             for engine in ("duckdb", "spark")}
    res = get_catalog(lakes["duckdb"].catalog_dir).resource("credit.penalty")
    for settings in lakes.values():
        write_sample_silver(settings)
        build_gold(settings=settings, run_id="run-1")
        _append_penalties(settings, [_penalty("济环罚〔2024〕7号", subject_name="周九", **person),
                                     _penalty("济环罚〔2024〕9号", subject_name="周玖", **person)],
                          batch="b2", received=RECEIVED + dt.timedelta(days=1))
        build_gold(settings=settings, run_id="run-2")
        revoked = pa.Table.from_pylist([_penalty("济环罚〔2024〕9号", subject_name="周玖", status="无效", **person)
                                        | {"_source": "inbox/b3.csv", "_row_number": 1, "_batch_id": "b3",
                                           "_received_at": RECEIVED + dt.timedelta(days=2)}],
                                       schema=silver_schema(res))
        storage.merge_table(storage.table_path(settings, "silver", res.slug), revoked, key=res.key, run_id="b3")
        build_gold(settings=settings, run_id="run-3")
    duck, on_spark = ((_summary(s)[0], _base_libraries(s)) for s in lakes.values())
    assert on_spark == duck
    assert [r for r in duck[0] if r[1] == PERSON_ID_3 and r[3] == "有效"][0][7] == "周九"
