"""When a resource's next delivery is due, from its 更新周期 and its last landing."""

from __future__ import annotations

import calendar as _calendar
import datetime as dt
from dataclasses import dataclass

from govlake.catalog import Resource
from govlake.workdays import WorkdayCalendar

MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}


@dataclass(frozen=True)
class Freshness:
    resource: str
    last_landed: dt.date | None
    due: dt.date
    """The day by which the next delivery must have landed."""
    days_overdue: int
    """``as_of − due`` in calendar days: > 0 overdue, ≤ 0 on time (−n: n days left)."""
    provisional: bool
    """The due date rests on an assumption: never landed (counted from 发布日期), or a working day
    of a year the calendar does not cover yet."""

    @property
    def fresh(self) -> bool:
        return self.days_overdue <= 0


def next_due(last: dt.date, cycle: str, workdays: WorkdayCalendar) -> tuple[dt.date, bool]:
    """Due date of the delivery after one on ``last``, and whether it is provisional.

    realtime and daily: the next working day (a realtime feed is judged as daily here); weekly:
    7 days; monthly, quarterly, yearly: 1, 3, 12 calendar months (the last day of a shorter month).
    """
    if cycle in ("realtime", "daily"):
        deadline = workdays.add_workdays(last, 1)
        return deadline.date, deadline.provisional
    if cycle == "weekly":
        return last + dt.timedelta(days=7), False
    return add_months(last, MONTHS[cycle]), False


def add_months(day: dt.date, months: int) -> dt.date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return dt.date(year, month, min(day.day, _calendar.monthrange(year, month)[1]))


def freshness(res: Resource, last_landed: dt.date | None, *, as_of: dt.date,
              workdays: WorkdayCalendar) -> Freshness:
    """How ``res`` stands as of ``as_of``; a resource that never landed is due one cycle after its
    发布日期 in the catalog (provisional)."""
    due, provisional = next_due(last_landed or res.published, res.update_cycle, workdays)
    return Freshness(res.code, last_landed, due, (as_of - due).days, provisional or last_landed is None)
