"""Working days on the State Council calendar (holidays and make-up working days, 调休).

``chinesecalendar`` knows 2004–2026 and raises ``NotImplementedError`` beyond. For later years a
holiday file the bureau maintains supplies the State Council's notice; without one, Monday–Friday
are counted and every result that relied on that guess is marked provisional. Nothing here
raises for a date outside the library's range.

Holiday file (YAML), one entry per year, from the State Council's 节假日安排 notice::

    2027:
      holidays: [2027-01-01, 2027-02-06, ...]   # days off, including weekdays swapped away
      workdays: [2027-02-14, ...]               # weekend days that are working days (调休)
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import chinese_calendar
import yaml

_CALENDAR_YEARS = (min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year)
"""The years chinesecalendar knows (its holidays' first and last). Its ``is_workday`` checks every date against
them by a min and a max over its whole table (~50 µs a call): the calendar asks its two tables directly, as
``is_workday`` does after that check (tests/test_workdays.py holds every day of those years to it)."""


@dataclass(frozen=True)
class Deadline:
    date: dt.date
    provisional: bool
    """True when a day on the way was judged Monday–Friday because no calendar covered its year."""


class HolidayFileError(ValueError):
    pass


class WorkdayCalendar:
    """Is a day a working day, and the n-th working day after a date."""

    def __init__(self, holiday_file: Path | None = None):
        self._years: dict[int, tuple[frozenset[dt.date], frozenset[dt.date]]] = {}
        # per year asked about, its working days in order and the days judged Monday–Friday (no calendar for the
        # year): the n-th working day after a date is found by bisection, not by walking day by day (a credit run
        # asks for the deadlines of thousands of decision dates)
        self._by_year: dict[int, tuple[list[dt.date], list[dt.date]]] = {}
        if holiday_file is not None:
            self._load(holiday_file)

    def _load(self, path: Path) -> None:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for year, spec in data.items():
            try:
                holidays = frozenset(_date(d) for d in (spec or {}).get("holidays", []))
                workdays = frozenset(_date(d) for d in (spec or {}).get("workdays", []))
            except (TypeError, ValueError) as exc:
                raise HolidayFileError(f"{path}: year {year}: {exc}") from exc
            wrong = [d for d in holidays | workdays if d.year != int(year)]
            if wrong:
                raise HolidayFileError(f"{path}: year {year} lists dates of another year: {sorted(wrong)}")
            if holidays & workdays:
                raise HolidayFileError(f"{path}: year {year}: both holiday and workday: {sorted(holidays & workdays)}")
            self._years[int(year)] = (holidays, workdays)

    def is_workday(self, day: dt.date) -> tuple[bool, bool]:
        """(is a working day, provisional)."""
        if day.year in self._years:
            holidays, workdays = self._years[day.year]
            if day in workdays:
                return True, False
            return (day.weekday() < 5 and day not in holidays), False
        if _CALENDAR_YEARS[0] <= day.year <= _CALENDAR_YEARS[1]:
            workday = day in chinese_calendar.workdays or (day.weekday() < 5 and day not in chinese_calendar.holidays)
            return workday, False
        return day.weekday() < 5, True

    def add_workdays(self, start: dt.date, n: int) -> Deadline:
        """The ``n``-th working day after ``start`` (``start`` itself is not counted); provisional when a day on the
        way (after ``start``, up to the result) was judged Monday–Friday."""
        if n < 1:
            raise ValueError("n must be at least 1")
        after, year, provisional = start, start.year, False
        while True:
            workdays, judged = self._year(year)
            first = bisect.bisect_right(workdays, after)
            if first + n <= len(workdays):
                day = workdays[first + n - 1]
                provisional = provisional or bisect.bisect_right(judged, day) > bisect.bisect_right(judged, after)
                return Deadline(day, provisional)
            n -= len(workdays) - first
            provisional = provisional or len(judged) > bisect.bisect_right(judged, after)
            year, after = year + 1, dt.date(year, 12, 31)

    def _year(self, year: int) -> tuple[list[dt.date], list[dt.date]]:
        """The working days of ``year`` in order, and its days judged Monday–Friday."""
        known = self._by_year.get(year)
        if known is None:
            workdays, judged = [], []
            day = dt.date(year, 1, 1)
            while day.year == year:
                workday, guessed = self.is_workday(day)
                if workday:
                    workdays.append(day)
                if guessed:
                    judged.append(day)
                day += dt.timedelta(days=1)
            known = self._by_year[year] = (workdays, judged)
        return known


def _date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
