"""The two credit-lifecycle input feeds end to end on a small generated city: credit.repair
(信用修复 CSVs) and court.dishonest (失信被执行人 JSON lines), generated, ingested and processed
through govlake.pipeline like every other feed.

Every input row lands in exactly one of silver, quarantine or "dropped as duplicate"; the
quarantine holds exactly the manifest's invalid rows; repairs refer to penalties that are in
silver (with the decision date the manifest records) or, for unknown decisions, to none; the
enterprises silver shows as currently listed are the manifest's. A repair file with only the four
columns that define the feed (hand-made CSV, xlsx and JSON lines) is reviewed end to end.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
from deltalake import DeltaTable

from govlake import pipeline
from govlake.config import Settings
from govlake.generate import REPAIR_OUTCOMES, Manifest, generate_city, plan_rows
from govlake.identifiers import is_valid_id_number, is_valid_uscc
from test_gold import DEPT, E1, E2, E3, PERSON_ID

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AS_OF = dt.date(2026, 11, 20)
SCALE, SEED, RATE = 600, 5, 0.05
REPAIRS, COURT = 60, 40
FEEDS = ("credit.repair", "court.dishonest")


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> tuple[Settings, dict[str, Manifest], dict]:
    """A 600-row city, then 60 repairs and 40 court entries written on their own (``only``, the same
    arguments, so repairs refer to this city's penalties) at a defect rate high enough for the
    kinds to show; penalties and both feeds processed."""
    root = tmp_path_factory.mktemp("credit-feeds")
    settings = Settings(var=root / "var", inbox=root / "inbox", as_of=AS_OF)
    manifests = {"city": generate_city(settings.city, scale=SCALE, seed=SEED, as_of=AS_OF, defect_rate=RATE)}
    for code, rows in (("credit.repair", REPAIRS), ("court.dishonest", COURT)):
        manifests[code] = generate_city(settings.city, scale=SCALE, seed=SEED, as_of=AS_OF, defect_rate=RATE,
                                        only=code, rows=rows)
    results = {}
    for code in ("credit.penalty", *FEEDS):
        pipeline.ingest(code, settings=settings, run_id="cf-ingest")
        results[code] = pipeline.process(code, settings=settings, run_id="cf-1")
    return settings, manifests, results


def _rows(settings: Settings, layer: str, slug: str) -> list[dict]:
    path = settings.table_path(layer, slug)
    return DeltaTable(str(path)).to_pyarrow_table().to_pylist() if (path / "_delta_log").exists() else []


def _pairs(rows: list[dict]) -> list[tuple[str, int]]:
    return [(Path(r["_source"]).name, r["_row_number"]) for r in rows]


@pytest.mark.parametrize("code", FEEDS)
def test_every_row_lands_in_exactly_one_place(city, code):
    settings, manifests, results = city
    info = manifests[code].resources[code]
    slug = code.replace(".", "_")
    everything = {(Path(f.path).name, n) for f in info.files for n in range(1, f.rows + 1)}
    silver, quarantine = _pairs(_rows(settings, "silver", slug)), _pairs(_rows(settings, "quarantine", slug))
    assert len(set(silver)) == len(silver) and len(set(quarantine)) == len(quarantine)
    assert not set(silver) & set(quarantine)
    dropped = everything - set(silver) - set(quarantine)
    assert set(silver) | set(quarantine) <= everything
    assert len(dropped) == info.defects.get("duplicate", 0)
    r = results[code]
    assert r.rows_read == info.rows == (REPAIRS if code == "credit.repair" else COURT)
    assert (r.silver, r.quarantined, r.duplicates) == (len(silver), len(quarantine), len(dropped))


@pytest.mark.parametrize("code", FEEDS)
def test_quarantine_is_exactly_the_invalid_injected_rows(city, code):
    settings, manifests, results = city
    manifest = manifests[code]
    expected = {(Path(rec.file).name, rec.row_number) for rec in manifest.invalid_records(code)}
    got = set(_pairs(_rows(settings, "quarantine", code.replace(".", "_"))))
    assert expected, "the test city must inject invalid rows"
    assert got == expected
    assert results[code].quarantined == manifest.resources[code].invalid_rows == len(expected)


def test_generated_defects_cover_the_row_kinds_and_the_cross_field_rules_catch_theirs(city):
    _settings, manifests, results = city
    repair = manifests["credit.repair"].resources["credit.repair"].defects
    court = manifests["court.dishonest"].resources["court.dishonest"].defects
    assert {"cross_field", "duplicate", "uscc_check", "blank_required", "future_date"} <= set(repair) & set(court)
    # each injected cross-field break fails the feed's own rule (expectations/<resource>.yml), and only those
    assert results["credit.repair"].rule_failures.get("CR.submitted_after_repair") == repair["cross_field"]
    assert results["court.dishonest"].rule_failures.get("CD.filed_before_published") == court["cross_field"]
    assert "CD.removed_after_published" not in results["court.dishonest"].rule_failures
    repair, court = set(repair), set(court)
    assert repair <= {"uscc_check", "full_width", "date_format", "blank_required", "whitespace", "cross_field",
                      "future_date", "duplicate"}
    assert court <= {"uscc_check", "id_check", "full_width", "date_format", "blank_required", "unknown_code",
                     "code_synonym", "whitespace", "cross_field", "future_date", "duplicate"}


def test_repair_outcomes_cover_the_three_kinds_with_their_dates(city):
    _settings, manifests, _ = city
    manifest = manifests["credit.repair"]
    repairs = manifest.repairs
    assert len(repairs) == REPAIRS
    counts = Counter(r.outcome for r in repairs)
    # 60 rows: 20% too early (12), 10% unknown (6), the rest accepted (42)
    assert dict(counts) == manifest.resources["credit.repair"].outcomes == {
        "accepted": 42, "too_early": 12, "unknown_decision": 6}
    assert set(counts) == set(REPAIR_OUTCOMES)
    invalid = {(rec.file, rec.row_number) for rec in manifest.invalid_records("credit.repair")}
    for r in repairs:
        assert (r.decision_date is None) == (r.outcome == "unknown_decision"), r
        if (r.file, r.row_number) in invalid:  # e.g. a future repair date: quarantined, never judged
            continue
        repaired = dt.date.fromisoformat(r.repair_date)
        assert repaired < AS_OF, r
        if r.outcome != "unknown_decision":
            days = (repaired - dt.date.fromisoformat(r.decision_date)).days
            # accepted: after 6 months (严重 minimum), within a year (一般 maximum); too early: before 3 months
            assert (190 <= days <= 360) if r.outcome == "accepted" else (7 <= days <= 80), r


def test_repairs_refer_to_penalties_in_silver(city):
    settings, manifests, _ = city
    penalties = {(p["uscc"], p["decision_no"]): p["decision_date"]
                 for p in _rows(settings, "silver", "credit_penalty")}
    decision_numbers = {no for _u, no in penalties}
    repairs = manifests["credit.repair"].repairs
    for r in repairs:
        if r.outcome == "unknown_decision":
            assert r.decision_no not in decision_numbers, r
            assert is_valid_uscc(r.uscc)
        else:
            assert penalties.get((r.uscc, r.decision_no)) == dt.date.fromisoformat(r.decision_date), r
    assert len({(r.uscc, r.decision_no) for r in repairs}) == REPAIRS - Counter(
        rec.defect_kind for rec in manifests["credit.repair"].records)["duplicate"]
    # silver carries each valid repair with the key and date the manifest records
    silver = {(r["uscc"], r["decision_no"]): r["repair_date"] for r in _rows(settings, "silver", "credit_repair")}
    invalid = {(rec.file, rec.row_number) for rec in manifests["credit.repair"].invalid_records("credit.repair")}
    expected = {(r.uscc, r.decision_no): dt.date.fromisoformat(r.repair_date)
                for r in repairs if (r.file, r.row_number) not in invalid}
    assert silver == expected


def test_provincial_platform_leaves_out_the_optional_columns(city):
    settings, manifests, _ = city
    files = {Path(f.path).name: f for f in manifests["credit.repair"].resources["credit.repair"].files}
    assert set(files) == {"xyzg_20261120.csv", "xysd_20261120.csv"}
    assert files["xysd_20261120.csv"].encoding == "gbk"
    assert "处罚机关统一社会信用代码" not in files["xysd_20261120.csv"].columns
    assert "报送时间" in files["xyzg_20261120.csv"].columns
    silver = _rows(settings, "silver", "credit_repair")
    provincial = [r for r in silver if r["_source"].endswith("xysd_20261120.csv")]
    assert provincial and all(r["authority_uscc"] is None and r["submitted_at"] is None for r in provincial)


def test_court_listing_flags_in_silver_match_the_manifest(city):
    settings, manifests, _ = city
    manifest = manifests["court.dishonest"]
    silver = _rows(settings, "silver", "court_dishonest")
    listed = {r["uscc"] for r in silver if r["uscc"] and r["removed_date"] is None}
    assert listed == set(manifest.dishonest_listed)
    assert listed, "some enterprises must be listed"
    removed = {r["uscc"] for r in silver if r["uscc"] and r["removed_date"] is not None}
    assert removed, "some entries must have been removed"
    persons = [r for r in silver if r["subject_type"] == "自然人"]
    assert persons and all(r["uscc"] is None and is_valid_id_number(r["id_no"]) for r in persons)
    assert all(r["published_date"] <= AS_OF and (r["filing_date"] <= r["published_date"]) for r in silver)
    outcomes = manifest.resources["court.dishonest"].outcomes
    assert sum(outcomes.values()) == COURT and set(outcomes) == {"listed", "removed"}


def test_court_entries_name_registry_enterprises(city):
    settings, manifests, _ = city
    from govlake.generate import enterprise_rows

    registry = {r["uscc"] for r in enterprise_rows(scale=SCALE, seed=SEED, as_of=AS_OF)}
    silver = _rows(settings, "silver", "court_dishonest")
    codes = {r["uscc"] for r in silver if r["uscc"]}
    assert codes and codes <= registry


def test_shares_and_determinism(tmp_path):
    # repairs 2% of penalties (35% of scale), court entries 1% of enterprises (15%), at least 20
    assert plan_rows(100_000)["credit.repair"] == 700 and plan_rows(100_000)["court.dishonest"] == 150
    assert plan_rows(2000)["credit.repair"] == 20 and plan_rows(2000)["court.dishonest"] == 20

    def digest(out: Path, seed: int) -> dict[str, str]:
        for code in FEEDS:
            generate_city(out, scale=SCALE, seed=seed, only=code, rows=30)
        return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(out.rglob("*.*")) if p.suffix in (".csv", ".jsonl")}

    first = digest(tmp_path / "a", SEED)
    assert set(first) == {"credit/repair/xyzg_20261120.csv", "credit/repair/xysd_20261120.csv",
                          "court/dishonest_20261120.jsonl"}
    assert digest(tmp_path / "b", SEED) == first
    other = digest(tmp_path / "c", SEED + 1)
    assert all(other[k] != first[k] for k in first)


def test_penalty_decisions_span_four_years(city):
    settings, _, _ = city
    dates = [r["decision_date"] for r in _rows(settings, "silver", "credit_penalty")]
    three_years, one_year = dt.date(2023, 11, 20), dt.date(2025, 11, 20)
    assert min(dates) >= dt.date(2022, 11, 21) and max(dates) < AS_OF
    assert any(d < three_years for d in dates)                 # past a 3-year publicity period
    assert any(three_years <= d < one_year for d in dates)     # past 1 year, within 3
    assert any(d >= one_year for d in dates)                   # within a year


# ---- a repair file with only the four columns that define the feed ------------------------------------

REPAIR_COLUMNS = ["统一社会信用代码", "处罚决定书文号", "修复日期", "修复机关"]


def _penalty_row(no: str, uscc: str, name: str, decided: str, category: str, fine: str, **extra: str) -> dict:
    """One credit.penalty row as a department exports it (Chinese headers, text cells)."""
    return {"行政相对人名称": name, "行政相对人类别": "法人及非法人组织", "行政相对人代码_1(统一社会信用代码)": uscc,
            "证件类型": "", "证件号码": "",
            "行政处罚决定书文号": no, "违法行为类型": "超标排放", "违法事实": "超标排放大气污染物",
            "处罚依据": "《大气污染防治法》第九十九条", "处罚类别": category, "处罚内容": category,
            "罚款金额(万元)": fine, "暂扣或吊销证照名称及编号": "", "处罚决定日期": decided, "处罚有效期": "2099-12-31",
            "处罚机关": "济南市生态环境局", "处罚机关统一社会信用代码": DEPT["ee"], "数据来源单位": "济南市生态环境局",
            "数据来源单位统一社会信用代码": DEPT["ee"], "报送时间": f"{decided} 10:00:00"} | extra


def _write_csv(path: Path, rows: list[dict], encoding: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_four_column_repair_files_land_and_are_reviewed_end_to_end(tmp_path):
    import xlsxwriter

    settings = Settings(var=tmp_path / "var", inbox=tmp_path / "inbox", as_of=AS_OF)
    inbox = tmp_path / "inbox"
    penalties = _write_csv(inbox / "ee_penalties.csv", [
        # 一般 (fine 2 万元), decided 2026-01-15: repair allowed from 2026-04-15, published until 2027-01-15
        _penalty_row("济环罚〔2026〕1号", E1, "济南甲有限公司", "2026-01-15", "罚款", "2"),
        # 严重 (吊销许可证件), decided 2026-03-10: repair allowed from 2026-09-10
        _penalty_row("济环罚〔2026〕2号", E2, "济南乙商贸有限公司", "2026-03-10", "吊销许可证件", "",
                     **{"暂扣或吊销证照名称及编号": "排污许可证 PW001"}),
        # 一般, decided 2026-02-02: repair allowed from 2026-05-02
        _penalty_row("济环罚〔2026〕3号", E1, "济南甲有限公司", "2026-02-02", "罚款", "3"),
        # 一般, decided 2026-01-20: repair allowed from 2026-04-20; a natural person (whose code is given)
        _penalty_row("济环罚〔2026〕4号", E3, "孙八", "2026-01-20", "罚款", "1",
                     **{"行政相对人类别": "自然人", "证件类型": "身份证", "证件号码": PERSON_ID}),
    ], "gbk")
    # GBK CSV, exactly the four columns: 2026-05-10 ≥ 2026-04-15 → accepted; a decision nobody made;
    # 2026-06-01 ≥ 2026-04-20 → accepted, without the person's name (the review does not mask names)
    csv_file = _write_csv(inbox / "repair_4col.csv", [
        dict(zip(REPAIR_COLUMNS, [E1, "济环罚〔2026〕1号", "2026-05-10", "山东省公共信用信息中心"])),
        dict(zip(REPAIR_COLUMNS, [E2, "济环罚〔2026〕99号", "2026-06-01", "山东省公共信用信息中心"])),
        dict(zip(REPAIR_COLUMNS, [E3, "济环罚〔2026〕4号", "2026-06-01", "山东省公共信用信息中心"])),
    ], "gbk")
    # XLSX with the same four columns: 2026-08-01 < 2026-09-10 → rejected (严重)
    xlsx_file = inbox / "repair_4col.xlsx"
    book = xlsxwriter.Workbook(str(xlsx_file))
    sheet = book.add_worksheet("修复结果")
    sheet.write_row(0, 0, REPAIR_COLUMNS)
    sheet.write_row(1, 0, [E2, "济环罚〔2026〕2号", "2026-08-01", "国家公共信用信息中心"])
    book.close()
    # JSON lines with the same four keys: 2026-06-30 ≥ 2026-05-02 → accepted
    jsonl_file = inbox / "repair_4col.jsonl"
    jsonl_file.write_text(json.dumps(dict(zip(REPAIR_COLUMNS, [E1, "济环罚〔2026〕3号", "2026-06-30",
                                                                "市公共信用信息中心"])), ensure_ascii=False) + "\n",
                          encoding="utf-8")

    pipeline.ingest("credit.penalty", files=[penalties], settings=settings, run_id="i1")
    landed = pipeline.ingest("credit.repair", files=[csv_file, xlsx_file, jsonl_file], settings=settings,
                             run_id="i2")
    assert [(Path(b.source).name, b.status, b.rows) for b in landed.batches] == [
        ("repair_4col.csv", "landed", 3), ("repair_4col.xlsx", "landed", 1), ("repair_4col.jsonl", "landed", 1)]
    assert landed.batches[0].encoding == "gbk"
    summary = pipeline.run(settings=settings, run_id="r1")
    result = summary["resources"]["credit.repair"]
    assert (result.rows_read, result.silver, result.quarantined, result.duplicates) == (5, 5, 0, 0)

    review = {r["decision_no"]: r for r in _rows(settings, "gold", "credit_repair_review")}
    got = {no: ((Path(r["_source"]).name, r["_row_number"]), r["subject_name"], r["outcome"], r["reason_zh"])
           for no, r in review.items()}
    assert got == {
        "济环罚〔2026〕1号": (("repair_4col.csv", 1), "济南甲有限公司", "accepted", "修复有效，公示于2026-05-10结束"),
        "济环罚〔2026〕99号": (("repair_4col.csv", 2), None, "rejected", "未找到该企业的这一行政处罚决定"),
        "济环罚〔2026〕4号": (("repair_4col.csv", 3), None, "accepted", "修复有效，公示于2026-06-01结束"),
        "济环罚〔2026〕2号": (("repair_4col.xlsx", 1), "济南乙商贸有限公司", "rejected",
                           "修复日期2026-08-01早于最短公示期满日2026-09-10（严重失信）"),
        "济环罚〔2026〕3号": (("repair_4col.jsonl", 1), "济南甲有限公司", "accepted", "修复有效，公示于2026-06-30结束"),
    }
    records = {r["decision_no"]: r for r in _rows(settings, "gold", "penalty_record")}
    assert {no: (r["publicity_status"], r["publish_end"], r["repair_authority"]) for no, r in records.items()} == {
        "济环罚〔2026〕1号": ("已修复", dt.date(2026, 5, 10), "山东省公共信用信息中心"),
        "济环罚〔2026〕2号": ("公示中", dt.date(2029, 3, 10), None),
        "济环罚〔2026〕3号": ("已修复", dt.date(2026, 6, 30), "市公共信用信息中心"),
        "济环罚〔2026〕4号": ("已修复", dt.date(2026, 6, 1), "山东省公共信用信息中心"),
    }
    published = {r["decision_no"] for r in _rows(settings, "gold", "penalty_publication")}
    assert published == {"济环罚〔2026〕2号"}
