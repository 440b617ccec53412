"""The sharing KPIs the plans set (docs/domain.md), as a provider of the KPI registry.

:func:`sharing_kpis` reads the catalog, the lake (meta/ingest_log, bronze, silver) and the bureau's
two inputs under the inbox (``dsj/service_matters.xlsx``, ``dsj/share_requests.csv``); the
figures come from :func:`compute_sharing_kpis`, which does no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from govlake.catalog import Catalog, get_catalog
from govlake.config import Settings
from govlake.governance import claim_states
from govlake.kpi import Kpi, KpiValue
from govlake.sharing._lake import LakeFacts, read_lake
from govlake.sharing._matters import SHARED, ServiceMatters, item_shared, load_service_matters
from govlake.sharing._requests import ANSWERED, FULFILLED, RequestLog, load_requests
from govlake.sharing._schedule import freshness
from govlake.workdays import WorkdayCalendar

MATTERS_FILE = "dsj/service_matters.xlsx"
"""The 事项清单 workbook, under the inbox (the big data bureau's own folder)."""
REQUESTS_FILE = "dsj/share_requests.csv"
"""The 共享申请记录 log, under the inbox."""
ANSWER_WORKDAYS = 10
"""A request for 有条件共享 data is answered within this many working days (Shandong rule)."""
ALL = "all"


def matters_path(settings: Settings) -> Path:
    return settings.city / MATTERS_FILE


def requests_path(settings: Settings) -> Path:
    return settings.city / REQUESTS_FILE


def sharing_kpis(settings: Settings) -> list[Kpi]:
    """The sharing KPIs as of ``settings.today`` (the KPI registry's provider).

    A missing 事项清单 or request log leaves the KPIs built on it without values; an invalid one
    raises :class:`~govlake.sharing.SharingInputError` naming file, row and rule.
    """
    catalog = get_catalog(settings.catalog_dir)
    m_path, r_path = matters_path(settings), requests_path(settings)
    matters = load_service_matters(m_path, catalog) if m_path.is_file() else None
    requests = load_requests(r_path, catalog) if r_path.is_file() else None
    return compute_sharing_kpis(catalog, read_lake(settings, catalog), matters, requests,
                                as_of=settings.today, workdays=WorkdayCalendar())


@dataclass
class _Tally:
    num: int = 0
    den: int = 0
    provisional: bool = False

    def add(self, hit: bool, *, provisional: bool = False) -> None:
        self.num += hit
        self.den += 1
        self.provisional = self.provisional or provisional


def _ratios(pairs: Iterable[tuple[str, str, bool, bool]]) -> tuple[KpiValue, ...]:
    """(scope, period, hit, provisional) per counted thing → one ratio per period for ``all`` and per scope."""
    tallies: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    for scope, period, hit, provisional in pairs:
        for s in (ALL, scope):
            tallies[(s, period)].add(hit, provisional=provisional)
    order = sorted(tallies, key=lambda k: (k[1], k[0] != ALL, k[0]))
    return tuple(KpiValue(scope=s, period=p, value=t.num / t.den if t.den else None, numerator=t.num,
                          denominator=t.den, provisional=t.provisional)
                 for s, p in order for t in [tallies[(s, p)]])


def compute_sharing_kpis(catalog: Catalog, lake: LakeFacts, matters: ServiceMatters | None,
                         requests: RequestLog | None, *, as_of: dt.date, workdays: WorkdayCalendar) -> list[Kpi]:
    """Every sharing KPI from already-read inputs; scopes are ``all`` and department codes (resource
    codes for freshness); snapshot periods read ``as of YYYY-MM-DD``."""
    snap = f"as of {as_of.isoformat()}"
    resources = sorted(catalog.resources.values(), key=lambda r: r.code)
    fresh = {r.code: freshness(r, lake.last_landed.get(r.code), as_of=as_of, workdays=workdays) for r in resources}
    matter_file = str(matters.path) if matters else f"<inbox>/{MATTERS_FILE} (missing)"
    request_file = str(requests.path) if requests else f"<inbox>/{REQUESTS_FILE} (missing)"
    claims = {code: c for code, c in claim_states(list(lake.claims), as_of=as_of).items() if c.department}
    kpis = [
        Kpi("sharing.share_rate", "公共数据共享率（按资源）", "Public data sharing rate (resources)",
            "共享类型为无条件共享或有条件共享的目录资源数 ÷ 目录资源总数；按提供部门分列",
            "Catalogued resources whose 共享类型 is 无条件共享 or 有条件共享 ÷ all catalogued resources; "
            "per providing department",
            ("catalog/resources/*.yml",), "snapshot of the catalog on the as-of date", "ratio", 0.9,
            values=_ratios((r.provider, snap, r.share_type in SHARED, False) for r in resources)),
        Kpi("sharing.item_share_rate", "公共数据共享率（按数据项）", "Public data sharing rate (data items)",
            "可共享的信息项数 ÷ 目录信息项总数；信息项的共享类型取其自身设定，未设定时取所属资源的共享类型",
            "Shared data items ÷ all catalogued data items; an item's 共享类型 is its own when set, else its "
            "resource's; per providing department",
            ("catalog/resources/*.yml",), "snapshot of the catalog on the as-of date", "ratio", 0.9,
            values=_ratios((r.provider, snap, r.share_type_of(i) in SHARED, False)
                           for r in resources for i in r.items)),
        Kpi("sharing.aggregation_rate", "政府履职核心业务数据汇聚率", "Core-business data aggregation rate",
            "按更新周期按时汇聚的核心业务资源数 ÷ 应汇聚的核心业务资源数（core_business）；按时 = 最近一次入湖"
            "未超过下次应到日期（见 sharing.freshness）且 silver 表有数据",
            "Core-business resources aggregated on schedule ÷ core-business resources; on schedule = the "
            "latest landing is not overdue per 更新周期 (see sharing.freshness) and silver/<resource> has rows",
            ("catalog/resources/*.yml", "meta/ingest_log", "silver/<resource>"),
            "snapshot on the as-of date", "ratio", 0.8,
            values=_ratios((r.provider, snap, fresh[r.code].fresh and lake.mounted_rows.get(r.code, 0) > 0,
                            fresh[r.code].provisional) for r in resources if r.core_business)),
        Kpi("sharing.form_field_share_rate", "表格字段共享率", "Form field sharing rate",
            "事项清单中映射到可共享目录数据项的表单字段数 ÷ 表单字段总数；按事项实施部门分列",
            "Service form fields mapped to a shared catalog data item ÷ all form fields; per implementing "
            "department",
            (matter_file, "catalog/resources/*.yml"), "snapshot of the 事项清单 on the as-of date", "ratio", 0.6,
            values=_ratios((matters.matters[f.matter].department, snap,
                            bool(f.item and item_shared(catalog, f.item)), False)
                           for f in matters.fields) if matters else ()),
        Kpi("sharing.material_share_rate", "证明材料共享率", "Proof material sharing rate",
            "可由电子证照或可共享数据项（所列数据项全部可共享）替代的证明材料数 ÷ 证明材料总数；按事项实施部门分列",
            "Proof materials replaced by an e-licence or by shared catalog data items (every item listed "
            "shared) ÷ all proof materials; per implementing department",
            (matter_file, "catalog/resources/*.yml"), "snapshot of the 事项清单 on the as-of date", "ratio", 0.7,
            values=_ratios((matters.matters[m.matter].department, snap, _material_shared(catalog, m), False)
                           for m in matters.materials) if matters else ()),
        Kpi("sharing.rows_landed", "数据归集量", "Rows aggregated",
            "按部门、按入湖月份（北京时间）统计落入 bronze 的行数；多部门资源按数据来源单位统一社会信用代码归属部门"
            "（无法识别的记为 unresolved）",
            "Rows landed in bronze per department and month of landing (Beijing time); rows of multi-"
            "department resources go to the department of their 数据来源单位统一社会信用代码 (unresolved if unknown)",
            ("bronze/<resource>", "catalog/departments.yml"), "calendar month of landing", "rows", None,
            values=_volumes(lake)),
        Kpi("sharing.freshness", "数据更新及时性（距应更新日天数）", "Freshness (days past due)",
            "截至统计日距下次应更新日期的天数：>0 为逾期天数，≤0 为按时；应更新日 = 最近一次入湖日 + 更新周期"
            "（实时/每日：下一个工作日；每周：7 天；每月/季/年：1/3/12 个月）；从未入湖的从目录发布日期起算（暂定）",
            "as_of − due in days (> 0: overdue, ≤ 0: on time); due = last landing (meta/ingest_log) + 更新周期 "
            "(realtime/daily: next working day; weekly: 7 days; monthly/quarterly/yearly: 1/3/12 months); a "
            "resource that never landed is counted from its 发布日期 (provisional)",
            ("catalog/resources/*.yml", "meta/ingest_log"), "snapshot on the as-of date", "days", 0,
            target_direction="max",
            values=tuple(KpiValue(scope=f.resource, period=snap, value=f.days_overdue, provisional=f.provisional)
                         for f in fresh.values())),
        Kpi("sharing.claim_rate", "目录认领率", "Catalog claim coverage",
            "统计日（北京时间）结束时由责任部门认领的目录资源数 ÷ 目录资源总数；认领取自认领历史"
            "（meta/catalog_claims_history，目录 YAML 的 claimed_by 为初始认领）；按提供部门分列",
            "Catalogued resources claimed by a responsible department at the end of the as-of date (Beijing "
            "time) ÷ all catalogued resources; claims from the claim history (meta/catalog_claims_history, "
            "a catalog YAML claimed_by being the initial claim); per providing department",
            ("catalog/resources/*.yml", "meta/catalog_claims_history"),
            "snapshot of the claim history on the as-of date", "ratio", None,
            values=_ratios((r.provider, snap, r.code in claims, False) for r in resources)),
        Kpi("sharing.mount_rate", "目录挂载率", "Catalog mount coverage",
            "统计日（北京时间）结束时已由认领部门挂载数据、且所挂载的 silver 表现有数据的目录资源数 ÷ 目录资源总数；"
            "挂载取自认领历史；按提供部门分列",
            "Catalogued resources whose claiming department had mounted their data at the end of the as-of "
            "date (Beijing time, from the claim history) and whose mounted silver table has rows now ÷ all "
            "catalogued resources; per providing department",
            ("catalog/resources/*.yml", "meta/catalog_claims_history", "silver/<mounted table>"),
            "snapshot of the claim history on the as-of date; rows as they are now", "ratio", None,
            values=_ratios((r.provider, snap, r.code in claims and claims[r.code].state == "mounted"
                            and lake.table_rows.get(claims[r.code].mounted_table or "", 0) > 0, False)
                           for r in resources)),
    ]
    kpis += _request_kpis(catalog, requests, request_file, as_of=as_of, workdays=workdays)
    return kpis


def _material_shared(catalog: Catalog, m) -> bool:
    if m.licence:
        return True
    return bool(m.items) and all(item_shared(catalog, ref) for ref in m.items)


def _volumes(lake: LakeFacts) -> tuple[KpiValue, ...]:
    totals: dict[str, int] = defaultdict(int)
    for _dept, month, n in lake.landed_rows:
        totals[month] += n
    out = []
    for month in sorted(totals):
        out.append(KpiValue(scope=ALL, period=month, value=totals[month]))
        out.extend(KpiValue(scope=d, period=m, value=n) for d, m, n in lake.landed_rows if m == month)
    return tuple(out)


def quarter(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def _request_kpis(catalog: Catalog, log: RequestLog | None, file: str, *, as_of: dt.date,
                  workdays: WorkdayCalendar) -> list[Kpi]:
    requests = [r for r in log.requests if r.valid] if log else []
    provider: Callable[[str], str] = lambda code: catalog.resource(code).provider  # noqa: E731

    def timely():
        for r in requests:
            if r.share_type != "有条件共享" or r.outcome == "撤回":
                continue
            deadline = workdays.add_workdays(r.requested_at.date(), ANSWER_WORKDAYS)
            if r.outcome in ANSWERED:
                hit = r.answered_at.date() <= deadline.date
            elif as_of > deadline.date:  # still unanswered after the deadline: late
                hit = False
            else:  # not due yet
                continue
            yield provider(r.resource), quarter(r.requested_at.date()), hit, deadline.provisional

    return [
        Kpi("sharing.request_fulfilment_rate", "需求满足率", "Sharing request fulfilment rate",
            "答复结果为同意的有效共享申请数 ÷ 有效共享申请数（是否有效=是）；按被申请资源的提供部门、按申请时间所在季度"
            "分列；含待答复申请的数值为暂定",
            "Valid sharing requests answered 同意 ÷ valid requests (是否有效 = 是), per department providing the "
            "resource and quarter of 申请时间; provisional while requests are still 待答复",
            (file, "catalog/resources/*.yml"), "calendar quarter of the request", "ratio", None,
            values=_ratios((provider(r.resource), quarter(r.requested_at.date()), r.outcome in FULFILLED,
                            r.outcome == "待答复") for r in requests)),
        Kpi("sharing.conditional_answer_rate", "有条件共享申请按时答复率",
            "Conditional-sharing requests answered in time",
            f"申请有条件共享的有效申请中，在申请日后第 {ANSWER_WORKDAYS} 个工作日（国务院节假日安排，含调休）"
            "当日或之前答复的"
            "比例；逾期仍未答复的计为超时，未到期未答复的不计；撤回的不计",
            f"Valid requests for 有条件共享 answered on or before the {ANSWER_WORKDAYS}th working day after the "
            "request date (State Council calendar with make-up days) ÷ such requests answered or past that day "
            "unanswered (pending ones not yet due and withdrawn ones are left out); provisional where a working "
            "day fell in a year the calendar does not cover",
            (file, "catalog/resources/*.yml"), "calendar quarter of the request", "ratio", 1.0,
            values=_ratios(timely())),
    ]
