"""Sharing KPIs on a hand-built catalog, 事项清单 and request log; bad inputs; the generated demo set."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pyarrow as pa
import pytest

from govlake import storage
from govlake.config import Settings
from govlake.governance import claim_step
from govlake.ingest._log import append as log_append
from govlake.sharing import (
    SharingInputError,
    load_requests,
    load_service_matters,
    matters_path,
    next_due,
    requests_path,
    sharing_kpis,
)
from govlake.sharing._schedule import add_months
from govlake.workdays import WorkdayCalendar

D = dt.date.fromisoformat
AS_OF = D("2026-11-20")  # a Friday
SNAP = "as of 2026-11-20"
AMR_USCC, PSB_USCC = "11370100MB0000001A", "11370100MB0000004K"

DEPARTMENTS = f"""
- {{code: amr, name: 市市场监督管理局, name_en: AMR, uscc: {AMR_USCC}}}
- {{code: psb, name: 市公安局, name_en: PSB, uscc: {PSB_USCC}}}
- {{code: hrss, name: 市人力资源和社会保障局, name_en: HRSS, uscc: 11370100MB0000003G}}
- {{code: tax, name: 国家税务总局市税务局, name_en: Tax, uscc: 11370100MB0000002D}}
- {{code: credit, name: 市公共信用信息中心, name_en: Credit, uscc: 11370100MB0000005N}}
- {{code: dsj, name: 市大数据局, name_en: Big data bureau, uscc: 11370100MB0000011B}}
"""
_COND = "share_condition: 履职使用\nshare_basis: 《政务信息资源共享管理暂行办法》\n"


def _resource(code, provider, share, cycle, items, *, core=False, claimed=None, published="2024-03-01",
              extra=""):
    cond = "" if share == "无条件共享" else _COND
    claim = f"claimed_by: {claimed}\nclaimed_on: 2024-03-05\n" if claimed else ""
    lines = "\n".join(f"  - {{column: {c}, name: {n}, name_en: {c}{more}}}" for c, n, more in items)
    return (f"code: {code}\nname: {code}\nname_en: {code}\nkind: 部门\ncategory: 测试\nprovider: {provider}\n"
            f"summary: 测试资源\nformat: csv\nshare_type: {share}\n{cond}share_method: 接口\nopen_type: 不予开放\n"
            f"update_cycle: {cycle}\npublished: {published}\ncore_business: {str(core).lower()}\n{claim}{extra}"
            f"grain: one row per key\nkey: [{items[0][0]}]\nsource: {{kind: csv, pattern: \"x/*.csv\"}}\n"
            f"items:\n{lines}\n")


# Five resources, 11 items. Shared: R1 R2 R3 R5 (有条件/无条件); R4 不予共享; R1's legal_rep_id overrides to 不予共享.
RESOURCES = {
    "amr.enterprise": _resource("amr.enterprise", "amr", "有条件共享", "daily", [
        ("uscc", "统一社会信用代码", ""), ("name", "企业名称", ""),
        ("legal_rep_id", "法定代表人身份证号", ", level: L4, pii: id_number, share_type: 不予共享")],
        core=True, claimed="amr"),
    "psb.population": _resource("psb.population", "psb", "有条件共享", "daily", [
        ("id_number", "身份证号", ", level: L4, pii: id_number"), ("name", "姓名", ", level: L3, pii: person_name")],
        core=True),
    "hrss.insurance": _resource("hrss.insurance", "hrss", "无条件共享", "monthly", [
        ("uscc", "统一社会信用代码", ""), ("paid", "实缴金额", "")], core=True, claimed="hrss"),
    "tax.rating": _resource("tax.rating", "tax", "不予共享", "yearly", [
        ("uscc", "纳税人识别号", ""), ("rating", "纳税信用级别", "")], claimed="tax"),
    "credit.penalty": _resource("credit.penalty", "credit", "无条件共享", "weekly", [
        ("decision_no", "处罚决定书文号", ""), ("dept_uscc", "数据来源单位统一社会信用代码", "")],
        extra="department_from: dept_uscc\n"),
}


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


@pytest.fixture
def env(tmp_path: Path) -> Settings:
    cat = tmp_path / "catalog"
    (cat / "resources").mkdir(parents=True)
    (cat / "departments.yml").write_text(DEPARTMENTS, encoding="utf-8")
    (cat / "code_lists.yml").write_text("{}\n", encoding="utf-8")
    for code, text in RESOURCES.items():
        (cat / "resources" / f"{code}.yml").write_text(text, encoding="utf-8")
    return Settings(var=tmp_path / "var", inbox=tmp_path / "inbox", catalog_dir=cat, as_of=AS_OF)


def _lake(settings: Settings) -> None:
    """ingest_log, bronze and silver of the fixture (times in UTC; Beijing is UTC+8)."""
    def log(resource, received, rows, status="landed"):
        return {"run_id": "t", "batch_id": f"{resource}-{received}", "resource": resource, "source": "f",
                "source_hash": received, "rows": rows, "status": status, "received_at": _utc(received)}
    log_append(settings, [
        log("amr.enterprise", "2026-11-19T02:00", 3),               # Beijing 11-19 → due 11-20 (Fri)
        log("amr.enterprise", "2026-11-20T01:00", 0, "skipped_already_ingested"),  # not a landing
        log("psb.population", "2026-10-31T15:00", 1),
        log("psb.population", "2026-10-31T17:00", 2),
        log("psb.population", "2026-11-16T20:00", 1),               # Beijing 11-17 → due 11-18
        log("psb.population", "2026-11-19T20:00", 0, "landing"),    # no outcome: not a landing
        log("hrss.insurance", "2026-10-25T03:00", 2),               # monthly → due 11-25
        log("credit.penalty", "2026-11-10T01:00", 4),               # weekly → due 11-17
        log("credit.penalty", "2026-11-18T01:00", 0, "rejected"),
    ], run_id="t")

    def bronze(slug, rows):
        cols = sorted({k for r in rows for k in r} - {"_received_at"})
        table = pa.table({**{c: pa.array([r.get(c) for r in rows], pa.string()) for c in cols},
                          "_received_at": pa.array([_utc(r["_received_at"]) for r in rows],
                                                   pa.timestamp("us", tz="UTC"))})
        storage.write_table(storage.table_path(settings, "bronze", slug), table, mode="append", run_id="t")

    bronze("amr_enterprise", [{"uscc": f"u{i}", "_received_at": "2026-11-19T02:00"} for i in range(3)])
    bronze("psb_population", [{"id_number": "a", "_received_at": "2026-10-31T15:00"},   # Beijing 10-31 23:00
                              {"id_number": "b", "_received_at": "2026-10-31T17:00"},   # Beijing 11-01 01:00
                              {"id_number": "c", "_received_at": "2026-10-31T17:00"},
                              {"id_number": "d", "_received_at": "2026-11-16T20:00"}])
    bronze("hrss_insurance", [{"uscc": f"u{i}", "_received_at": "2026-10-25T03:00"} for i in range(2)])
    bronze("credit_penalty", [{"decision_no": "p1", "dept_uscc": AMR_USCC, "_received_at": "2026-11-10T01:00"},
                              {"decision_no": "p2", "dept_uscc": f" {AMR_USCC.lower()} ",
                               "_received_at": "2026-11-10T01:00"},
                              {"decision_no": "p3", "dept_uscc": PSB_USCC, "_received_at": "2026-11-10T01:00"},
                              {"decision_no": "p4", "dept_uscc": "BAD", "_received_at": "2026-11-10T01:00"}])
    for slug, n in {"amr_enterprise": 3, "psb_population": 2, "credit_penalty": 2}.items():
        storage.write_table(storage.table_path(settings, "silver", slug), pa.table({"k": [str(i) for i in range(n)]}),
                            mode="overwrite", run_id="t")


MATTERS = {
    "事项": [["事项编码", "事项名称", "事项类型", "实施部门"],
           ["M1", "企业开办", "行政许可", "amr"],
           ["M2", "失业保险金申领", "行政给付", "市人力资源和社会保障局"]],   # by name → hrss
    "表单字段": [["事项编码", "表单名称", "字段名称", "数据项", "备注"],
             ["M1", "申请书", "企业名称", "amr.enterprise.name", None],          # shared
             ["M1", "申请书", "法定代表人身份证号", "amr.enterprise.legal_rep_id", None],  # item 不予共享
             ["M1", "申请书", "经营范围", None, "申请人填写"],
             ["M1", "申请书", "纳税信用", "tax.rating.rating", None],            # resource 不予共享
             ["M2", "登记表", "姓名", "psb.population.name", None],              # shared
             ["M2", "登记表", "身份证号", "psb.population.id_number", None],     # shared
             ["M2", "登记表", "银行卡号", None, None]],
    "证明材料": [["事项编码", "材料名称", "数据项", "电子证照", "备注"],
             ["M1", "营业执照", None, "L1", None],                                # e-licence: shared
             ["M1", "身份证明", "amr.enterprise.uscc;amr.enterprise.legal_rep_id", None, None],  # one not shared
             ["M1", "公司章程", None, None, None],
             ["M2", "参保证明", "hrss.insurance.uscc；hrss.insurance.paid", None, None],  # shared
             ["M2", "离职证明", None, None, None]],
    "电子证照": [["证照编码", "证照名称", "发证部门"], ["L1", "营业执照", "amr"]],
}
REQUEST_HEADER = "申请编号,申请部门,资源代码,申请共享类型,申请时间,答复时间,答复结果,是否有效,备注"
REQUESTS = [  # deadlines: the 10th working day after the request date (2026 State Council calendar)
    # R-001: deadline 10-19 (国庆 10-01..07 off, Saturday 10-10 调休 working): on time
    "R-001,tax,amr.enterprise,有条件共享,2026-09-29 10:00,2026-10-19 16:00,同意,是,",
    "R-002,市公安局,hrss.insurance,有条件共享,2026-10-09 09:00,2026-10-26 10:00,同意,是,",  # deadline 10-22: late
    "R-003,amr,psb.population,有条件共享,2026-11-02,2026-11-05 11:00,驳回,是,",          # deadline 11-16: on time
    "R-004,hrss,credit.penalty,无条件共享,2026/11/3 09:00,2026-11-04 09:00,同意,是,",    # not 有条件
    "R-005,hrss,amr.enterprise,有条件共享,2026-11-04 09:00,,待答复,是,",                # deadline 11-18 < as-of: late
    "R-006,tax,psb.population,有条件共享,2026-11-16 09:00,,待答复,是,",                 # deadline 11-30: not due
    "R-007,psb,amr.enterprise,有条件共享,2026-11-05 09:00,2026-11-06 09:00,同意,否,重复",  # invalid: left out
    "R-008,amr,hrss.insurance,有条件共享,2026-11-06 09:00,,撤回,是,",                  # withdrawn
    "R-009,psb,amr.enterprise,有条件共享,2026-12-28 14:00,2027-01-08 10:00,同意,是,",  # deadline 2027-01-11, guessed
]


def _write_matters(path: Path, sheets: dict[str, list[list]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    book.save(path)


def _write_requests(path: Path, rows: list[str], header: str = REQUEST_HEADER) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8-sig")


def _values(kpis, kpi_id):
    kpi = next(k for k in kpis if k.id == kpi_id)
    return {(v.scope, v.period): (v.numerator, v.denominator, v.value, v.provisional) for v in kpi.values}


def test_kpis_on_hand_built_fixture_equal_hand_computed_values(env):
    _lake(env)
    # 认领/挂载 steps: amr mounts its (YAML-claimed) resource before the as-of date; psb claims and
    # mounts its resource the day after it (Beijing time), so neither step counts as of 11-20
    for action, code, dept, at in (("mount", "amr.enterprise", "amr", "2026-11-19T02:00"),
                                   ("claim", "psb.population", "psb", "2026-11-20T16:00"),
                                   ("mount", "psb.population", "psb", "2026-11-20T17:00")):
        claim_step(action, code, settings=env, department=dept, by=f"{dept}-01", reason="t", run_id="c",
                   now=_utc(at))
    _write_matters(matters_path(env), MATTERS)
    _write_requests(requests_path(env), REQUESTS)
    kpis = sharing_kpis(env)

    # 共享率 by resource: shared R1 amr, R2 psb, R3 hrss, R5 credit; R4 tax 不予共享 → 4/5
    assert _values(kpis, "sharing.share_rate") == {
        ("all", SNAP): (4, 5, 0.8, False), ("amr", SNAP): (1, 1, 1.0, False), ("credit", SNAP): (1, 1, 1.0, False),
        ("hrss", SNAP): (1, 1, 1.0, False), ("psb", SNAP): (1, 1, 1.0, False), ("tax", SNAP): (0, 1, 0.0, False)}
    # by data item: 3+2+2+2+2 = 11 items; not shared: amr legal_rep_id (override), tax's 2 → 8/11
    items = _values(kpis, "sharing.item_share_rate")
    assert items[("all", SNAP)] == (8, 11, 8 / 11, False)
    assert items[("amr", SNAP)] == (2, 3, 2 / 3, False)
    assert items[("tax", SNAP)] == (0, 2, 0.0, False)
    # 汇聚率: core R1 (fresh, silver 3 rows) ✓, R2 (due 11-18, overdue) ✗, R3 (fresh but no silver) ✗ → 1/3
    assert _values(kpis, "sharing.aggregation_rate") == {
        ("all", SNAP): (1, 3, 1 / 3, False), ("amr", SNAP): (1, 1, 1.0, False),
        ("hrss", SNAP): (0, 1, 0.0, False), ("psb", SNAP): (0, 1, 0.0, False)}
    # 表格字段: 7 fields; shared 企业名称 (amr), 姓名, 身份证号 (hrss) → 3/7; amr 1/4, hrss 2/3
    assert _values(kpis, "sharing.form_field_share_rate") == {
        ("all", SNAP): (3, 7, 3 / 7, False), ("amr", SNAP): (1, 4, 0.25, False), ("hrss", SNAP): (2, 3, 2 / 3, False)}
    # 证明材料: 5; shared 营业执照 (e-licence, amr), 参保证明 (hrss) → 2/5; amr 1/3, hrss 1/2
    assert _values(kpis, "sharing.material_share_rate") == {
        ("all", SNAP): (2, 5, 0.4, False), ("amr", SNAP): (1, 3, 1 / 3, False), ("hrss", SNAP): (1, 2, 0.5, False)}
    # 归集量 (bronze, Beijing month): 2026-10: psb 1 (10-31 23:00) + hrss 2 = 3;
    # 2026-11: amr 3 + credit rows of amr 2 (one needs trim/upper) = 5, psb 3 + credit row of psb 1 = 4,
    # unresolved 1 → 5 + 4 + 1 = 10
    assert _values(kpis, "sharing.rows_landed") == {
        ("all", "2026-10"): (None, None, 3, False), ("hrss", "2026-10"): (None, None, 2, False),
        ("psb", "2026-10"): (None, None, 1, False),
        ("all", "2026-11"): (None, None, 10, False), ("amr", "2026-11"): (None, None, 5, False),
        ("psb", "2026-11"): (None, None, 4, False), ("unresolved", "2026-11"): (None, None, 1, False)}
    # freshness = as-of − due: amr 11-20 − 11-20 = 0; psb 11-20 − 11-18 = 2; hrss 11-20 − 11-25 = −5;
    # credit 11-20 − (11-10 + 7) = 3; tax never landed: due 2024-03-01 + 1 year = 2025-03-01 → 365 + 264 = 629
    assert _values(kpis, "sharing.freshness") == {
        ("amr.enterprise", SNAP): (None, None, 0, False), ("psb.population", SNAP): (None, None, 2, False),
        ("hrss.insurance", SNAP): (None, None, -5, False), ("credit.penalty", SNAP): (None, None, 3, False),
        ("tax.rating", SNAP): (None, None, 629, True)}
    # 认领 (seeded from the YAML: amr, hrss, tax; psb's claim is after the as-of date) → 3/5;
    # 挂载 (recorded mount as of 11-20 and rows in the mounted table): amr only → 1/5 (silver of psb and
    # credit has rows, but neither is mounted as of 11-20)
    claim, mount = _values(kpis, "sharing.claim_rate"), _values(kpis, "sharing.mount_rate")
    assert claim[("all", SNAP)] == (3, 5, 0.6, False) and claim[("psb", SNAP)] == (0, 1, 0.0, False)
    assert mount[("all", SNAP)] == (1, 5, 0.2, False) and mount[("amr", SNAP)] == (1, 1, 1.0, False)
    assert mount[("psb", SNAP)] == (0, 1, 0.0, False) and mount[("credit", SNAP)] == (0, 1, 0.0, False)
    # 需求满足率 (valid only; by provider of the resource and quarter of 申请时间):
    # Q3: R-001 同意 → 1/1.  Q4: R-002 ✓ R-003 ✗ R-004 ✓ R-005 ✗(待答复) R-006 ✗(待答复) R-008 ✗ R-009 ✓ → 3/7,
    # provisional while 待答复; amr R-005 ✗ R-009 ✓ → 1/2; hrss R-002 ✓ R-008 ✗ → 1/2; psb 0/2; credit 1/1
    assert _values(kpis, "sharing.request_fulfilment_rate") == {
        ("all", "2026-Q3"): (1, 1, 1.0, False), ("amr", "2026-Q3"): (1, 1, 1.0, False),
        ("all", "2026-Q4"): (3, 7, 3 / 7, True), ("amr", "2026-Q4"): (1, 2, 0.5, True),
        ("credit", "2026-Q4"): (1, 1, 1.0, False), ("hrss", "2026-Q4"): (1, 2, 0.5, False),
        ("psb", "2026-Q4"): (0, 2, 0.0, True)}
    # 10 working days (有条件, valid, not withdrawn): Q3 R-001 ✓ → 1/1.  Q4: R-002 ✗, R-003 ✓, R-005 ✗ (pending past
    # 11-18), R-006 not due, R-009 ✓ with a 2027 deadline (provisional) → 2/4; amr 1/2, hrss 0/1, psb 1/1
    assert _values(kpis, "sharing.conditional_answer_rate") == {
        ("all", "2026-Q3"): (1, 1, 1.0, False), ("amr", "2026-Q3"): (1, 1, 1.0, False),
        ("all", "2026-Q4"): (2, 4, 0.5, True), ("amr", "2026-Q4"): (1, 2, 0.5, True),
        ("hrss", "2026-Q4"): (0, 1, 0.0, False), ("psb", "2026-Q4"): (1, 1, 1.0, False)}

    by_id = {k.id: k.with_target_status() for k in kpis}
    assert by_id["sharing.share_rate"].below_target() == ["tax"]                       # 0 < 90%
    assert by_id["sharing.freshness"].below_target() == ["credit.penalty", "psb.population", "tax.rating"]
    assert by_id["sharing.aggregation_rate"].target == 0.8 and by_id["sharing.form_field_share_rate"].target == 0.6
    assert all(k.definition_zh and k.definition_en and k.inputs and k.period for k in kpis)


def test_without_the_bureau_files_the_kpis_on_them_have_no_values(env):
    kpis = {k.id: k for k in sharing_kpis(env)}
    assert kpis["sharing.form_field_share_rate"].values == ()
    assert kpis["sharing.request_fulfilment_rate"].values == ()
    assert "missing" in kpis["sharing.material_share_rate"].inputs[0]
    assert kpis["sharing.share_rate"].values[0].value == 0.8  # catalog KPIs still computed


def test_due_dates_per_update_cycle():
    cal = WorkdayCalendar()
    assert next_due(D("2026-10-09"), "daily", cal) == (D("2026-10-10"), False)   # Saturday 调休 working day
    assert next_due(D("2026-09-30"), "realtime", cal) == (D("2026-10-08"), False)  # over 国庆
    assert next_due(D("2026-12-31"), "daily", cal) == (D("2027-01-01"), True)   # 2027 not covered: Mon–Fri guess
    assert next_due(D("2026-01-31"), "monthly", cal) == (D("2026-02-28"), False)
    assert next_due(D("2026-11-30"), "quarterly", cal) == (D("2027-02-28"), False)
    assert add_months(D("2024-02-29"), 12) == D("2025-02-28")


def _problems(exc: pytest.ExceptionInfo) -> list[str]:
    return exc.value.problems


def test_bad_service_matter_list_names_file_sheet_row_and_rule(env):
    from govlake.catalog import get_catalog

    bad = {
        "事项": [["事项编码", "事项名称", "事项类型", "实施部门"],
               ["M1", "企业开办", "行政许可", "amr"],
               ["M2", None, "行政许可", "amr"],
               ["M3", "某事项", "审批", "amr"],
               ["M4", "某事项", "公共服务", "不存在的局"],
               ["M1", "重复", "公共服务", "amr"]],
        "表单字段": [["事项编码", "表单名称", "字段名称", "数据项"],
                 ["M1", "申请书", "企业名称", "amr.enterprise.nope"],
                 ["M1", "申请书", "空气质量", "ee.air.aqi"],
                 ["M9", "申请书", "姓名", "psb.population.name"],
                 ["M1", "申请书", "住所", "住所"],
                 ["M1", "申请书", "企业名称", None]],
        "证明材料": [["事项编码", "材料名称", "数据项", "电子证照"],
                 ["M1", "营业执照", None, "L9"],
                 ["M1", "身份证明", "psb.population.name", "L1"]],
        "电子证照": [["证照编码", "证照名称", "发证部门"], ["L1", "营业执照", "amr"]],
    }
    path = matters_path(env)
    _write_matters(path, bad)
    with pytest.raises(SharingInputError) as exc:
        load_service_matters(path, get_catalog(env.catalog_dir))
    assert _problems(exc) == [
        f"{path}:事项:3: matter.required: 事项名称: Input should be a valid string",
        f"{path}:事项:4: matter.format: 事项类型: Input should be '行政许可', '行政确认', '行政给付', '行政裁决', "
        "'行政征收', '公共服务' or '其他行政权力' (got '审批')",
        f"{path}:事项:5: matter.department_known: unknown department '不存在的局'",
        f"{path}:事项:6: matter.unique: M1 is listed twice",
        f"{path}:表单字段:2: field.item_known: amr.enterprise.nope: resource amr.enterprise has no item 'nope'",
        f"{path}:表单字段:3: field.item_known: ee.air.aqi: unknown resource 'ee.air'",
        f"{path}:表单字段:4: field.matter_known: 事项编码 M9 is not on the 事项 sheet",
        f"{path}:表单字段:5: field.format: 数据项: String should match pattern "
        "'^[a-z]+\\.[a-z_]+\\.[a-z][a-z0-9_]*$' (got '住所')",
        f"{path}:表单字段:6: field.unique: field 企业名称 of form 申请书 (M1) is listed twice",
        f"{path}:证明材料:2: material.licence_known: e-licence 'L9' is not on the 电子证照 sheet",
        f"{path}:证明材料:3: material.one_mapping: give 数据项 or 电子证照, not both",
    ]


def test_missing_sheet_or_column_is_reported(env):
    from govlake.catalog import get_catalog

    sheets = {k: v for k, v in MATTERS.items() if k != "电子证照"}
    sheets["表单字段"] = [["事项编码", "表单名称", "字段"], ["M1", "申请书", "企业名称"]]
    path = matters_path(env)
    _write_matters(path, sheets)
    with pytest.raises(SharingInputError) as exc:
        load_service_matters(path, get_catalog(env.catalog_dir))
    problems = _problems(exc)
    assert problems[0] == (f"{path}:电子证照: sheet: missing sheet 电子证照; "
                           "the workbook has ['事项', '表单字段', '证明材料']")
    assert problems[1].startswith(f"{path}:表单字段:1: columns: missing column(s) 字段名称, 数据项;")
    assert problems[2] == f"{path}:证明材料:2: material.licence_known: e-licence 'L1' is not on the 电子证照 sheet"
    assert len(problems) == 3


def test_bad_request_log_names_file_row_and_rule(env):
    from govlake.catalog import get_catalog

    path = requests_path(env)
    _write_requests(path, [
        "R-1,amr,ee.air,有条件共享,2026-11-02 09:00,2026-11-03 09:00,同意,是,",
        "R-2,amr,psb.population,有条件共享,2026-11-02 09:00,2026-11-01 09:00,驳回,是,",
        "R-3,amr,psb.population,有条件共享,2026-11-02 09:00,,同意,是,",
        "R-4,amr,psb.population,有条件共享,11/02/2026,,待答复,是,",
        "R-5,amr,psb.population,有条件共享,2026-11-02,,待答复,Y,",
        "R-1,某局,psb.population,有条件共享,2026-11-02,,待答复,是,",
        ",amr,psb.population,不予共享,2026-11-02,,待答复,是,",
    ])
    with pytest.raises(SharingInputError) as exc:
        load_requests(path, get_catalog(env.catalog_dir))
    assert _problems(exc) == [
        f"{path}:2: request.resource_known: unknown resource 'ee.air'",
        f"{path}:3: request.answer_order: 答复时间 2026-11-01 09:00 is before 申请时间 2026-11-02 09:00",
        f"{path}:4: request.answer_time: 答复结果 同意 needs 答复时间",
        f"{path}:5: request.format: 申请时间: not a date or date and time like 2026-10-09 or 2026-10-09 14:30 "
        "(got '11/02/2026')",
        f"{path}:6: request.format: 是否有效: 是否有效 must be 是 or 否 (got 'Y')",
        f"{path}:7: request.unique: 申请编号 R-1 is listed twice",
        f"{path}:7: request.department_known: unknown department '某局'",
        f"{path}:8: request.required: 申请编号: Input should be a valid string",
        f"{path}:8: request.format: 申请共享类型: Input should be '无条件共享' or '有条件共享' (got '不予共享')",
    ]


def test_generated_demo_city_set_validates_and_yields_kpis(tmp_path):
    from govlake.catalog import get_catalog
    from govlake.generate import generate_city

    inbox = tmp_path / "inbox"
    generate_city(inbox, scale=200, seed=7)
    settings = Settings(var=tmp_path / "var", inbox=inbox, as_of=D("2026-11-20"))
    catalog = get_catalog(settings.catalog_dir)
    matters = load_service_matters(matters_path(settings), catalog)
    log = load_requests(requests_path(settings), catalog)
    assert len(matters.matters) >= 10 and len(log.requests) == 30  # max(30, 200 // 50)
    mapped = [f.item for f in matters.fields if f.item] + [r for m in matters.materials for r in m.items]
    assert mapped and all(ref.rsplit(".", 1)[0] in catalog.resources for ref in mapped)
    kpis = {k.id: k for k in sharing_kpis(settings)}
    for kpi_id in ("sharing.form_field_share_rate", "sharing.material_share_rate",
                   "sharing.request_fulfilment_rate", "sharing.conditional_answer_rate"):
        whole = [v for v in kpis[kpi_id].values if v.scope == "all"]
        assert whole and all(v.denominator and 0 <= v.value <= 1 for v in whole), kpi_id
    # the same seed writes the same files
    again = tmp_path / "again"
    generate_city(again, scale=200, seed=7)
    for name in ("dsj/service_matters.xlsx", "dsj/share_requests.csv"):
        assert (again / name).read_bytes() == (inbox / name).read_bytes()
