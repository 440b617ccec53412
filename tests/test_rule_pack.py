"""The 双公示 rule pack: each custom GX expectation on hand-made rows (GX alone), each cross-field
rule through process_resource (quarantine with the rule ids), the listing, and docs/rules.md."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import subprocess
import sys

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from _bronze import write_bronze
from govlake.catalog import get_catalog
from govlake.identifiers import org_code_check_char, ric_check_char, sql_org_code_valid, uscc_check_char
from govlake.quality import process_resource, rule_listing, rules_for, rules_markdown
from govlake.quality._gx import LINEAGE, expectation_for, run_suite
from govlake.transform import DUCKDB

TODAY = dt.date(2026, 11, 20)
REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def uscc(prefix: str, region: str, body8: str) -> str:
    """A valid USCC whose organisation code (positions 9-17) is valid too."""
    first17 = prefix + region + body8 + org_code_check_char(body8)
    return first17 + uscc_check_char(first17)


def id_number(first17: str) -> str:
    return first17 + ric_check_char(first17)


SUBJECT = uscc("91", "370100", "MA3C0000")
SUBJECT_A = uscc("A1", "370100", "MJX17369")     # registration department A: stdnum alone rejects it
SUBJECT_N = uscc("N2", "370102", "12345678")
SUBJECT_Y = uscc("Y1", "370102", "MB0000XY")
BAD_ORG = SUBJECT[:16] + ("0" if SUBJECT[16] != "0" else "1")
BAD_ORG = BAD_ORG[:17] + uscc_check_char(BAD_ORG[:17])   # USCC check right, GB 11714 check wrong
PERSON = id_number("11010519491231002")                  # 11010519491231002X
UNKNOWN_COUNTY = id_number("99010119800101001")          # valid check and date, no such county


def gx_failures(rows: list[dict], expectation) -> list[int]:
    """Ids of the rows that GX reports as unexpected (COMPLETE result), checked on a DuckDB table."""
    con = duckdb.connect()
    con.register("rows_arrow", pa.Table.from_pylist(rows))
    con.execute("create table t as select * from rows_arrow")
    con.execute("create table ref_region as select '370102' as code union all select '110105'")
    result = run_suite(con, "t", [expectation], suite_name="pack_test", result_format="COMPLETE")
    (r,) = result.results
    assert r.exception_info.get("raised_exception") in (None, False), r.exception_info
    failing = sorted(row["id"] for row in r.result["details"]["unexpected_rows"])
    assert r.result["observed_value"] == len(failing) and r.success == (not failing)
    con.close()
    return failing


def _rows(column: str, values: list, **other) -> list[dict]:
    return [{"id": i, column: v, **{k: vs[i - 1] for k, vs in other.items()}} for i, v in enumerate(values, 1)]


# ---- the expectation classes on their own ------------------------------------------------


def test_valid_uscc():
    from govlake.quality import ExpectColumnValuesToBeValidUscc

    rows = _rows("code", [SUBJECT, SUBJECT_A, SUBJECT_N, SUBJECT_Y, "91350100M000100Y4Z", "91350100M000100Y43",
                          "91350100M000100Y4", "I1350100M000100Y43", None, "53640000MJX1736997"])
    assert gx_failures(rows, ExpectColumnValuesToBeValidUscc(column="code", report_columns=["id"])) == [5, 7, 8]


def test_uscc_organisation_code_check_is_gb_11714():
    from govlake.quality import ExpectColumnValuesToHaveValidUsccOrganizationCode

    # 53640000MJX1736997: a real code whose organisation code MJX17369-9 uses letters past H.
    rows = _rows("code", ["53640000MJX1736997", SUBJECT, BAD_ORG, "91350100M000100Y4Z", "bad", None])
    e = ExpectColumnValuesToHaveValidUsccOrganizationCode(column="code", report_columns=["id"])
    assert gx_failures(rows, e) == [3]


def test_codes_known_valid_are_looked_up_before_the_check():
    """The departments' codes, checked once in Python, are looked up before the check character is computed; a
    department code that fails the check is not among them, so rows carrying it fail as any other."""
    from types import SimpleNamespace

    from govlake.compute import DuckCompute
    from govlake.quality import ExpectColumnValuesToBeValidUscc, ExpectColumnValuesToHaveValidUsccOrganizationCode
    from govlake.quality._process import _reference_tables

    typo = SUBJECT_N[:17] + ("1" if SUBJECT_N[17] != "1" else "2")  # a department's code with a typo in the catalog
    departments = {c: SimpleNamespace(code=c, uscc=u) for c, u in (("a", SUBJECT), ("b", BAD_ORG), ("c", typo))}
    con = duckdb.connect()
    _reference_tables(DuckCompute(con), SimpleNamespace(departments=departments))
    assert con.execute("select code from ref_uscc_valid order by code").fetchall() == sorted([(SUBJECT,), (BAD_ORG,)])
    assert con.execute("select code from ref_uscc_org_valid").fetchall() == [(SUBJECT,)]
    rows = _rows("code", [SUBJECT, BAD_ORG, typo, SUBJECT_Y, "91350100M000100Y4Z", None])
    con.register("rows_arrow", pa.Table.from_pylist(rows))
    con.execute("create table t as select * from rows_arrow")
    checks = ((ExpectColumnValuesToBeValidUscc, "ref_uscc_valid", [3, 5]),
              (ExpectColumnValuesToHaveValidUsccOrganizationCode, "ref_uscc_org_valid", [2]))
    for e, known, failing in checks:
        run = run_suite(con, "t", [e(column="code", known_table=known, report_columns=["id"])],
                        suite_name="known", result_format="COMPLETE")
        (r,) = run.results
        assert sorted(row["id"] for row in r.result["details"]["unexpected_rows"]) == failing, e.__name__
    # looked up, not computed: a code put in the table (never one that fails, in the pipeline) is taken as valid
    con.execute("insert into ref_uscc_valid values ('91350100M000100Y4Z')")
    run = run_suite(con, "t", [ExpectColumnValuesToBeValidUscc(column="code", known_table="ref_uscc_valid",
                                                               report_columns=["id"])],
                    suite_name="probe", result_format="COMPLETE")
    assert sorted(row["id"] for row in run.results[0].result["details"]["unexpected_rows"]) == [3]
    con.close()


def test_sql_org_code_check_agrees_with_python():
    rng = random.Random(7)
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    bodies = ["".join(rng.choice(alphabet) for _ in range(8)) for _ in range(300)]
    con = duckdb.connect()
    for body in bodies:
        good = body + org_code_check_char(body)
        bad = good[:8] + ("1" if good[8] != "1" else "2")
        assert con.execute(f"select {sql_org_code_valid('$1')}", [good]).fetchone()[0], good
        assert not con.execute(f"select {sql_org_code_valid('$1')}", [bad]).fetchone()[0], bad
    # hand-checked: MJX17369 → 3·22+7·19+9·33+10·1+5·7+8·3+4·6+2·9 = 607, 11 − 607 mod 11 = 9
    assert org_code_check_char("MJX17369") == "9" and org_code_check_char("00251809") == "X"


def test_valid_id_number_and_known_county():
    from govlake.quality import ExpectColumnValuesToBeValidIdNumber, ExpectColumnValuesToHaveKnownIdNumberCounty

    wrong_check = PERSON[:-1] + "1"
    feb_30 = id_number("11010519490230001")
    values = [PERSON, wrong_check, feb_30, "110105491231002", UNKNOWN_COUNTY, None, id_number("37010219800101001")]
    rows = _rows("no", values)
    assert gx_failures(rows, ExpectColumnValuesToBeValidIdNumber(column="no", report_columns=["id"])) == [2, 3, 4]
    # Unknown county: only valid numbers are judged (invalid ones belong to the ID check).
    county = ExpectColumnValuesToHaveKnownIdNumberCounty(column="no", report_columns=["id"])
    assert gx_failures(rows, county) == [5]
    # With a codes table (the pipeline's ref_region): 110105 and 370102 only.
    in_table = ExpectColumnValuesToHaveKnownIdNumberCounty(column="no", codes_table="ref_region", report_columns=["id"])
    assert gx_failures(rows, in_table) == [5]


def test_valid_region_code():
    from govlake.quality import ExpectColumnValuesToBeValidRegionCode

    rows = _rows("r", ["370102", "110105", "999999", "37010", None])
    assert gx_failures(rows, ExpectColumnValuesToBeValidRegionCode(column="r", report_columns=["id"])) == [3, 4]


def test_multi_valued_code_list():
    from govlake.quality import ExpectColumnValuesToBeMultiValuedInSet

    rows = _rows("cat", ["罚款", "警告;罚款", "警告、罚款", "罚款 ; 警告", "罚没", "罚款;罚没", "罚款;;", None,
                         "罚款；警告"])
    e = ExpectColumnValuesToBeMultiValuedInSet(column="cat", value_set=["警告", "罚款"], report_columns=["id"])
    assert gx_failures(rows, e) == [5, 6, 9]   # the full-width ； is not a separator unless listed
    e2 = ExpectColumnValuesToBeMultiValuedInSet(column="cat", value_set=["警告", "罚款"], separators=[";", "、", "；"],
                                                report_columns=["id"])
    assert gx_failures(rows, e2) == [5, 6]


def test_multi_valued_check_is_the_token_lookup():
    """The check is one regular expression; on random texts of values, prefixes of values, separators, blanks and
    unknown words it fails exactly the rows where some token (split at the separators, blanks and empty tokens
    ignored) is not in the set — the list lookup it replaced, written out here. Values holding a separator, a
    blank or a regex character are in the set too."""
    from govlake.quality._checks import multi_value_in_set

    values = ["暂扣许可证", "暂扣许可证件", "罚款", "警告", "a.b", "x+", "甲;乙", "丙 丁", "(其他)"]
    pieces = ["暂扣许可证", "暂扣许可证件", "件", "罚款", "警告", "罚", "a.b", "aXb", "x+", "xx", "甲", "乙", "丙",
              "丁", "(其他)", "其他", "甲;乙", "丙 丁", ";", "、", "；", " ", "\u3000", ""]
    rng = random.Random(7)
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 6))) for _ in range(4000)] + [None]
    con = duckdb.connect()
    con.execute("create table t (i integer, cat varchar)")
    con.executemany("insert into t values (?, ?)", list(enumerate(texts)))
    listed = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    for separators in ([";", "、"], [";", "、", "；"], ["、"]):
        text = "replace(cat, ' ', '')"
        for sep in separators[1:]:
            text = f"replace({text}, '{sep}', '{separators[0]}')"
        lookup = (f"cat is not null and not list_has_all([{listed}], "
                  f"list_filter(string_split({text}, '{separators[0]}'), x -> x <> ''))")
        check = multi_value_in_set(column="cat", value_set=values, separators=separators)
        differ = con.execute(f"select count(*), count(*) filter (where {lookup}) from t "
                             f"where ({check}) is distinct from ({lookup})").fetchone()
        assert differ[0] == 0, (separators, differ)
        failing = con.execute(f"select count(*) from t where {check}").fetchone()[0]
        assert 0 < failing < len(texts) - 1


def test_parseable_and_dates():
    from govlake.quality import (
        ExpectColumnPairValuesAToNotBeAfterB,
        ExpectColumnValuesToBeParseable,
        ExpectColumnValuesToNotBeAfterDate,
        ExpectColumnValuesToNotBeInTheFuture,
    )

    d = dt.date
    rows = _rows("raw", ["2026-11-20", "昨天", None, "2026-11-21", "2099/12/31"],
                 day=[d(2026, 11, 20), None, None, d(2026, 11, 21), d(2099, 12, 31)],
                 start=[d(2026, 1, 1), d(2026, 1, 1), None, d(2027, 1, 1), d(2026, 1, 1)])
    parse = ExpectColumnValuesToBeParseable(column="raw", parsed_column="day", report_columns=["id"])
    assert gx_failures(rows, parse) == [2]
    future = ExpectColumnValuesToNotBeInTheFuture(column="day", as_of=TODAY, report_columns=["id"])
    assert gx_failures(rows, future) == [4, 5]
    long_term = ExpectColumnValuesToNotBeAfterDate(column="day", max_date=d(2099, 12, 31), report_columns=["id"])
    assert gx_failures(rows, long_term) == []
    assert gx_failures(rows, ExpectColumnValuesToNotBeAfterDate(
        column="day", max_date=d(2099, 12, 30), report_columns=["id"])) == [5]
    order = ExpectColumnPairValuesAToNotBeAfterB(column_a="start", column_b="day", report_columns=["id"])
    assert gx_failures(rows, order) == [4]   # 2027-01-01 > 2026-11-21; 2099-12-31 is a fine end


def test_conditional_required_and_positive_amount():
    from govlake.quality import ExpectColumnValuesToBePositiveWhen, ExpectColumnValuesToNotBeNullWhen

    rows = _rows("kind", ["自然人", "自然人", "自然人", "法人及非法人组织", None],
                 id_type=["身份证", None, "身份证", None, None], id_no=[PERSON, PERSON, None, None, None])
    e = ExpectColumnValuesToNotBeNullWhen(column_list=["id_type", "id_no"], when_column="kind",
                                          when_values=["自然人"], report_columns=["id"])
    assert gx_failures(rows, e) == [2, 3]
    rows = _rows("cat", ["罚款", "警告;罚款", "罚款", "警告", "罚款;没收违法所得", None],
                 fine=[1.5, None, 0, None, -1, None])
    e = ExpectColumnValuesToBePositiveWhen(column="fine", when_column="cat", when_values=["罚款"],
                                           when_multi_value=True, report_columns=["id"])
    assert gx_failures(rows, e) == [2, 3, 5]


def test_pack_classes_are_registered_and_round_trip():
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
    from great_expectations.expectations.registry import get_expectation_impl

    from govlake.quality import ExpectColumnValuesToBeValidUscc
    from govlake.quality._expectations import PACK

    assert len(PACK) == 13
    for name, cls in PACK.items():
        assert get_expectation_impl(cls.expectation_type) is cls, name
    e = ExpectColumnValuesToBeValidUscc(column="uscc", meta={"rule_id": "uscc.uscc"})
    assert e.expectation_type == "expect_column_values_to_be_valid_uscc"
    again = ExpectationConfiguration(**e.configuration.to_json_dict()).to_domain_obj()
    assert type(again) is ExpectColumnValuesToBeValidUscc
    assert again.unexpected_rows_query == e.unexpected_rows_query and again.column == "uscc"
    assert e.unexpected_rows_query.startswith("select * from {batch} where uscc is not null")


def test_every_pack_rule_maps_to_one_expectation_with_its_meta(settings):
    catalog = get_catalog(settings.catalog_dir)
    for code in ("credit.license", "credit.penalty"):
        for rule in rules_for(catalog.resource(code), catalog, DUCKDB, settings.expectations_dir).rules:
            e = expectation_for(rule, today=TODAY)
            assert type(e).__name__ == rule.expectation
            assert e.meta == {"rule_id": rule.id, "severity": rule.severity, "zh": rule.zh, "en": rule.en}
            if hasattr(e, "condition"):
                # the GX query is the split's predicate with the run date bound
                assert e.condition == rule.fail_when.replace("{today}", "date '2026-11-20'")
                assert e.report_columns == LINEAGE


# ---- the pack through process_resource ---------------------------------------------------

LEGAL_REP = id_number("37010219800101001")
WRONG_LEGAL_REP = LEGAL_REP[:-1] + ("1" if LEGAL_REP[-1] != "1" else "2")
BASE = dict(subject_name="济南星辰科技有限公司", subject_type="法人及非法人组织", uscc=SUBJECT,
            legal_rep="王五", legal_rep_id_type="身份证", legal_rep_id_no=LEGAL_REP,
            decision_no="济市监罚〔2026〕1号", violation_type="虚假宣传", facts="发布虚假广告",
            basis="广告法第五十五条", penalty_category="罚款", content="罚款1万元", fine_amount="1",
            decision_date="2026-10-09", valid_until="2027-10-09", publish_until="2027-10-09",
            authority="市市场监督管理局", authority_uscc="11370100MB0000001A", source_dept="市市场监督管理局",
            source_dept_uscc="11370100MB0000001A")
PERSON_ROW = dict(BASE, subject_type="自然人", subject_name="张三", uscc=None, legal_rep=None,
                  legal_rep_id_type=None, legal_rep_id_no=None, id_type="身份证", id_no=PERSON)


def _penalty_rows() -> list[dict]:
    def row(n, base=BASE, **over):
        return dict(base, decision_no=f"{n}号", **over)

    return [
        row(1),                                                                        # valid
        row(2, uscc=SUBJECT_A),                                                        # A… USCC, valid
        row(3, uscc="91350100M000100Y4Z"),                                             # uscc.uscc
        row(4, uscc=None),                                                             # SGS.subject_code
        row(5, subject_type="个体工商户", uscc=None),                                   # SGS.subject_code
        row(6, PERSON_ROW, id_no=None),                                                # SGS.person_id
        row(7, PERSON_ROW, id_no=PERSON[:-1] + "1"),                                   # SGS.person_id_valid
        row(8, PERSON_ROW, id_no=UNKNOWN_COUNTY),                                      # valid; county warning
        row(9, penalty_category="警告、罚款", fine_amount=None),                        # SGS.fine_amount
        row(10, penalty_category="罚款;警告", fine_amount="0"),                         # SGS.fine_amount
        row(11, penalty_category="没收违法所得", fine_amount=None),                     # SGS.confiscation_amount
        row(12, penalty_category="吊销许可证件", fine_amount=None),                     # SGS.licence_named
        row(13, penalty_category="吊销许可证件", fine_amount=None, licence_revoked="食品经营许可证 JY137"),
        row(14, publish_until="2026-10-08"),                                           # SGS.publish_after_decision
        row(15, valid_until="2026-10-01"),                                             # SGS.valid_after_decision
        row(16, valid_until="2099/12/31", publish_until="2099-12-31"),                 # long-term: valid
        row(17, valid_until="2100-01-01", publish_until="2100-01-01"),                 # valid; two warnings
        row(18, uscc=BAD_ORG),                                                         # valid; GB 11714 warning
        row(19, legal_rep_id_no=WRONG_LEGAL_REP),                                      # SGS.legal_rep_id_valid
        row(20, decision_date="2026-11-21", valid_until="2027-11-21", publish_until="2027-11-21"),  # future
    ] + [row(n) for n in range(21, 29)]   # valid (the blocking limit is half the rows)


def _quarantine(settings, slug):
    rows = DeltaTable(str(settings.lake / "quarantine" / slug)).to_pyarrow_table().to_pylist()
    return {row["_row_number"]: sorted(row["_failed_rules"]) for row in rows}


def test_penalty_pack_through_process_resource(settings):
    write_bronze(settings, "credit.penalty", _penalty_rows())
    r = process_resource("credit.penalty", settings=settings, run_id="r1", today=TODAY)
    assert _quarantine(settings, "credit_penalty") == {
        3: ["uscc.uscc"], 4: ["SGS.subject_code"], 5: ["SGS.subject_code"], 6: ["SGS.person_id"],
        7: ["SGS.person_id_valid"], 9: ["SGS.fine_amount"], 10: ["SGS.fine_amount"],
        11: ["SGS.confiscation_amount"], 12: ["SGS.licence_named"], 14: ["SGS.publish_after_decision"],
        15: ["SGS.valid_after_decision"], 19: ["SGS.legal_rep_id_valid"], 20: ["not_future.decision_date"],
    }
    assert (r.rows_read, r.silver, r.quarantined) == (28, 15, 13)
    assert r.warnings == {"SGS.person_id_county": 1, "SGS.long_term_valid_until": 1,
                          "SGS.long_term_publish_until": 1, "uscc_org.uscc": 1}
    silver = {row["decision_no"]: row for row in
              DeltaTable(str(settings.lake / "silver" / "credit_penalty")).to_pyarrow_table().to_pylist()}
    assert set(silver) == {"1号", "2号", "8号", "13号", "16号", "17号", "18号"} | {f"{n}号" for n in range(21, 29)}
    assert silver["16号"]["valid_until"] == dt.date(2099, 12, 31)
    # GX (the pack's classes and the built-ins) counted exactly what DuckDB did, rule by rule.
    results = DeltaTable(str(settings.lake / "meta" / "validation_results")).to_pyarrow_table().to_pylist()
    checked = [x for x in results if x["severity"] in ("row", "warning")]
    assert all(x["gx_unexpected"] == x["failed"] for x in checked)
    assert {x["rule_id"]: x["failed"] for x in checked if x["failed"]}["SGS.fine_amount"] == 2


LICENSE = dict(subject_name="济南星辰科技有限公司", subject_type="法人及非法人组织", uscc=SUBJECT,
               doc_name="食品经营许可决定书", doc_no="JY1", license_category="普通", content="食品经营",
               decision_date="2026-10-09", valid_from="2026-10-09", valid_to="2031-10-08",
               authority="市市场监督管理局", authority_uscc="11370100MB0000001A", status="有效",
               source_dept="市市场监督管理局", source_dept_uscc="11370100MB0000001A")


def test_license_pack_through_process_resource(settings):
    def row(n, base=LICENSE, **over):
        return dict(base, doc_no=f"JY{n}", **over)

    rows = [
        row(1),                                                                 # valid
        row(2, valid_to="2099-12-31"),                                          # long-term: valid
        row(3, valid_from="2026-10-09", valid_to="2026-10-08"),                 # SGS.validity_range
        row(4, license_category="特许许可"),                                    # synonym: valid
        row(5, license_category="审批"),                                        # code.license_category
        row(6, subject_type="自然人", uscc=None, id_type="护照", id_no=None),   # SGS.person_id
        row(7, subject_type="自然人", uscc=None, id_type="护照", id_no="E12345678"),  # passport: valid
        row(8, uscc=SUBJECT_Y, valid_to="2100-01-01"),                          # valid; warning
        row(9, doc_name=None, uscc=None),                                       # two rules
    ]
    write_bronze(settings, "credit.license", rows)
    r = process_resource("credit.license", settings=settings, run_id="r1", today=TODAY)
    assert _quarantine(settings, "credit_license") == {
        3: ["SGS.validity_range"], 5: ["code.license_category"], 6: ["SGS.person_id"],
        9: ["SGS.subject_code", "required.doc_name"]}
    assert (r.silver, r.quarantined) == (5, 4)
    assert r.warnings == {"SGS.long_term_valid_to": 1}


# ---- configuration in expectations/*.yml -------------------------------------------------


def _settings_with(settings, tmp_path, yml: str):
    import dataclasses

    d = tmp_path / "exp"
    d.mkdir()
    (d / "credit.penalty.yml").write_text(yml, encoding="utf-8")
    return dataclasses.replace(settings, expectations_dir=d)


def test_rules_can_be_switched_off_or_regraded(settings, tmp_path):
    s = _settings_with(settings, tmp_path, """
resource: credit.penalty
rules:
  - {id: SGS.fine_amount, severity: warning, zh: 罚款须有金额, en: A fine needs an amount,
     expectation: ExpectColumnValuesToBePositiveWhen,
     kwargs: {column: fine_amount, when_column: penalty_category, when_values: [罚款], when_multi_value: true}}
  - {id: SGS.off, severity: row, zh: 关, en: "off", enabled: false, fail_when: "true"}
overrides:
  not_future.decision_date: {severity: warning}
  uscc_org.uscc: {enabled: false}
  uscc_org.authority_uscc: {enabled: false}
  uscc_org.source_dept_uscc: {enabled: false}
""")
    write_bronze(s, "credit.penalty", _penalty_rows()[8:10] + _penalty_rows()[19:20])
    r = process_resource("credit.penalty", settings=s, run_id="r1", today=TODAY)
    assert (r.quarantined, r.silver) == (0, 3)
    assert r.warnings == {"SGS.fine_amount": 2, "not_future.decision_date": 1}
    ids = {x.id for x in rules_for(get_catalog(s.catalog_dir).resource("credit.penalty"),
                                   get_catalog(s.catalog_dir), DUCKDB, s.expectations_dir).rules}
    assert "SGS.off" not in ids and "uscc_org.uscc" not in ids


def test_great_expectations_reads_the_columns_a_hand_written_rule_names(settings, tmp_path):
    """Great Expectations validates the flagged rows with the columns the rules name (_process._gx_rows keeps only
    those): rules of a department's own reading columns no catalog rule reads (备注 as cleaned, 法定代表人 as typed)
    are counted by GX as by DuckDB, and the run publishes."""
    s = _settings_with(settings, tmp_path, """
resource: credit.penalty
rules:
  - {id: X.remark, severity: warning, zh: 备注过长, en: A long remark, fail_when: "length(remark__in) > 3"}
  - {id: X.legal_rep, severity: row, zh: 法定代表人为测试, en: A test name, fail_when: "legal_rep = '测试'"}
""")
    rows = _penalty_rows()[20:28] + [dict(BASE, decision_no="r1号", remark="  很长的一条备注 "),
                                     dict(BASE, decision_no="r2号", legal_rep="测试")]
    write_bronze(s, "credit.penalty", rows)
    r = process_resource("credit.penalty", settings=s, run_id="r1", today=TODAY)
    assert r.warnings["X.remark"] == 1
    assert _quarantine(s, "credit_penalty") == {10: ["X.legal_rep"]}
    results = DeltaTable(str(s.lake / "meta" / "validation_results")).to_pyarrow_table().to_pylist()
    counted = {x["rule_id"]: (x["failed"], x["gx_unexpected"]) for x in results if x["rule_id"].startswith("X.")}
    assert counted == {"X.remark": (1, 1), "X.legal_rep": (1, 1)}


def test_the_columns_a_rule_reads_are_named_or_all_for_a_star():
    """What _process._gx_rows keeps for Great Expectations: the names a condition reads, its subqueries' too (a
    name that is not a column of the rows is harmless), and every column when it reads a star."""
    from govlake.transform import referenced_columns

    assert referenced_columns("select length(remark__in) > 3 and t.legal_rep = 'x'") == {"remark__in", "legal_rep"}
    assert referenced_columns("select uscc__in not in (select code from ref_uscc_valid)") == {"uscc__in", "code"}
    assert "*" in referenced_columns("select struct_pack(*) is null")
    assert "*" in referenced_columns("select columns(*) is null")


@pytest.mark.parametrize("rule, message", [
    ("{id: X, severity: row, zh: x, en: x, expectation: ExpectNoSuchThing, kwargs: {column: a}}",
     "unknown expectation"),
    ("{id: X, severity: row, zh: x, en: x, expectation: ExpectColumnValuesToBeValidUscc, kwargs: {col: a}}",
     "ExpectColumnValuesToBeValidUscc"),
    ("{id: X, severity: row, zh: x, en: x}", "either fail_when or expectation"),
])
def test_bad_rules_are_reported_with_file_and_rule(settings, tmp_path, rule, message):
    s = _settings_with(settings, tmp_path, f"resource: credit.penalty\nrules:\n  - {rule}\n")
    catalog = get_catalog(s.catalog_dir)
    with pytest.raises(ValueError, match=message) as exc:
        rules_for(catalog.resource("credit.penalty"), catalog, DUCKDB, s.expectations_dir)
    assert re.search(r"credit\.penalty\.yml:3:\d+: rules\[0\] \(X\): ", str(exc.value)), exc.value


# ---- listing and docs --------------------------------------------------------------------


def test_listing_names_the_expectation_of_every_rule(settings):
    listing = {r["id"]: r for r in rule_listing("credit.penalty", settings=settings)}
    assert listing["SGS.fine_amount"]["expectation"] == "ExpectColumnValuesToBePositiveWhen"
    assert listing["uscc.uscc"]["expectation"] == "ExpectColumnValuesToBeValidUscc"
    assert listing["code.penalty_category"]["expectation"] == "ExpectColumnValuesToBeMultiValuedInSet"
    assert listing["not_future.decision_date"]["kwargs"] == {"column": "decision_date", "as_of": "run date"}
    assert listing["blocking.quarantine_rate"]["kwargs"] == {"max_quarantine_rate": 0.5}
    assert all(r["zh"] and r["en"] and r["severity"] in ("row", "warning", "blocking") for r in listing.values())


def test_cli_rules_json():
    out = subprocess.run([sys.executable, "-m", "govlake.cli", "rules", "credit.license", "--json"],
                         capture_output=True, text=True, check=True, cwd=REPO)
    listing = json.loads(out.stdout)
    by_id = {r["id"]: r for r in listing}
    assert by_id["SGS.validity_range"]["expectation"] == "ExpectColumnPairValuesAToNotBeAfterB"
    assert by_id["SGS.validity_range"]["severity"] == "row"
    assert by_id["SGS.long_term_valid_to"]["severity"] == "warning"
    assert {r["resource"] for r in listing} == {"credit.license"}


def test_docs_rules_md_is_current():
    text = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    assert text == rules_markdown(), "docs/rules.md is stale: uv run govlake rules --markdown > docs/rules.md"
