"""双公示 KPIs: 合规率 (compliance) and 及时率 (timeliness) per department per month.

- 合规率 = records passing every row rule (they reached silver) ÷ records submitted (silver +
  quarantine; duplicates of a record count once), per submitting department and month of submission
  (报送时间, else the batch's received time, Asia/Shanghai).
- 及时率 = records submitted on or before their deadline ÷ records decided, per department and month of
  the decision date, over the decisions in gold/penalty_record and gold/license_record (quarantined
  rows are measured by 合规率: their decision date may be unreadable). A month whose deadlines used a
  year no calendar covers yet is provisional.

A feed that sends no 报送时间 is judged by the time its file was received: each 及时率 value that rests
on that fallback carries a note saying so (``KpiValue.note``; ``govlake kpi`` and the report show it
next to the figure), so a low rate reads as what it is.

Both have the plans' target of 98%. In both, a record whose department cannot be resolved
(数据来源单位统一社会信用代码 not in catalog/departments.yml) counts under the scope 未识别 and in
``all``: none drops out. Its deadline is the default number of working days (the gold records flag
it with ``dept_unknown``).
"""

from __future__ import annotations

from govlake import storage
from govlake.catalog import get_catalog
from govlake.config import Settings
from govlake.kpi import Kpi, KpiValue
from govlake.layout import gold_path
from govlake.silver import register_silver

TARGET = 0.98
RESOURCES = ("credit.license", "credit.penalty")
UNKNOWN_DEPT = "未识别"


def received_time_note(by_received: int, records: int) -> str | None:
    """The note of a 及时率 value whose ``by_received`` of ``records`` had no 报送时间 (None: none)."""
    if not by_received:
        return None
    if by_received == records:
        return "无报送时间，按接收时间计 · no 报送时间: received time used"
    return (f"{by_received}/{records} 条无报送时间，按接收时间计 · {by_received} of {records} without 报送时间: "
            "received time used")


def _values(rows) -> tuple[KpiValue, ...]:
    """(scope, period, num, den, provisional[, records judged by their received time]) → values."""
    return tuple(KpiValue(scope=scope, period=period, value=(num / den if den else None), numerator=num,
                          denominator=den, provisional=bool(prov),
                          note=received_time_note(rest[0], den) if rest else None)
                 for scope, period, num, den, prov, *rest in rows)


def credit_kpis(settings: Settings) -> list[Kpi]:
    catalog = get_catalog(settings.catalog_dir)
    con = storage.connect(settings)
    try:
        register_silver(con, settings, catalog)
        submitted = []
        for code in RESOURCES:
            res = catalog.resource(code)
            submitted.append(f"""select coalesce(_dept, '{UNKNOWN_DEPT}') as dept,
                    coalesce(submitted_at, cast(_received_at at time zone 'Asia/Shanghai' as timestamp)) as submitted,
                    true as passed from silver_{res.slug}""")
            view = f"quarantine_{res.slug}"
            if storage.register(con, view, storage.table_path(settings, "quarantine", res.slug)):
                have = set(con.sql(f"select * from {view}").columns)
                if not {"_dept", "_submitted_at"} <= have:
                    raise ValueError(f"quarantine/{res.slug} predates the _dept and _submitted_at columns; "
                                     "run `govlake run --rebuild` to reprocess it")
                submitted.append(f"select coalesce(_dept, '{UNKNOWN_DEPT}') as dept, _submitted_at as submitted, "
                                 f"false as passed from {view}")
        con.execute("create temp view submissions as " + " union all ".join(submitted))
        compliance = con.execute("""
            select if(grouping(dept) = 1, 'all', dept), strftime(submitted, '%Y-%m') as period,
                   count(*) filter (where passed), count(*), false
            from submissions where submitted is not null
            group by grouping sets ((dept, period), (period)) order by period, dept nulls first""").fetchall()

        decided = []
        for table in ("penalty_record", "license_record"):
            if storage.register(con, table, storage.table_path(settings, "gold", table)):
                decided.append(f"select coalesce(_dept, '{UNKNOWN_DEPT}') as dept, decision_date, on_time, "
                               f"deadline_provisional, submitted_at is null as by_received from {table}")
        timeliness = []
        if decided:
            con.execute("create temp view decisions as " + " union all ".join(decided))
            timeliness = con.execute("""
                select if(grouping(dept) = 1, 'all', dept), strftime(decision_date, '%Y-%m') as period,
                       count(*) filter (where on_time), count(*), bool_or(deadline_provisional),
                       count(*) filter (where by_received)
                from decisions where decision_date is not null
                group by grouping sets ((dept, period), (period)) order by period, dept nulls first""").fetchall()
    finally:
        con.close()
    return [
        Kpi(id="credit.compliance_rate", name_zh="双公示合规率", name_en="双公示 compliance rate",
            definition_zh="通过全部必填、格式、代码和跨字段规则的记录数 ÷ 报送记录数（按报送部门、报送月份）",
            definition_en="Records passing every mandatory, format, code-list and cross-field rule ÷ records "
                          "submitted, per submitting department and month of submission",
            inputs=("silver/credit_license", "silver/credit_penalty", "quarantine/credit_license",
                    "quarantine/credit_penalty"),
            period="calendar month of submission (报送时间, else received; Asia/Shanghai)", unit="ratio",
            target=TARGET, values=_values(compliance)),
        Kpi(id="credit.timeliness_rate", name_zh="双公示及时率", name_en="双公示 timeliness rate",
            definition_zh="在公示期限（决定日后第N个工作日，国务院节假日安排含调休）内报送的记录数 ÷ "
                          "决定记录数（按部门、决定月份）",
            definition_en="Records submitted on or before the deadline (the n-th working day after the decision on "
                          "the State Council calendar, make-up days included; n per department in "
                          "credit_rules.yml) ÷ records decided, per department and month of the decision",
            inputs=(gold_path("penalty_record"), gold_path("license_record"), "catalog/credit_rules.yml"),
            period="calendar month of the decision date", unit="ratio", target=TARGET, values=_values(timeliness)),
    ]
