"""Dates as day numbers: the working-day calendar and date text in the ways departments write it."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np

EXCEL_EPOCH = dt.date(1899, 12, 30)
LONG_TERM = "2099-12-31"


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01 (numpy ``datetime64[D]`` as int)."""
    return (d - dt.date(1970, 1, 1)).days


def iso(days: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD`` text (numpy ``U10`` array) of day numbers."""
    return np.datetime_as_string(np.asarray(days, dtype="int64").astype("datetime64[D]"), unit="D")


def day_text(days: np.ndarray, *, suffix: str = "") -> np.ndarray:
    """``YYYY-MM-DD`` text (object array) of day numbers, formatted once per distinct day."""
    days = np.asarray(days, dtype=np.int64)
    if days.size == 0:
        return np.empty(0, dtype=object)
    lo, hi = int(days.min()), int(days.max())
    table = np.empty(hi - lo + 1, dtype=object)
    table[:] = [d + suffix for d in iso(np.arange(lo, hi + 1)).tolist()]
    return table[days - lo]


@lru_cache(maxsize=1)
def _clock() -> np.ndarray:
    table = np.empty(86400, dtype=object)
    table[:] = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]
    return table


def seconds_text(seconds: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DD HH:MM:SS`` text (object array) of seconds since the epoch."""
    seconds = np.asarray(seconds, dtype=np.int64)
    return day_text(seconds // 86400, suffix=" ") + _clock()[seconds % 86400]


def variant(value: str, which: int) -> str:
    """Rewrite an ISO date ``value`` in one of four non-standard ways departments use."""
    y, m, d = int(value[:4]), int(value[5:7]), int(value[8:10])
    which %= 4
    if which == 0:
        return f"{y}年{m}月{d}日"
    if which == 1:
        return f"{y}/{m:02d}/{d:02d}"
    if which == 2:
        return f"{y}{m:02d}{d:02d}"
    return str((dt.date(y, m, d) - EXCEL_EPOCH).days)


class WorkCalendar:
    """Working days (State Council calendar via chinese_calendar, weekdays beyond its range).

    Day numbers in ``[start, end)``; :meth:`add` gives the k-th working day after a day.
    """

    def __init__(self, start: dt.date, end: dt.date):
        self.start = day_number(start)
        days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
        work = np.array([_is_workday(d) for d in days], dtype=np.int64)
        self._cum = np.cumsum(work)

    def add(self, days: np.ndarray, k: np.ndarray) -> np.ndarray:
        """The ``k``-th working day after ``days`` (the day itself not counted); k = 0 keeps it."""
        pos = np.asarray(days, dtype=np.int64) - self.start
        target = self._cum[pos] + k
        out = np.searchsorted(self._cum, target, side="left") + self.start
        return np.where(np.asarray(k) == 0, days, out)


def _is_workday(d: dt.date) -> bool:
    try:
        import chinese_calendar

        return bool(chinese_calendar.is_workday(d))
    except (NotImplementedError, ImportError):
        return d.weekday() < 5


@lru_cache(maxsize=4)
def calendar_for(as_of: dt.date) -> WorkCalendar:
    """A calendar covering the generated decision dates and their submission deadlines."""
    return WorkCalendar(dt.date(as_of.year - 5, 1, 1), dt.date(as_of.year + 2, 12, 31))
