"""The credit step on hand-made silver: deadlines, lifecycle, repair, withdrawal, profile, score, KPIs.

Every expected value below is computed by hand from the State Council calendar and
catalog/credit_rules.yml (7 working days, amr 20; decided before 2026-04-01 (regime ndrc-2023): 一般 3–12
months, 严重 6–36 months; from 2026-04-01 (ndrc-2026): 严重 12–36 months, warning-only decisions 轻微 and
not published; serious from 吊销许可证件 or a fine ≥ 100 万元; score base 800, bands A 900 / B 750 / C 600).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from govlake import storage
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.contracts import silver_schema
from govlake.credit import build_credit
from govlake.credit._build import PENALTY
from govlake.credit.kpis import credit_kpis
from govlake.extract import build_extract
from govlake.gold import build_gold
from govlake.identifiers import uscc_check_char
from test_gold import DEPT, E1, E2, PERSON_ID, _license, _penalty

RECEIVED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def put_silver(settings: Settings, code: str, rows: list[dict], *, batch: str = "b1",
               received: dt.datetime = RECEIVED) -> None:
    """Merge rows into silver by key, as the process step does."""
    res = get_catalog(settings.catalog_dir).resource(code)
    records = [{"_source": f"inbox/{res.slug}_{batch}.csv", "_row_number": i + 1, "_batch_id": batch,
                "_received_at": received, "_dept": res.provider} | row for i, row in enumerate(rows)]
    table = pa.Table.from_pylist(records, schema=silver_schema(res))
    storage.merge_table(storage.table_path(settings, "silver", res.slug), table, key=res.key, run_id=batch)


def rows(settings: Settings, name: str, key: str) -> dict:
    table = storage.open_table(storage.table_path(settings, "gold", name))
    return {} if table is None else {r[key]: r for r in table.to_pyarrow_table().to_pylist()}


def run_day(settings: Settings, as_of: dt.date, run_id: str):
    day = dataclasses.replace(settings, as_of=as_of)
    build_gold(settings=day, run_id=run_id)
    result = build_credit(settings=day, run_id=run_id)
    build_extract(settings=day, run_id=run_id)
    return result


def ee_penalty(no: str, decided: dt.date, **kw) -> dict:
    return _penalty(no, decision_date=decided, valid_until=decided + dt.timedelta(days=365), **kw)


# ---- deadlines on the State Council calendar -----------------------------------------------------

def test_deadlines_around_national_day_2026_and_into_2027(tmp_path):
    settings = Settings(var=tmp_path / "var", as_of=dt.date(2026, 12, 31))
    amr = {"authority_uscc": DEPT["amr"], "source_dept_uscc": DEPT["amr"], "_dept": "amr"}
    put_silver(settings, "credit.penalty", [
        # 9-30, (10-01..07 holiday), 10-08, 10-09, Sat 10-10 (make-up day), 10-12, 10-13, 10-14 → 7th
        ee_penalty("P1", dt.date(2026, 9, 29), submitted_at=dt.datetime(2026, 10, 14, 18, 0)),
        ee_penalty("P2", dt.date(2026, 9, 30), submitted_at=dt.datetime(2026, 10, 16, 9, 0)),       # due 10-15
        # 10-10 (Saturday, working), 10-12 … 10-16, 10-19 → 7th; no 报送时间: received 10-19 17:00 UTC is
        # 10-20 01:00 in Shanghai → late
        ee_penalty("P3", dt.date(2026, 10, 9), submitted_at=None),
        # market regulation counts 20 working days: … 10-30 is the 19th, 11-02 the 20th
        ee_penalty("P4", dt.date(2026, 9, 29), submitted_at=dt.datetime(2026, 11, 2, 9, 0), **amr),
        # 12-25, 12-28 … 12-31, 2027-01-01 (no calendar: Friday counted), 01-04 → provisional
        ee_penalty("P5", dt.date(2026, 12, 24), submitted_at=dt.datetime(2026, 12, 30, 9, 0)),
    ])
    put_silver(settings, "credit.penalty", [ee_penalty("P3", dt.date(2026, 10, 9), submitted_at=None)],
               batch="b2", received=dt.datetime(2026, 10, 19, 17, 0, tzinfo=dt.UTC))
    put_silver(settings, "amr.enterprise", [])
    build_gold(settings=settings, run_id="g")
    build_credit(settings=settings, run_id="c")
    got = {no: (r["deadline_date"], r["deadline_provisional"], r["on_time"])
           for no, r in rows(settings, "penalty_record", "decision_no").items()}
    assert got == {
        "P1": (dt.date(2026, 10, 14), False, True),
        "P2": (dt.date(2026, 10, 15), False, False),
        "P3": (dt.date(2026, 10, 19), False, False),
        "P4": (dt.date(2026, 11, 2), False, True),
        "P5": (dt.date(2027, 1, 4), True, True),
    }
    published = rows(settings, "penalty_publication", "decision_no")
    assert published["P5"]["deadline_date"] == dt.date(2027, 1, 4) and published["P5"]["deadline_provisional"]


def copy_catalog(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the catalog folder in ``tmp_path`` whose credit_rules.yml has ``old`` replaced by ``new``."""
    catalog = tmp_path / "catalog"
    src = Settings(var=tmp_path).catalog_dir
    for path in src.rglob("*.yml"):
        target = catalog / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = path.read_text(encoding="utf-8")
        if path.name == "credit_rules.yml":
            assert old in text
            text = text.replace(old, new)
        target.write_text(text, encoding="utf-8")
    return catalog


def test_a_holiday_file_settles_2027(tmp_path):
    catalog = copy_catalog(tmp_path, "holiday_file: null", "holiday_file: holidays.yml")
    (catalog / "holidays.yml").write_text("2027:\n  holidays: [2027-01-01]\n", encoding="utf-8")
    settings = Settings(var=tmp_path / "var", catalog_dir=catalog, as_of=dt.date(2026, 12, 31))
    put_silver(settings, "credit.penalty", [ee_penalty("P5", dt.date(2026, 12, 24))])
    put_silver(settings, "amr.enterprise", [])
    build_gold(settings=settings, run_id="g")
    build_credit(settings=settings, run_id="c")
    record = rows(settings, "penalty_record", "decision_no")["P5"]
    # 2027-01-01 is a holiday per the file: 12-25, 28, 29, 30, 31, 01-04, 01-05 → settled, not provisional
    assert (record["deadline_date"], record["deadline_provisional"]) == (dt.date(2027, 1, 5), False)


def test_a_department_code_missing_from_the_catalog_is_an_error_with_file_and_line(tmp_path):
    from govlake.catalog import CatalogError
    from govlake.credit import load_credit_rules

    catalog = copy_catalog(tmp_path, "    amr: 20 ", "    amrr: 20 ")
    text = (catalog / "credit_rules.yml").read_text(encoding="utf-8").replace(
        "warning_only_not_published_by: [amr]", "warning_only_not_published_by: [amr, ae]")
    (catalog / "credit_rules.yml").write_text(text, encoding="utf-8")
    lines = text.splitlines()
    typo = next(n for n, line in enumerate(lines, 1) if "amrr: 20" in line)
    warning = next(n for n, line in enumerate(lines, 1) if "[amr, ae]" in line)
    with pytest.raises(CatalogError) as err:
        load_credit_rules(catalog)
    path = catalog / "credit_rules.yml"
    # file:line:column: the column is where the value starts; the line is what this test pins
    assert [re.sub(r"(\.yml:\d+):\d+:", r"\1:", p.split(" (departments.yml")[0]) for p in err.value.problems] == [
        f"{path}:{typo}: deadline.by_department.amrr: unknown department 'amrr'",
        f"{path}:{warning}: publicity.warning_only_not_published_by.1: unknown department 'ae'"]


# ---- publicity lifecycle, repair, withdrawal, profile ----------------------------------------------

AMR = [
    {"uscc": E1, "name": "济南甲有限公司", "legal_rep": "张三", "legal_rep_id": PERSON_ID, "reg_capital": Decimal(100),
     "established": dt.date(2015, 3, 1), "address": "山东省济南市历下区泉城路1号", "region_code": "370102",
     "industry_code": "F5211", "status": "存续", "updated_at": dt.datetime(2026, 1, 1, 9, 0)},
    {"uscc": E2, "name": "济南乙商贸有限公司", "legal_rep": "李四", "reg_capital": Decimal(50),
     "established": dt.date(2018, 6, 1), "address": "山东省济南市天桥区北园大街2号", "region_code": "370105",
     "industry_code": "F5123", "status": "吊销", "updated_at": dt.datetime(2026, 1, 1, 9, 0)},
]
TAX = [{"uscc": E1, "name": "济南甲有限公司", "year": 2025, "rating": "A"},
       {"uscc": E2, "name": "济南乙商贸有限公司", "year": 2025, "rating": "D"}]
HRSS = [{"uscc": E1, "name": "济南甲有限公司", "period": "202610", "insured_count": 10, "due_amount": Decimal(5000),
         "paid_amount": Decimal(5000), "arrears": Decimal(0)},
        {"uscc": E2, "name": "济南乙商贸有限公司", "period": "202610", "insured_count": 3, "due_amount": Decimal(900),
         "paid_amount": Decimal(400), "arrears": Decimal(500)}]
COURT = [{"case_no": "（2026）鲁0102执1号", "subject_name": "济南乙商贸有限公司", "subject_type": "法人及非法人组织",
          "uscc": E2, "court_name": "济南市历下区人民法院", "filing_date": dt.date(2026, 2, 1),
          "published_date": dt.date(2026, 5, 1), "circumstance": "有履行能力而拒不履行", "performance": "全部未履行"},
         {"case_no": "（2025）鲁0102执9号", "subject_name": "济南甲有限公司", "subject_type": "法人及非法人组织",
          "uscc": E1, "court_name": "济南市历下区人民法院", "filing_date": dt.date(2025, 2, 1),
          "published_date": dt.date(2025, 5, 1), "circumstance": "有履行能力而拒不履行", "performance": "已履行",
          "removed_date": dt.date(2025, 12, 1)}]
PENALTIES = [
    # 一般, decided 2025-11-01: published until 2026-11-01 (12 months) → expires before day 2
    ee_penalty("Q1", dt.date(2025, 11, 1), fine_amount=Decimal(2)),
    # 严重 (吊销许可证件): repair allowed from 2026-09-10 (6 months)
    ee_penalty("Q2", dt.date(2026, 3, 10), penalty_category="吊销许可证件", fine_amount=None,
               licence_revoked="食品经营许可证 JY123"),
    # 一般, decided 2026-01-15: repair allowed from 2026-04-15
    ee_penalty("Q3", dt.date(2026, 1, 15), fine_amount=Decimal(3)),
    # revoked on day 2
    ee_penalty("Q4", dt.date(2026, 6, 1)),
    # 严重 by its fine (150 万元 ≥ 100), decided under ndrc-2026: repair allowed from 2027-08-01 (12 months)
    ee_penalty("Q5", dt.date(2026, 8, 1), uscc=E2, subject_name="济南乙商贸有限公司", fine_amount=Decimal(150)),
    # market regulation does not publish a warning-only decision (and under ndrc-2026 it is 轻微: not published)
    ee_penalty("Q6", dt.date(2026, 9, 1), penalty_category="警告", fine_amount=None, authority_uscc=DEPT["amr"],
               source_dept_uscc=DEPT["amr"], _dept="amr"),
]


def repair(no: str, on: dt.date, uscc: str = E1) -> dict:
    return {"uscc": uscc, "subject_name": "济南甲有限公司", "decision_no": no, "repair_date": on,
            "repair_authority": "济南市生态环境局"}


@pytest.fixture
def lake(tmp_path):
    settings = Settings(var=tmp_path / "var")
    for code, data in (("amr.enterprise", AMR), ("tax.credit_rating", TAX), ("hrss.social_insurance", HRSS),
                       ("court.dishonest", COURT), ("credit.penalty", PENALTIES),
                       ("credit.license", [_license("L1", uscc=E1), _license("L2", uscc=E1)])):
        put_silver(settings, code, data)
    put_silver(settings, "credit.repair", [repair("Q2", dt.date(2026, 8, 1))])     # before 2026-09-10
    day1 = run_day(settings, dt.date(2026, 10, 20), "day1")
    # day 2: a repair after the minimum, a repair of no known decision, a revocation
    put_silver(settings, "credit.repair", [repair("Q3", dt.date(2026, 11, 10)), repair("Q9", dt.date(2026, 11, 1))],
               batch="b2")
    put_silver(settings, "credit.penalty", [ee_penalty("Q4", dt.date(2026, 6, 1), status="无效")], batch="b2")
    day2 = run_day(settings, dt.date(2026, 11, 20), "day2")
    return settings, day1, day2


@pytest.mark.slow
def test_day_one_publishes_all_but_the_warning(lake):
    settings, day1, _ = lake
    assert day1.rebuilt and day1.tables["penalty_record"] == 6
    records = rows(settings, "penalty_record", "decision_no")
    assert {no: (r["severity"], r["min_publish_end"], r["max_publish_end"]) for no, r in records.items()} == {
        "Q1": ("一般", dt.date(2026, 2, 1), dt.date(2026, 11, 1)),
        "Q2": ("严重", dt.date(2026, 9, 10), dt.date(2029, 3, 10)),
        "Q3": ("一般", dt.date(2026, 4, 15), dt.date(2027, 1, 15)),
        "Q4": ("一般", dt.date(2026, 9, 1), dt.date(2027, 6, 1)),
        # decided from 2026-04-01 (ndrc-2026): 严重 at least 12 months; warning only → 轻微, at most 3 months
        "Q5": ("严重", dt.date(2027, 8, 1), dt.date(2029, 8, 1)),
        "Q6": ("轻微", dt.date(2026, 9, 1), dt.date(2026, 12, 1)),
    }


@pytest.mark.slow
def test_a_repair_before_the_minimum_is_refused_with_its_reason(lake):
    settings, _, _ = lake
    review = rows(settings, "credit_repair_review", "decision_no")
    assert review["Q2"]["outcome"] == "rejected"
    assert review["Q2"]["reason_zh"] == "修复日期2026-08-01早于最短公示期满日2026-09-10（严重失信）"
    assert "before the minimum publicity period ends on 2026-09-10" in review["Q2"]["reason_en"]
    assert "Q2" in rows(settings, "penalty_publication", "decision_no")
    assert (review["Q9"]["outcome"], review["Q9"]["reason_en"]) == ("rejected",
                                                                    "no such penalty decision for this enterprise")
    assert review["Q3"]["outcome"] == "accepted"


@pytest.mark.slow
def test_expired_repaired_and_revoked_records_leave_every_public_output(lake):
    settings, _, day2 = lake
    assert set(rows(settings, "penalty_publication", "decision_no")) == {"Q2", "Q5"}
    with duckdb.connect(str(settings.extracts / "analyst.duckdb"), read_only=True) as con:
        assert {r[0] for r in con.execute("select decision_no from penalty_publication").fetchall()} == {"Q2", "Q5"}
    records = rows(settings, "penalty_record", "decision_no")
    assert {no: r["publicity_status"] for no, r in records.items()} == {
        "Q1": "已到期", "Q2": "公示中", "Q3": "已修复", "Q4": "已撤销", "Q5": "公示中", "Q6": "不予公示"}
    assert (records["Q3"]["repaired_on"], records["Q3"]["publish_end"]) == (dt.date(2026, 11, 10),
                                                                           dt.date(2026, 11, 10))
    log = storage.open_table(storage.table_path(settings, "gold", "withdrawal_log")).to_pyarrow_table().to_pylist()
    got = sorted((r["output"], r["decision_no"], r["reason"], r["effective_date"], r["run_id"]) for r in log)
    expected = []
    for output in ("extract/analyst.duckdb:penalty_publication", "gold/penalty_publication"):
        expected += [(output, "Q1", "expired", dt.date(2026, 11, 1), "day2"),
                     (output, "Q3", "repaired", dt.date(2026, 11, 10), "day2"),
                     (output, "Q4", "revoked", dt.date(2026, 11, 20), "day2")]
    assert got == sorted(expected)
    assert day2.withdrawn == {"expired": 1, "repaired": 1, "revoked": 1}


@pytest.mark.slow
def test_day_two_rederives_only_what_changed(lake):
    _, _, day2 = lake
    assert not day2.rebuilt
    # Q4 (resubmitted), Q1 (due to expire) and Q3 (repaired); not Q2, Q5, Q6
    assert day2.rederived["penalty_record"] == 3
    # the two new repair applications
    assert day2.rederived["credit_repair_review"] == 2
    # only E1's profile: every touched record names E1
    assert day2.rederived["enterprise_credit_profile"] == 1


def _start(root: Path) -> Settings:
    """A lake at ``root`` after day 1 (the hand-made silver, every step run), with day 2's silver rows."""
    settings = Settings(var=root)
    for code, data in (("amr.enterprise", AMR), ("tax.credit_rating", TAX), ("hrss.social_insurance", HRSS),
                       ("court.dishonest", COURT), ("credit.penalty", PENALTIES), ("credit.license", [])):
        put_silver(settings, code, data)
    run_day(settings, dt.date(2026, 10, 20), "day1")
    # day 2: a revocation (a record merged), a new decision (appended); Q1 expires
    put_silver(settings, "credit.penalty", [ee_penalty("Q4", dt.date(2026, 6, 1), status="无效"),
                                            ee_penalty("Q7", dt.date(2026, 11, 2), fine_amount=Decimal(4))],
               batch="b2")
    return settings


def _clean_and_case(start: Settings, root: Path, day: dt.date) -> tuple[Settings, Settings]:
    """Two copies of ``start`` with gold built for ``day``; the first one's credit step run (the clean day)."""
    import shutil

    lakes = []
    for name in ("clean", "case"):
        shutil.copytree(start.var, root / name)
        lakes.append(dataclasses.replace(start, var=root / name, as_of=day))
        build_gold(settings=lakes[-1], run_id="day2")
    build_credit(settings=lakes[0], run_id="day2")
    return lakes[0], lakes[1]


@pytest.mark.slow
@pytest.mark.parametrize("label", ["credit:gold/theme/penalty_record", "credit:gold/theme/penalty_publication"])
def test_a_credit_day_killed_between_a_merge_and_its_append_is_finished_by_the_next_run(tmp_path, label):
    """The record and publication tables are clustered on publish_end: a day merges the records they hold
    within their dates' files, then appends the new ones — two commits. Killed (SIGKILL) right after the
    merge, the next run appends what is missing, once: the tables end as after one clean run."""
    import signal
    import sys

    import _forked as forked

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
    from chaos import lake_digest

    # day 2: a revocation (held: merged) and a new decision (appended)
    clean, case = _clean_and_case(_start(tmp_path / "start"), tmp_path, dt.date(2026, 11, 20))
    killed = forked.run(build_credit, settings=case, run_id="day2", env={"GOVLAKE_CRASH_AT": label})
    assert killed.returncode == -signal.SIGKILL, killed.output
    table = label.split(":")[1].split("/")[-1]
    held = rows(case, table, "decision_no")
    assert "Q4" not in held or held["Q4"]["publicity_status"] == "已撤销"   # the merge landed …
    assert "Q7" not in held                                                # … the append did not
    build_credit(settings=case, run_id="day3")                             # finishes day2, then its own
    assert lake_digest(case.var) == lake_digest(clean.var)
    assert rows(case, "penalty_record", "decision_no")["Q7"]["publicity_status"] == "公示中"


def test_the_records_leaving_a_publication_are_found_by_their_key_hashed_or_not(tmp_path):
    """A day's withdrawals are looked up in the publication by the key's hash first (_held): a row written without
    the hash is found by its key, and a row of another key that shares the hash of a record leaving is not taken
    for it (the record was never published: nothing is withdrawn). The keys are read in the publication's dates
    its hashes are found in: a row whose date no record has (Q4's, moved) is found there."""
    start = _start(tmp_path / "start")
    # a warning-only decision of market regulation: 轻微, never published
    put_silver(start, "credit.penalty", [ee_penalty("Q8", dt.date(2026, 11, 3), penalty_category="警告",
                                                    fine_amount=None, authority_uscc=DEPT["amr"],
                                                    source_dept_uscc=DEPT["amr"], _dept="amr")], batch="b3")
    clean, case = _clean_and_case(start, tmp_path, dt.date(2026, 11, 20))
    q8 = rows(clean, "penalty_record", "decision_no")["Q8"]
    assert q8["publicity_status"] == "不予公示"
    path = storage.table_path(case, "gold", "penalty_publication")
    published = storage.open_table(path).to_pyarrow_table()
    hashes = published[storage.KEY_HASH].to_pylist()
    numbers = published["decision_no"].to_pylist()
    assert None not in hashes and "Q1" in numbers
    hashes[numbers.index("Q1")] = None  # Q1, expiring on day 2, as a table written before the column holds it
    impostor = published.slice(numbers.index("Q2"), 1)
    q8_hash = duckdb.sql(f"select {storage.key_hash_sql(PENALTY.key)} from (select ? as decision_no, "
                         "? as authority_uscc)", params=[q8["decision_no"], q8["authority_uscc"]]).fetchone()[0]
    impostor = impostor.set_column(impostor.schema.get_field_index("decision_no"), "decision_no", pa.array(["QX"]))
    impostor = impostor.set_column(impostor.schema.get_field_index(storage.KEY_HASH), storage.KEY_HASH,
                                   pa.array([q8_hash], pa.int64()))
    published = published.set_column(published.schema.get_field_index(storage.KEY_HASH), storage.KEY_HASH,
                                      pa.array(hashes, pa.int64()))
    ends = published["publish_end"].to_pylist()
    ends[numbers.index("Q4")] = dt.date(2031, 6, 30)  # Q4, revoked on day 2, on a date of the publication alone
    published = published.set_column(published.schema.get_field_index("publish_end"), "publish_end",
                                      pa.array(ends, published.schema.field("publish_end").type))
    storage.write_table(path, pa.concat_tables([published, impostor]), mode="overwrite", run_id="edit")
    build_credit(settings=case, run_id="day2")

    def withdrawn(settings: Settings) -> list[tuple]:
        log = storage.open_table(storage.table_path(settings, "gold", "withdrawal_log")).to_pyarrow_table()
        return sorted((r["decision_no"], r["reason"]) for r in log.to_pylist() if r["run_id"] == "day2")

    assert withdrawn(case) == withdrawn(clean) == [("Q1", "expired"), ("Q4", "revoked")]
    assert set(rows(case, "penalty_publication", "decision_no")) == set(rows(clean, "penalty_publication",
                                                                             "decision_no")) | {"QX"}


@pytest.mark.slow
@pytest.mark.parametrize("label", ["credit:gold/theme/penalty_record", "credit:gold/theme/penalty_publication"])
def test_a_first_run_killed_after_either_table_of_its_sorted_write_is_finished_by_the_next(tmp_path, label):
    """A first run (or a rebuild) writes the record table and its publication from one sorted stream at once, each
    its own commit, in either order (_write_with_publication). Killed (SIGKILL) right after either commit, the next
    run writes what is missing (the publication from the record table's files, or the records again) and the lake
    ends as after one clean run."""
    import shutil
    import signal
    import sys

    import _forked as forked

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
    from chaos import lake_digest

    start = Settings(var=tmp_path / "start")
    for code, data in (("amr.enterprise", AMR), ("tax.credit_rating", TAX), ("hrss.social_insurance", HRSS),
                       ("court.dishonest", COURT), ("credit.penalty", PENALTIES), ("credit.license", [])):
        put_silver(start, code, data)
    clean, case = (dataclasses.replace(start, var=tmp_path / name, as_of=dt.date(2026, 10, 20))
                   for name in ("clean", "case"))
    for lake in (clean, case):
        shutil.copytree(start.var, lake.var)
        build_gold(settings=lake, run_id="day1")
    build_credit(settings=clean, run_id="day1")
    killed = forked.run(build_credit, settings=case, run_id="day1", env={"GOVLAKE_CRASH_AT": label})
    assert killed.returncode == -signal.SIGKILL, killed.output
    assert rows(case, label.split("/")[-1], "decision_no")  # the commit it was killed after landed
    build_credit(settings=case, run_id="day2")  # finishes day1, then its own (nothing new)
    assert lake_digest(case.var) == lake_digest(clean.var)
    assert rows(case, "penalty_publication", "decision_no").keys() == rows(clean, "penalty_publication",
                                                                          "decision_no").keys()


def _silver_lake(var: Path) -> Settings:
    """A lake at ``var`` holding the credit step's silver inputs: the enterprises, ratings, insurance, dishonest
    debtors, PENALTIES and one licence."""
    start = Settings(var=var)
    for code, data in (("amr.enterprise", AMR), ("tax.credit_rating", TAX), ("hrss.social_insurance", HRSS),
                       ("court.dishonest", COURT), ("credit.penalty", PENALTIES),
                       ("credit.license", [_license("L1", uscc=E1)])):
        put_silver(start, code, data)
    return start


@pytest.mark.slow
def test_a_day_with_too_many_records_to_hold_streams_them_to_the_same_tables(tmp_path, monkeypatch):
    """Beyond STREAMED_MERGE_ROWS re-derived records (a department re-sending its whole table corrected) the
    step streams them into each table, sorted by its clustering date, with their keys apart, instead of holding
    them to find their dates' files: the tables and the extract end as the usual way leaves them."""
    import shutil
    import sys

    from govlake.credit import _build

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
    from chaos import lake_digest

    start = _silver_lake(tmp_path / "start")
    run_day(start, dt.date(2026, 10, 20), "day1")
    put_silver(start, "credit.penalty", [ee_penalty("Q4", dt.date(2026, 6, 1), status="无效"),
                                         ee_penalty("Q7", dt.date(2026, 11, 2), fine_amount=Decimal(4))], batch="b2")
    lakes = {}
    for name in ("held", "streamed"):
        shutil.copytree(start.var, tmp_path / name)
        lakes[name] = dataclasses.replace(start, var=tmp_path / name)
    run_day(lakes["held"], dt.date(2026, 11, 20), "day2")
    monkeypatch.setattr(_build, "STREAMED_MERGE_ROWS", 0)
    streamed = run_day(lakes["streamed"], dt.date(2026, 11, 20), "day2")
    assert streamed.rederived["penalty_record"] == 3   # Q4, Q7 and Q1 (due): all streamed
    for name, commits in (("held", 2), ("streamed", 1)):  # one commit, no append apart
        history = storage.open_table(storage.table_path(lakes[name], "gold", "penalty_record")).history()
        assert [storage.commit_run_id(c) for c in history].count("day2") == commits, name
    assert lake_digest(lakes["streamed"].var) == lake_digest(lakes["held"].var)


@pytest.mark.slow
def test_records_sorted_in_slices_make_the_same_tables(tmp_path, monkeypatch):
    """Beyond DuckCompute.sort_rows rows (5 million at the default memory limit) the records of a first run, and of
    a streamed day, are sorted a slice of publish_end at a time (DuckDB's sort of 24.6 million records failed at its
    768 MB): the tables end as one sort leaves them, row for row, each file's publish_end range apart from the next."""
    import shutil
    import sys

    from govlake.compute import DuckCompute
    from govlake.credit import _build

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
    from chaos import lake_digest

    start = _silver_lake(tmp_path / "start")
    lakes = {}
    for name in ("one", "sliced"):
        shutil.copytree(start.var, tmp_path / name)
        lakes[name] = dataclasses.replace(start, var=tmp_path / name)
    monkeypatch.setattr(_build, "STREAMED_MERGE_ROWS", 0)
    parts = []
    ordered = DuckCompute._ordered
    monkeypatch.setattr(DuckCompute, "_ordered", lambda self, *a: parts.append(ordered(self, *a)) or parts[-1])
    for name in ("one", "sliced"):
        if name == "sliced":
            monkeypatch.setattr(DuckCompute, "SORT_ROWS", 2)
        run_day(lakes[name], dt.date(2026, 10, 20), "day1")
        for table in ("penalty_record", "penalty_publication"):  # the first run's files: rows in date order
            ends = [r["publish_end"] for r in storage.clustered_rows(
                storage.table_path(lakes[name], "gold", table), "publish_end", "select publish_end from t"
            ).read_all().to_pylist()]
            assert ends == sorted(ends, key=lambda d: (d is None, d)) and len(set(ends)) > 3, (name, table)
        put_silver(lakes[name], "credit.penalty", [ee_penalty("Q4", dt.date(2026, 6, 1), status="无效"),
                                                   ee_penalty("Q7", dt.date(2026, 11, 2), fine_amount=Decimal(4))],
                   batch="b2")
        run_day(lakes[name], dt.date(2026, 11, 20), "day2")
    assert all(isinstance(p, str) for p in parts[:len(parts) // 2])  # one sort each
    assert all(isinstance(p, list) and len(p) > 2 for p in parts[len(parts) // 2:])  # slices
    assert lake_digest(lakes["sliced"].var) == lake_digest(lakes["one"].var)


def _counted(settings: Settings) -> list[tuple]:
    """gold/penalty_totals' rows, and the same counted from gold/penalty_record as it is (sorted, nulls first)."""
    con = duckdb.connect()
    for name in ("totals", "record"):
        path = storage.table_path(settings, "gold", f"penalty_{name}")
        con.register(name, storage.open_table(path).to_pyarrow_table())
    order = "order by all nulls first"
    kept = con.execute("select uscc, penalty_category, severity, publicity_status, penalties, amount from totals "
                       + order).fetchall()
    counted = con.execute("""select uscc, penalty_category, severity, publicity_status, count(*),
        sum(coalesce(fine_amount, 0) + coalesce(confiscated_amount, 0)) from record where uscc is not null
        group by all """ + order).fetchall()
    versions = {v for (v,) in con.execute("select distinct _record_version from totals").fetchall()}
    assert versions == {storage.open_table(storage.table_path(settings, "gold", "penalty_record")).version()}
    return [kept, counted]


def _file_changes_seen(monkeypatch) -> list:
    """What storage.file_changes returns to the credit step from now on, in order (None: the totals counted in
    full)."""
    from _watch import file_changes_seen
    from govlake.credit import _build

    return file_changes_seen(monkeypatch, _build)


@pytest.mark.slow
def test_penalty_totals_count_the_record_table_from_the_files_a_day_changed(tmp_path, monkeypatch):
    """The profiles read the penalties' totals per enterprise (gold/penalty_totals), which a day brings up to
    date by counting the record files it removed out and those it added in, not by reading every penalty: the
    totals equal the record table counted whole, and name the record version they count."""
    import shutil

    settings = _start(tmp_path / "var")
    seen = _file_changes_seen(monkeypatch)
    run_day(settings, dt.date(2026, 11, 20), "day2")
    assert len(seen) == 1 and seen[0] is not None and all(seen[0])   # files removed and added: counted
    kept, counted = _counted(settings)
    assert kept == counted and sum(r[4] for r in kept) == 7
    assert {r[3] for r in kept if r[0] == E1} == {"公示中", "已到期", "已撤销", "不予公示"}
    profiles = rows(settings, "enterprise_credit_profile", "uscc")

    # the totals lost (a folder deleted by hand): the next run counts every record again, to the same profiles
    shutil.rmtree(storage.table_path(settings, "gold", "penalty_totals"))
    seen.clear()
    run_day(settings, dt.date(2026, 11, 20), "day2b")
    assert seen == []   # nothing to count from: every record counted
    assert _counted(settings)[0] == kept
    again = rows(settings, "enterprise_credit_profile", "uscc")
    assert {u: {k: v for k, v in p.items() if k != "_run_id"} for u, p in again.items()} == \
        {u: {k: v for k, v in p.items() if k != "_run_id"} for u, p in profiles.items()}


@pytest.mark.slow
@pytest.mark.parametrize("label", ["credit:gold/theme/penalty_record", "credit:gold/theme/penalty_totals"])
def test_a_credit_day_killed_before_or_after_the_totals_commit_ends_as_a_clean_day(tmp_path, monkeypatch, label):
    """Killed (SIGKILL) after the record table's commit, before the totals', the next run counts the files
    that commit changed; killed after the totals' commit, it finds them at the version they count and writes
    nothing twice. Either way the lake ends as after one clean run (its totals and profiles included)."""
    import signal
    import sys

    import _forked as forked

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
    from chaos import lake_digest

    clean, case = _clean_and_case(_start(tmp_path / "start"), tmp_path, dt.date(2026, 11, 20))
    totals = storage.table_path(case, "gold", "penalty_totals")
    counted = storage.open_table(totals).version()
    killed = forked.run(build_credit, settings=case, run_id="day2", env={"GOVLAKE_CRASH_AT": label})
    assert killed.returncode == -signal.SIGKILL, killed.output
    assert (storage.open_table(totals).version() > counted) is label.endswith("penalty_totals")
    seen = _file_changes_seen(monkeypatch)
    build_credit(settings=case, run_id="day3")   # finishes day2, then its own
    if label.endswith("penalty_record"):
        assert len(seen) == 1 and seen[0] is not None and all(seen[0])   # the record commit's files, counted
    else:
        assert seen == []   # day2's totals found written: day2's replay and day3 count nothing
    assert lake_digest(case.var) == lake_digest(clean.var)
    kept, counted = _counted(case)
    assert kept == counted



def test_profiles_and_scores_equal_hand_computed_values(lake):
    settings, _, _ = lake
    profiles = rows(settings, "enterprise_credit_profile", "uscc")
    e1, e2 = profiles[E1], profiles[E2]
    # E1: Q2 published 严重; Q1 expired + Q3 repaired = 2 past; Q4 revoked; Q6 not published (轻微, not counted)
    assert (e1["published_serious_count"], e1["published_general_count"], e1["past_penalty_count"],
            e1["revoked_penalty_count"], e1["repaired_penalty_count"]) == (1, 0, 2, 1, 1)
    assert (e1["published_penalty_amount"], e1["past_penalty_amount"]) == (Decimal(0), Decimal(5))  # 2 + 3
    assert (e1["valid_license_count"], e1["court_dishonest"], e1["tax_rating"]) == (2, False, "A")
    # 800 − 150 (1 serious) − 10 (2 past × 5) + 80 (tax A) + 10 (2 licences × 5) = 730 → C (600 ≤ 730 < 750)
    assert (e1["credit_score"], e1["credit_grade"]) == (730, "C")
    assert [(f["factor"], f["points"]) for f in e1["score_factors"]] == [
        ("published_serious_penalties", -150), ("past_penalties", -10), ("tax_rating", 80), ("valid_licenses", 10)]
    # E2: 800 − 150 (Q5 serious) − 300 (court) − 200 (tax D) − 80 (arrears) − 200 (吊销) = −130 → floor 0 → D
    assert (e2["credit_score"], e2["credit_grade"], e2["court_dishonest"]) == (0, "D", True)
    assert {f["factor"]: f["points"] for f in e2["score_factors"]} == {
        "published_serious_penalties": -150, "court_dishonest": -300, "tax_rating": -200,
        "social_insurance_arrears": -80, "registration_status": -200}
    assert e2["penalties_by_category"] == [{"category": "罚款", "severity": "严重", "published_count": 1,
                                           "past_count": 0, "published_amount": Decimal(150),
                                           "past_amount": Decimal(0)}]


def test_the_extract_masks_the_profile(lake):
    settings, _, _ = lake
    with duckdb.connect(str(settings.extracts / "analyst.duckdb"), read_only=True) as con:
        legal_rep = con.execute("select legal_rep from enterprise_credit_profile where uscc = ?", [E1]).fetchone()[0]
        cells = [str(v) for row in con.execute("select * from enterprise_credit_profile").fetchall() for v in row]
    assert legal_rep == "张*"
    assert not any(PERSON_ID in c for c in cells)


# ---- KPIs -------------------------------------------------------------------------------------------

def test_compliance_and_timeliness_equal_hand_computed_values(tmp_path):
    settings = Settings(var=tmp_path / "var", as_of=dt.date(2026, 11, 20))
    amr = {"authority_uscc": DEPT["amr"], "source_dept_uscc": DEPT["amr"], "_dept": "amr"}
    put_silver(settings, "credit.penalty", [
        # ee, decided in October: deadlines 10-14 (P1), 10-15 (P2); decided 10-09 → 10-19 (P3)
        ee_penalty("P1", dt.date(2026, 9, 29), submitted_at=dt.datetime(2026, 10, 14, 9, 0)),   # Sep, on time
        ee_penalty("P2", dt.date(2026, 10, 9), submitted_at=dt.datetime(2026, 10, 19, 9, 0)),   # Oct, on time
        ee_penalty("P3", dt.date(2026, 10, 9), submitted_at=dt.datetime(2026, 10, 20, 9, 0)),   # Oct, late
        ee_penalty("P4", dt.date(2026, 10, 12), submitted_at=dt.datetime(2026, 10, 13, 9, 0)),  # Oct, on time
        # amr, 20 working days from 10-09: Sat 10-10, 10-12…16, 10-19…23, 10-26…30 (16), 11-02…05 → 11-05
        ee_penalty("P5", dt.date(2026, 10, 9), submitted_at=dt.datetime(2026, 11, 5, 20, 0), **amr),  # on time
    ])
    put_silver(settings, "credit.license", [
        _license("L1", decision_date=dt.date(2026, 10, 9), submitted_at=dt.datetime(2026, 11, 9, 9, 0)),  # amr late
    ])
    # two quarantined ee rows submitted in October, one in November, and one whose department is unknown
    res = get_catalog(settings.catalog_dir).resource("credit.penalty")
    quarantine = pa.table({
        "decision_no": ["X1", "X2", "X3", "X4"],
        "_dept": ["ee", "ee", "ee", None],
        "_submitted_at": [dt.datetime(2026, 10, 2), dt.datetime(2026, 10, 30), dt.datetime(2026, 11, 2),
                          dt.datetime(2026, 10, 5)],
        "_failed_rules": [["code.penalty_category"]] * 4,
    })
    storage.write_table(storage.table_path(settings, "quarantine", res.slug), quarantine, mode="append", run_id="q")
    put_silver(settings, "amr.enterprise", [])
    build_gold(settings=settings, run_id="g")
    build_credit(settings=settings, run_id="c")
    kpis = {k.id: k for k in credit_kpis(settings)}

    compliance = {(v.scope, v.period): (v.numerator, v.denominator) for v in kpis["credit.compliance_rate"].values}
    # submissions in October: ee P1, P2, P3, P4 pass + X1, X2 fail → 4/6; amr none; unknown X4 → 0/1
    assert compliance[("ee", "2026-10")] == (4, 6)
    assert compliance[("未识别", "2026-10")] == (0, 1)
    # November: ee X3 fails → 0/1; amr P5 and L1 pass → 2/2; all → 2/3
    assert compliance[("ee", "2026-11")] == (0, 1)
    assert compliance[("amr", "2026-11")] == (2, 2)
    assert compliance[("all", "2026-10")] == (4, 7) and compliance[("all", "2026-11")] == (2, 3)

    timeliness = {(v.scope, v.period): (v.numerator, v.denominator) for v in kpis["credit.timeliness_rate"].values}
    assert timeliness[("ee", "2026-09")] == (1, 1)
    assert timeliness[("ee", "2026-10")] == (2, 3)              # P3 late
    assert timeliness[("amr", "2026-10")] == (1, 2)             # P5 on time (11-05), L1 late (11-09)
    assert timeliness[("all", "2026-10")] == (3, 5)
    k = dataclasses.replace(kpis["credit.timeliness_rate"]).with_target_status()
    assert k.below_target("2026-10") == ["amr", "ee"]
    assert k.below_target("2026-09") == []


OTHER_DEPT = "11370100MB0000120" + uscc_check_char("11370100MB0000120")
"""A submitting department (and authority) that catalog/departments.yml does not list."""


def test_a_department_missing_from_the_catalog_gets_the_default_deadline_and_counts_as_unknown(
        tmp_path, monkeypatch):
    settings = Settings(var=tmp_path / "var", as_of=dt.date(2026, 11, 20))
    other = {"authority": "济南市某新设机构", "authority_uscc": OTHER_DEPT, "source_dept": "济南市某新设机构",
             "source_dept_uscc": OTHER_DEPT, "_dept": None}
    put_silver(settings, "credit.penalty", [
        # default 7 working days from 10-09: Sat 10-10 (make-up day), 10-12 … 10-16, 10-19 → 10-19
        ee_penalty("U1", dt.date(2026, 10, 9), submitted_at=dt.datetime(2026, 10, 19, 9, 0), **other),  # on time
        # from 10-12: 10-13 … 10-16, 10-19, 10-20, 10-21 → 10-21
        ee_penalty("U2", dt.date(2026, 10, 12), submitted_at=dt.datetime(2026, 10, 22, 9, 0), **other),  # late
        ee_penalty("P1", dt.date(2026, 10, 9), submitted_at=dt.datetime(2026, 10, 19, 9, 0)),             # ee, on time
    ])
    put_silver(settings, "credit.license", [
        # market regulation's own code would give 20 days; an unknown submitter gets 7: due 10-19, sent 10-20
        _license("UL1", decision_date=dt.date(2026, 10, 9), submitted_at=dt.datetime(2026, 10, 20, 9, 0),
                 **other | {"authority_uscc": DEPT["amr"]}),
    ])
    put_silver(settings, "amr.enterprise", [])
    build_gold(settings=settings, run_id="g")
    build_credit(settings=settings, run_id="c")

    penalties = {no: (r["_dept"], r["dept_unknown"], r["deadline_date"], r["on_time"])
                 for no, r in rows(settings, "penalty_record", "decision_no").items()}
    assert penalties == {"U1": (None, True, dt.date(2026, 10, 19), True),
                         "U2": (None, True, dt.date(2026, 10, 21), False),
                         "P1": ("ee", False, dt.date(2026, 10, 19), True)}
    licence = rows(settings, "license_record", "doc_no")["UL1"]
    assert (licence["dept_unknown"], licence["deadline_date"], licence["on_time"]) == (
        True, dt.date(2026, 10, 19), False)

    kpis = {k.id: k for k in credit_kpis(settings)}
    timeliness = {(v.scope, v.period): (v.numerator, v.denominator) for v in kpis["credit.timeliness_rate"].values}
    # October: unknown U1 on time, U2 and UL1 late → 1/3; ee P1 → 1/1; all 2/4
    assert timeliness == {("未识别", "2026-10"): (1, 3), ("ee", "2026-10"): (1, 1), ("all", "2026-10"): (2, 4)}
    compliance = {(v.scope, v.period): (v.numerator, v.denominator) for v in kpis["credit.compliance_rate"].values}
    # every record reached silver; submitted in October; one 'all' figure, not one per unresolved row
    assert compliance == {("未识别", "2026-10"): (3, 3), ("ee", "2026-10"): (1, 1), ("all", "2026-10"): (4, 4)}

    from typer.testing import CliRunner

    from govlake.cli import app

    monkeypatch.setenv("GOVLAKE_VAR", str(settings.var))
    monkeypatch.setenv("GOVLAKE_AS_OF", "2026-11-20")
    result = CliRunner().invoke(app, ["kpi", "--json"])
    assert result.exit_code == 0, result.output
    doc = {k["id"]: k for k in json.loads(result.output)["kpis"]}["credit.timeliness_rate"]
    unknown = [v for v in doc["values"] if v["scope"] == "未识别"]
    assert [(v["period"], v["numerator"], v["denominator"], v["meets_target"]) for v in unknown] == [
        ("2026-10", 1, 3, False)]
    assert unknown[0]["value"] == pytest.approx(1 / 3)
    assert doc["below_target"] == ["未识别"]   # ee 100%; 'all' is not a department


def test_the_documented_score_matches_the_configuration():
    from govlake.credit import load_credit_rules

    rules = load_credit_rules(Settings(var=Path(".")).catalog_dir)
    doc = (Path(__file__).resolve().parents[1] / "docs" / "credit.md").read_text(encoding="utf-8")
    for factor in rules.score.factors:
        assert f"`{factor.id}`" in doc, factor.id
    assert f"`score.base` ({rules.score.base:g})" in doc
    assert ", ".join(f"{g} ≥ {low:g}" for g, low in rules.score.bands.items()) in doc


@pytest.mark.parametrize("name", ["penalty_record", "license_record", "credit_repair_review",
                                  "enterprise_credit_profile"])
def test_credit_models_have_a_header(name):
    """(The models' Spark parity: tests/test_spark_parity.py.)"""
    from govlake.credit import load_credit_rules, render
    from govlake.transform import model_header

    settings = Settings(var=Path("."))
    sql = render(settings, name, load_credit_rules(settings.catalog_dir), dt.date(2026, 11, 20))
    header = model_header(sql)
    assert header.grain.startswith("one row per") and header.unique and header.not_null and header.owner
    assert sql.rstrip().splitlines()[-1].startswith("select * from ")


@pytest.mark.parametrize("kind", ["penalty", "license"])
def test_the_record_models_compute_every_record_as_it_is_read(kind):
    """No CTE of a record model is materialized by DuckDB: one read twice (penalty_record's periods) would hold
    every record, all its columns, in memory and the spill before the rest read them (10 million penalty records:
    the model took 15.0 s so, 6.2 s without)."""
    from govlake.credit import KINDS, load_credit_rules, render
    from govlake.transform import model_inputs

    k = {k.name: k for k in KINDS}[kind]
    settings = Settings(var=Path("."))
    catalog = get_catalog(settings.catalog_dir)
    sql = render(settings, k.record, load_credit_rules(settings.catalog_dir), dt.date(2026, 11, 20))
    con = duckdb.connect()
    schemas = {f"silver_{r.slug}": silver_schema(r) for r in catalog.resources.values()}
    schemas[f"{k.name}_input"] = silver_schema(catalog.resource(k.resource))
    schemas["ref_deadline"] = pa.schema([("decision_date", pa.date32()), ("dept", pa.string()),
                                         ("deadline_date", pa.date32()), ("deadline_provisional", pa.bool_())])
    for name in model_inputs(sql):
        con.register(name, schemas[name].empty_table())
    plan = con.sql(f"explain {sql}").fetchall()[0][1]
    assert "CTE Name" not in plan


@pytest.mark.parametrize("kind", ["penalty", "license"])
def test_record_kinds_agree_with_the_catalog_and_their_models(kind):
    from govlake.credit import KINDS, load_credit_rules, render
    from govlake.transform import model_header

    k = {k.name: k for k in KINDS}[kind]
    settings = Settings(var=Path("."))
    header = model_header(render(settings, k.record, load_credit_rules(settings.catalog_dir), dt.date(2026, 11, 20)))
    assert k.key == tuple(get_catalog(settings.catalog_dir).resource(k.resource).key) == header.key
