"""The big data bureau's sharing inputs for the demo city: the 事项清单 workbook and the request log.

Formats in docs/sharing-inputs.md. Services and their mappings are a fixed, hand-written list;
a mapping to a resource the catalog does not hold is written unmapped, so the set always
validates against the catalog it was generated with. Requests are drawn from ``seed``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import numpy as np

from govlake.catalog import Catalog
from govlake.generate._random import stable_id
from govlake.sharing import MATTERS_FILE, REQUESTS_FILE
from govlake.workdays import WorkdayCalendar

ID_CARD, LICENCE = "DZZZ-PSB-001", "DZZZ-AMR-001"
LICENCES = [  # 证照编码, 证照名称, 发证部门
    (ID_CARD, "居民身份证", "psb"),
    (LICENCE, "营业执照", "amr"),
    ("DZZZ-AMR-002", "食品经营许可证", "amr"),
    ("DZZZ-TRANS-001", "道路运输经营许可证", "trans"),
    ("DZZZ-HOUSING-001", "建筑业企业资质证书", "housing"),
    ("DZZZ-EMERG-001", "危险化学品经营许可证", "emerg"),
    ("DZZZ-EE-001", "排污许可证", "ee"),
]
_P, _E = "psb.population", "amr.enterprise"
_ENT = [("企业名称", f"{_E}.name"), ("统一社会信用代码", f"{_E}.uscc"), ("法定代表人", f"{_E}.legal_rep"),
        ("住所", f"{_E}.address")]
# 事项编码, 事项名称, 事项类型, 实施部门, 表单名称, [(字段名称, 数据项)], [(材料名称, 数据项 | 证照编码)]
MATTERS: list[tuple[str, str, str, str, str, list, list]] = [
    ("SX-AMR-001", "企业设立登记", "行政许可", "amr", "企业设立登记申请书",
     [("企业名称", None), ("住所", None), ("法定代表人姓名", f"{_P}.name"), ("法定代表人身份证号", f"{_P}.id_number"),
      ("联系电话", f"{_P}.mobile"), ("注册资本", None), ("经营范围", None)],
     [("法定代表人身份证件", ID_CARD), ("住所使用证明", None), ("公司章程", None)]),
    ("SX-AMR-002", "食品经营许可", "行政许可", "amr", "食品经营许可申请书",
     [*_ENT, ("经营场所", None), ("主体业态", None)],
     [("营业执照", LICENCE), ("法定代表人身份证明", f"{_P}.id_number;{_P}.name"), ("食品安全管理制度", None)]),
    ("SX-AMR-003", "企业变更登记", "行政许可", "amr", "企业变更登记申请书",
     [("统一社会信用代码", f"{_E}.uscc"), ("企业名称", f"{_E}.name"), ("原住所", f"{_E}.address"),
      ("变更后住所", None), ("变更事项", None)],
     [("营业执照", LICENCE), ("股东会变更决议", None)]),
    ("SX-HRSS-001", "单位参保登记", "公共服务", "hrss", "社会保险登记表",
     [*_ENT, ("行业代码", f"{_E}.industry_code"), ("开户银行", None), ("银行账号", None)],
     [("营业执照", LICENCE), ("法定代表人身份证", ID_CARD)]),
    ("SX-HRSS-002", "失业保险金申领", "行政给付", "hrss", "失业保险金申领登记表",
     [("姓名", f"{_P}.name"), ("身份证号", f"{_P}.id_number"), ("性别", f"{_P}.sex"),
      ("出生日期", f"{_P}.birth_date"), ("户籍地", f"{_P}.hukou_region"), ("联系电话", f"{_P}.mobile"),
      ("原单位名称", "hrss.social_insurance.name"), ("失业原因", None), ("银行卡号", None)],
     [("居民身份证", ID_CARD), ("解除劳动合同证明", None),
      ("单位参保缴费证明", "hrss.social_insurance.uscc;hrss.social_insurance.paid_amount")]),
    ("SX-TAX-001", "纳税信用复评", "行政确认", "tax", "纳税信用复评申请表",
     [("纳税人识别号", "tax.credit_rating.uscc"), ("纳税人名称", "tax.credit_rating.name"),
      ("评价年度", "tax.credit_rating.year"), ("原评价级别", "tax.credit_rating.rating"), ("复评理由", None)],
     [("复评申请书", None), ("营业执照", LICENCE)]),
    ("SX-HOUSING-001", "建筑业企业资质核准", "行政许可", "housing", "建筑业企业资质申请表",
     [*_ENT, ("注册资本", f"{_E}.reg_capital"), ("成立日期", f"{_E}.established"), ("技术负责人", None),
      ("申请资质类别", None)],
     [("营业执照", LICENCE), ("无行政处罚证明", "credit.penalty.uscc;credit.penalty.penalty_category"),
      ("纳税信用证明", "tax.credit_rating.uscc;tax.credit_rating.rating"),
      ("社保缴纳证明", "hrss.social_insurance.uscc;hrss.social_insurance.paid_amount"), ("技术人员职称证书", None)]),
    ("SX-TRANS-001", "道路货物运输经营许可", "行政许可", "trans", "道路货物运输经营申请表",
     [*_ENT, ("车辆数", None), ("驾驶人员数", None)],
     [("营业执照", LICENCE), ("负责人身份证明", ID_CARD), ("车辆行驶证", None), ("安全生产管理制度", None)]),
    ("SX-EMERG-001", "危险化学品经营许可", "行政许可", "emerg", "危险化学品经营许可申请书",
     [*_ENT, ("经营场所", None), ("储存设施", None)],
     [("营业执照", LICENCE), ("安全评价报告", None), ("主要负责人安全合格证", None),
      ("非失信被执行人证明", "court.dishonest.uscc")]),
    ("SX-PSB-001", "户籍证明开具", "公共服务", "psb", "户籍证明申请表",
     [("姓名", f"{_P}.name"), ("身份证号", f"{_P}.id_number"), ("户籍地", f"{_P}.hukou_region"),
      ("住址", f"{_P}.address"), ("证明用途", None)],
     [("居民身份证", ID_CARD), ("户口簿", f"{_P}.id_number;{_P}.hukou_region")]),
    ("SX-CREDIT-001", "信用修复申请", "公共服务", "credit", "信用修复申请表",
     [("行政相对人名称", "credit.penalty.subject_name"), ("统一社会信用代码", "credit.penalty.uscc"),
      ("行政处罚决定书文号", "credit.penalty.decision_no"), ("处罚机关", "credit.penalty.authority"),
      ("处罚决定日期", "credit.penalty.decision_date"), ("修复理由", None)],
     [("信用修复承诺书", None), ("营业执照", LICENCE)]),
]
MIN_REQUESTS = 30
RECENT = 4
"""Requests in the last two weeks before as_of."""
ANSWER_DAYS = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15])
ANSWER_WEIGHTS = np.array([3, 6, 8, 8, 8, 7, 6, 5, 4, 4, 3, 2], dtype=float)
"""Working days from request to answer: most within 10, some late."""


def write_sharing_inputs(out: Path, *, catalog: Catalog, seed: int, as_of: dt.date, scale: int) -> list[Path]:
    """Write ``dsj/service_matters.xlsx`` and ``dsj/share_requests.csv`` under ``out``; return their paths."""
    matters, requests = out / MATTERS_FILE, out / REQUESTS_FILE
    matters.parent.mkdir(parents=True, exist_ok=True)
    _write_matters(matters, catalog, as_of)
    requests.write_bytes(_requests_csv(catalog, seed=seed, as_of=as_of, n=max(MIN_REQUESTS, scale // 50)))
    return [matters, requests]


def _known(catalog: Catalog, refs: str | None) -> str | None:
    """``refs`` when every item it names is in the catalog, else None (written unmapped)."""
    if refs is None or refs.startswith("DZZZ-"):
        return refs
    for ref in refs.split(";"):
        code, column = ref.rsplit(".", 1)
        res = catalog.resources.get(code)
        if res is None or column not in {i.column for i in res.items}:
            return None
    return refs


def _write_matters(path: Path, catalog: Catalog, as_of: dt.date) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    book.set_properties({"created": dt.datetime.combine(as_of, dt.time(9)), "author": "govlake generate"})
    bold = book.add_format({"bold": True})
    sheets: dict[str, list[list]] = {
        "事项": [["事项编码", "事项名称", "事项类型", "实施部门"]],
        "表单字段": [["事项编码", "表单名称", "字段名称", "数据项", "备注"]],
        "证明材料": [["事项编码", "材料名称", "数据项", "电子证照", "备注"]],
        "电子证照": [["证照编码", "证照名称", "发证部门"]],
    }
    for code, name, kind, dept, form, fields, materials in MATTERS:
        sheets["事项"].append([code, name, kind, catalog.departments[dept].name])
        for field, ref in fields:
            ref = _known(catalog, ref)
            sheets["表单字段"].append([code, form, field, ref, None if ref else "申请人填写"])
        for material, ref in materials:
            ref = _known(catalog, ref)
            licence = ref if ref and ref.startswith("DZZZ-") else None
            items = None if licence else ref
            sheets["证明材料"].append([code, material, items, licence, None if ref else "申请人提交"])
    for code, name, dept in LICENCES:
        sheets["电子证照"].append([code, name, catalog.departments[dept].name])
    for title, rows in sheets.items():
        sheet = book.add_worksheet(title)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is not None:
                    sheet.write_string(r, c, value, bold if r == 0 else None)
    book.close()


def _requests_csv(catalog: Catalog, *, seed: int, as_of: dt.date, n: int) -> bytes:
    rng = np.random.default_rng([seed, stable_id("sharing-requests")])
    workdays = WorkdayCalendar()
    resources = sorted(catalog.resources.values(), key=lambda r: r.code)
    departments = sorted(d for d in catalog.departments if d != "dsj")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(["申请编号", "申请部门", "资源代码", "申请共享类型", "申请时间", "答复时间", "答复结果",
                     "是否有效", "共享用途", "共享数据项", "备注"])
    # within the half year before as_of, oldest first; the last few recent enough to be still 待答复
    days = np.sort(np.concatenate([rng.integers(15, 181, n - RECENT), rng.integers(1, 15, RECENT)]))[::-1]
    for k, back in enumerate(days):
        res = resources[rng.integers(len(resources))]
        dept = str(rng.choice([d for d in departments if d != res.provider]))
        requested = dt.datetime.combine(as_of - dt.timedelta(days=int(back)),
                                        dt.time(int(rng.integers(8, 18)), int(rng.integers(0, 60))))
        asked = "无条件共享" if res.share_type == "无条件共享" else "有条件共享"
        valid = rng.random() >= 0.08
        draw = rng.random()
        outcome = "同意" if draw < 0.80 else "驳回" if draw < 0.95 else "撤回"
        wait = int(rng.choice(ANSWER_DAYS, p=ANSWER_WEIGHTS / ANSWER_WEIGHTS.sum()))
        answered_on = workdays.add_workdays(requested.date(), wait).date
        answered: dt.datetime | None = dt.datetime.combine(answered_on, dt.time(int(rng.integers(9, 17)), 30))
        if answered_on > as_of and outcome != "撤回":
            outcome, answered = "待答复", None
        elif outcome == "撤回":
            answered = None
        note = "" if valid else "重复申请"
        purpose, items = _grant(catalog, dept, res) if asked == "有条件共享" else ("", "")
        writer.writerow([f"GX{requested:%Y%m%d}{k + 1:04d}", catalog.departments[dept].name, res.code, asked,
                         f"{requested:%Y-%m-%d %H:%M}", f"{answered:%Y-%m-%d %H:%M}" if answered else "",
                         outcome, "是" if valid else "否", purpose, items, note])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _grant(catalog: Catalog, dept: str, res) -> tuple[str, str]:
    """共享用途 and 共享数据项 of a conditional request: at most six of the resource's items that are not
    personal data, its key first among them when it is not (what a department is granted for checking a subject)."""
    items = [i.column for i in res.items if i.pii is None and (i.column in res.key or i.level in ("L1", "L2"))]
    return f"{catalog.departments[dept].name}履职核验", ";".join(items[:6])
