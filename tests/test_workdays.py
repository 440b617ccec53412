"""Publication deadlines on the State Council calendar, computed by hand from the 2026 notice."""

from __future__ import annotations

import datetime as dt

import pytest

from govlake.workdays import HolidayFileError, WorkdayCalendar

D = dt.date.fromisoformat


@pytest.mark.parametrize("decided, deadline", [
    # 09-30 (1), National Day 10-01..07 off, 10-08 (2), 10-09 (3), Sat 10-10 make-up (4), 10-12..14 (5-7)
    ("2026-09-29", "2026-10-14"),
    ("2026-09-30", "2026-10-15"),
    # Sat 10-10 make-up (1), 10-12..16 (2-6), Mon 10-19 (7)
    ("2026-10-09", "2026-10-19"),
    # an ordinary week: Mon 11-02 + 7 working days
    ("2026-11-02", "2026-11-11"),
])
def test_seven_working_days_around_national_day_2026(decided, deadline):
    result = WorkdayCalendar().add_workdays(D(decided), 7)
    assert result.date == D(deadline) and not result.provisional


def test_market_regulation_twenty_working_days():
    # 09-30, 10-08, 10-09, 10-10 (Sat), then 16 weekdays from 10-12 → 11-02
    assert WorkdayCalendar().add_workdays(D("2026-09-29"), 20).date == D("2026-11-02")


def test_deadline_in_2027_without_a_holiday_file_is_provisional_not_a_crash():
    # 12-25 (1), 12-28..31 (2-5), then Mon–Fri guessed: Fri 2027-01-01 (6), Mon 01-04 (7)
    result = WorkdayCalendar().add_workdays(D("2026-12-24"), 7)
    assert (result.date, result.provisional) == (D("2027-01-04"), True)
    # a deadline wholly inside 2026 stays exact
    assert not WorkdayCalendar().add_workdays(D("2026-12-10"), 7).provisional


def test_holiday_file_covers_later_years(tmp_path):
    f = tmp_path / "holidays.yml"
    f.write_text("2027:\n  holidays: [2027-01-01]\n  workdays: [2027-01-09]\n", encoding="utf-8")
    cal = WorkdayCalendar(f)
    # 12-25 (1), 12-28..31 (2-5), 01-01 off, 01-04 (6), 01-05 (7)
    result = cal.add_workdays(D("2026-12-24"), 7)
    assert (result.date, result.provisional) == (D("2027-01-05"), False)
    assert cal.is_workday(D("2027-01-09")) == (True, False)   # a make-up Saturday from the file


def test_bad_holiday_file_names_the_problem(tmp_path):
    f = tmp_path / "holidays.yml"
    f.write_text("2027:\n  holidays: [2028-01-01]\n", encoding="utf-8")
    with pytest.raises(HolidayFileError, match="another year"):
        WorkdayCalendar(f)


def test_every_day_chinesecalendar_knows_is_judged_as_it_judges_it():
    """The calendar asks chinesecalendar's tables directly (its is_workday checks each date against its whole table
    first): every day of the years it knows gets its answer, and none is provisional."""
    import chinese_calendar

    calendar = WorkdayCalendar()
    day, last = dt.date(2004, 1, 1), dt.date(2026, 12, 31)
    while day <= last:
        assert calendar.is_workday(day) == (chinese_calendar.is_workday(day), False), day
        day += dt.timedelta(days=1)


def _walked(calendar: WorkdayCalendar, start: dt.date, n: int) -> tuple[dt.date, bool]:
    """The n-th working day after ``start``, walked day by day (what add_workdays finds by bisection)."""
    day, counted, provisional = start, 0, False
    while counted < n:
        day += dt.timedelta(days=1)
        workday, guessed = calendar.is_workday(day)
        provisional = provisional or guessed
        counted += workday
    return day, provisional


@pytest.mark.parametrize("holidays", [False, True])
def test_deadlines_found_by_bisection_are_the_days_walked_to(tmp_path, holidays):
    """Across years, into the years no calendar covers (with and without a holiday file for 2027), and for numbers
    of days larger than a year holds."""
    import random

    path = None
    if holidays:
        path = tmp_path / "holidays.yml"
        path.write_text("2027:\n  holidays: [2027-01-01, 2027-02-08, 2027-02-09]\n  workdays: [2027-02-13]\n",
                        encoding="utf-8")
    calendar, rng = WorkdayCalendar(path), random.Random(7)
    for _ in range(3000):
        start = D("2003-12-01") + dt.timedelta(days=rng.randrange(0, 365 * 26))
        n = rng.choice([1, 2, 5, 7, 15, 20, 30, 260, 400])
        found = calendar.add_workdays(start, n)
        assert (found.date, found.provisional) == _walked(calendar, start, n), (start, n)
