"""What is wrong now: the conditions an alert is raised for, read from the lake (docs/alerts.md).

Each detector returns :class:`Condition` values; the same condition found again has the same
``dedup_key``, so it is one alert however many checks find it. Nothing personal goes into a message
or its evidence: file names and notes pass through :func:`govlake.masking.scrub_text`, and 双公示 records
are named by their decision numbers only.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from govlake import storage
from govlake.catalog import AlertThresholds, Catalog, Resource
from govlake.config import Settings
from govlake.layout import gold_path
from govlake.masking import scrub_text

KINDS = {
    "late_feed": ("数据未按更新周期报送", "feed late per its update cycle"),
    "volume_drop": ("报送数据量骤降", "delivery far below its usual volume"),
    "held_batch": ("批次被阻断待处理", "batch held by its blocking rule"),
    "reconciliation": ("对账失败", "reconciliation failed"),
    "publicity_late": ("双公示逾期报送", "双公示 records submitted after their deadline"),
    "task_failed": ("调度任务失败", "Airflow task failed"),
    "run_overdue": ("调度运行超时", "Airflow run past its deadline"),
}
"""Alert kinds: (Chinese, English) labels. The first five are found by :func:`detect` and resolved by
the check once cleared; the Airflow ones are raised by the DAGs' callbacks and resolved by hand."""
DETECTED = ("late_feed", "volume_drop", "held_batch", "reconciliation", "publicity_late")
SEVERITIES = ("warning", "critical")
RECORDS = {"penalty_record": ("decision_no", "行政处罚"), "license_record": ("doc_no", "行政许可")}
"""双公示 gold tables: (decision number column, label)."""
EXAMPLES = 5
"""Decision numbers or files named in an alert's evidence (the rest are counted)."""


@dataclass(frozen=True)
class Condition:
    """One thing wrong, as a check (or an Airflow callback) found it."""

    kind: str
    dedup_key: str
    severity: str
    message_zh: str
    message_en: str
    resource: str | None = None
    department: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.severity not in SEVERITIES:
            raise ValueError(f"unknown alert kind {self.kind!r} or severity {self.severity!r}")
        object.__setattr__(self, "message_zh", scrub_text(self.message_zh))
        object.__setattr__(self, "message_en", scrub_text(self.message_en))

    @property
    def evidence_json(self) -> str:
        return scrub_text(json.dumps(self.evidence, ensure_ascii=False, sort_keys=True, default=str))


def detect(settings: Settings, catalog: Catalog) -> list[Condition]:
    """Every condition found in the lake as of the business date (``settings.today``)."""
    limits = catalog.defaults.alerts
    deliveries = _deliveries(settings)
    return [*late_feeds(catalog, deliveries, limits, as_of=settings.today),
            *volume_drops(catalog, deliveries, limits),
            *held_batches(settings, catalog), *failed_reconciliations(settings, catalog),
            *late_publicity(settings, limits, as_of=settings.today)]


def _rows(settings: Settings, name: str, layer: str = "meta") -> list[dict]:
    table = storage.open_table(storage.table_path(settings, layer, name))
    return [] if table is None else table.to_pyarrow_table().to_pylist()


def _deliveries(settings: Settings) -> dict[str, list[dict]]:
    """Resource → its landed deliveries (meta/ingest_log), oldest first; a batch ``unlanded`` by a
    restore is not one."""
    log = _rows(settings, "ingest_log")
    unlanded = {r["batch_id"] for r in log if r["status"] == "unlanded"}
    out: dict[str, list[dict]] = {}
    for r in sorted(log, key=lambda r: r["received_at"] or dt.datetime.min.replace(tzinfo=dt.UTC)):
        if r["status"] == "landed" and r["received_at"] is not None and r["batch_id"] not in unlanded:
            out.setdefault(r["resource"], []).append(r)
    return out


def late_feeds(catalog: Catalog, deliveries: dict[str, list[dict]], limits: AlertThresholds, *,
               as_of: dt.date) -> list[Condition]:
    """Feeds whose next delivery was due more than ``late_after_days`` ago (the sharing.freshness rule:
    the next working day for daily feeds, 7 days, 1/3/12 months; never landed: one cycle after 发布日期)."""
    from govlake.sharing import freshness
    from govlake.sharing._lake import BEIJING
    from govlake.workdays import WorkdayCalendar

    workdays, out = WorkdayCalendar(), []
    for res in sorted(catalog.resources.values(), key=lambda r: r.code):
        landed = [r for r in deliveries.get(res.code, []) if (r["rows"] or 0) > 0]
        last = landed[-1]["received_at"].astimezone(BEIJING).date() if landed else None
        f = freshness(res, last, as_of=as_of, workdays=workdays)
        if f.days_overdue <= limits.late_after_days:
            continue
        since = f"最近一次落地 {last}" if last else "从未落地"
        since_en = f"last landed {last}" if last else "never landed"
        out.append(Condition(
            "late_feed", f"late_feed:{res.code}:{f.due}", "warning",
            f"{res.name}（{res.code}，更新周期 {res.update_cycle}）应于 {f.due} 前报送，"
            f"已逾期 {f.days_overdue} 天（{since}）",
            f"{res.name_en} ({res.code}, update cycle {res.update_cycle}) was due by {f.due}: {f.days_overdue} days "
            f"overdue ({since_en})", res.code, res.provider,
            {"update_cycle": res.update_cycle, "last_landed": last, "due": f.due, "days_overdue": f.days_overdue,
             "provisional": f.provisional, "as_of": as_of}))
    return out


def stream(source: str | None) -> str:
    """The recurring file a delivery belongs to: its file name with every run of digits as ``#``
    (``credit/penalty/amr_20261120.csv`` → ``amr_#.csv``): one department's daily file, whatever the date."""
    return re.sub(r"\d+", "#", PurePosixPath((source or "").replace("\\", "/")).name)


def volume_drops(catalog: Catalog, deliveries: dict[str, list[dict]], limits: AlertThresholds) -> list[Condition]:
    """File feeds whose latest delivery of a recurring file (:func:`stream`: several departments may send
    their own files to one resource) has fewer rows than ``volume_drop_below`` × the median of the
    ``volume_history`` deliveries of that file before it. Database windows carry what changed, so they are
    not judged."""
    out = []
    for res in sorted(catalog.resources.values(), key=lambda r: r.code):
        if res.source.kind == "db":
            continue
        streams: dict[str, list[dict]] = {}
        for r in deliveries.get(res.code, []):
            streams.setdefault(stream(r["source"]), []).append(r)
        for name, landed in sorted(streams.items()):
            if len(landed) >= limits.volume_min_history + 1:
                out.extend(_volume_drop(res, name, landed, limits))
    return out


def _volume_drop(res: Resource, name: str, landed: list[dict], limits: AlertThresholds) -> list[Condition]:
    latest, before = landed[-1], landed[-1 - limits.volume_history:-1]
    usual = statistics.median(r["rows"] or 0 for r in before)
    rows = latest["rows"] or 0
    if usual <= 0 or rows >= limits.volume_drop_below * usual:
        return []
    source, name = scrub_text(latest["source"] or ""), scrub_text(name)
    return [Condition(
        "volume_drop", f"volume_drop:{res.code}:{latest['batch_id']}", "warning",
        f"{res.name}（{res.code}）最近一次报送 {source} 仅 {rows:,} 行，低于同一文件 {name} 此前 {len(before)} 次报送"
        f"中位数 {usual:,.0f} 行的 {limits.volume_drop_below:.0%}",
        f"{res.name_en} ({res.code}): the latest delivery {source} has {rows:,} rows, below "
        f"{limits.volume_drop_below:.0%} of the median {usual:,.0f} of the {len(before)} deliveries of {name} "
        "before it",
        res.code, res.provider,
        {"batch_id": latest["batch_id"], "source": source, "file": name, "rows": rows, "median": usual,
         "history": [r["rows"] for r in before], "received_at": latest["received_at"]})]


def held_batches(settings: Settings, catalog: Catalog) -> list[Condition]:
    """Batches held by their blocking rule and not yet rejected or released (``govlake batches``)."""
    from govlake.quality._batches import HELD, states

    out = []
    for b in sorted(states(settings), key=lambda b: b.batch_id):
        if b.status != HELD:
            continue
        res = catalog.resources.get(b.resource)
        source = scrub_text(b.source or "")
        rules = [r["rule"] for r in b.rules[:EXAMPLES]]
        out.append(Condition(
            "held_batch", f"held_batch:{b.batch_id}", "critical",
            f"{res.name if res else b.resource}（{b.resource}）的批次 {source}"
            f"（{b.rows:,} 行，{b.quarantined:,} 行隔离）超过阻断阈值被扣留，未发布；"
            "用 govlake batches reject|release 处理",
            f"{res.name_en if res else b.resource} ({b.resource}): batch {source} ({b.rows:,} rows, "
            f"{b.quarantined:,} quarantined) is held over its blocking limit and not published; decide it with "
            "`govlake batches reject|release`", b.resource, res.provider if res else None,
            {"batch_id": b.batch_id, "source": source, "rows": b.rows, "quarantined": b.quarantined,
             "limit_rate": b.limit_rate, "rules": rules, "held_at": b.held_at or b.at}))
    return out


def failed_reconciliations(settings: Settings, catalog: Catalog) -> list[Condition]:
    """Resources whose latest reconciliation (meta/reconciliation) did not balance or published nothing."""
    latest: dict[str, dict] = {}
    for r in sorted(_rows(settings, "reconciliation"), key=lambda r: r["checked_at"]):
        latest[r["resource"]] = r
    out = []
    for code, r in sorted(latest.items()):
        if r["balanced"] and r["published"]:
            continue
        res = catalog.resources.get(code)
        what_zh = "计数不平" if not r["balanced"] else "质量校验不一致，本次未发布"
        what_en = "the counts do not balance" if not r["balanced"] else "the checks disagreed; nothing was published"
        note = scrub_text(r["note"] or "")
        out.append(Condition(
            "reconciliation", f"reconciliation:{code}:{r['run_id']}", "critical",
            f"{res.name if res else code}（{code}）运行 {r['run_id']} 对账失败：{what_zh}",
            f"{res.name_en if res else code} ({code}) run {r['run_id']}: reconciliation failed, {what_en}",
            code, res.provider if res else None,
            {"run_id": r["run_id"], "rows_read": r["rows_read"], "silver": r["silver"], "quarantined": r["quarantined"],
             "duplicates": r["duplicates"], "held": r["held"], "rejected": r["rejected"], "balanced": r["balanced"],
             "published": r["published"], "note": note, "checked_at": r["checked_at"]}))
    return out


def late_publicity(settings: Settings, limits: AlertThresholds, *, as_of: dt.date) -> list[Condition]:
    """双公示 records (gold/penalty_record, gold/license_record) submitted more than ``publicity_late_days``
    after a deadline within the last ``publicity_lookback_days``: one alert per table, department and month
    of the deadline."""
    out = []
    con = storage.connect(settings)
    try:
        for record, (number, label) in RECORDS.items():
            if not storage.register(con, record, storage.table_path(settings, "gold", record)):
                continue
            found = con.execute(f"""
                select coalesce(_dept, 'unresolved') as dept, strftime(deadline_date, '%Y-%m') as month,
                       count(*) as n, max(date_diff('day', deadline_date, cast(submission_time as date))) as worst,
                       list({number} order by deadline_date, {number})[1:{EXAMPLES}] as examples
                from {record}
                where deadline_date is not null and submission_time is not null and deadline_date < $as_of
                  and deadline_date >= $since
                  and date_diff('day', deadline_date, cast(submission_time as date)) > $grace
                group by all order by all""", {"as_of": as_of, "grace": limits.publicity_late_days,
                                               "since": as_of - dt.timedelta(days=limits.publicity_lookback_days)}
            ).fetchall()
            for dept, month, n, worst, examples in found:
                shown = [scrub_text(str(e)) for e in examples]
                out.append(Condition(
                    "publicity_late", f"publicity_late:{record}:{dept}:{month}", "warning",
                    f"{dept} 部门 {month} 到期的{label}双公示记录有 {n:,} 条逾期报送（最多逾期 {worst} 天），如 "
                    f"{'、'.join(shown)}",
                    f"{dept}: {n:,} {record.replace('_', ' ')}s due in {month} were submitted after their "
                    f"双公示 deadline (up to {worst} days late), e.g. {', '.join(shown)}",
                    None, dept, {"table": gold_path(record), "deadline_month": month, "records": n,
                                 "worst_days_late": worst, "examples": shown}))
    finally:
        con.close()
    return out
