"""民法典 Arts. 201–204: N-month periods end on the same-numbered day, clamped to month end."""

from __future__ import annotations

import calendar as monthcal
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain.calendar import WorkingCalendar
from pipeline.domain.periods import add_months, period_end

D = dt.date
dates = st.dates(min_value=D(1990, 1, 1), max_value=D(2090, 12, 31))
months = st.integers(min_value=0, max_value=120)


@pytest.mark.parametrize(
    ("start", "n", "end"),
    [
        (D(2024, 1, 31), 3, D(2024, 4, 30)),  # April has no 31st: month end
        (D(2024, 2, 29), 12, D(2025, 2, 28)),  # leap day, non-leap year
        (D(2024, 2, 29), 48, D(2028, 2, 29)),  # leap day to leap day
        (D(2023, 12, 31), 2, D(2024, 2, 29)),  # clamped to a leap February
        (D(2023, 11, 30), 3, D(2024, 2, 29)),
        (D(2025, 11, 30), 3, D(2026, 2, 28)),
        (D(2024, 8, 31), 1, D(2024, 9, 30)),
        (D(2024, 12, 15), 1, D(2025, 1, 15)),  # year rollover
        (D(2026, 9, 28), 3, D(2026, 12, 28)),
        (D(2026, 9, 28), 12, D(2027, 9, 28)),
        (D(2026, 9, 28), 36, D(2029, 9, 28)),
        (D(2026, 1, 31), 1, D(2026, 2, 28)),
        (D(2026, 3, 1), 0, D(2026, 3, 1)),  # a zero period ends on its start date
    ],
)
def test_add_months_ends_on_the_same_numbered_day_or_the_month_end(
    start: dt.date, n: int, end: dt.date
) -> None:
    assert add_months(start, n) == end
    assert period_end(start, n) == end


def test_negative_months_are_refused() -> None:
    with pytest.raises(ValueError, match="-1"):
        add_months(D(2024, 1, 1), -1)


def test_art_203_roll_forward_moves_a_holiday_last_day_to_the_next_working_day() -> None:
    cal = WorkingCalendar()
    assert period_end(D(2026, 7, 4), 3) == D(2026, 10, 4)  # National Day holiday
    assert period_end(D(2026, 7, 4), 3, roll_forward=True, calendar=cal) == D(2026, 10, 8)
    # a make-up Saturday is a working day: no move
    assert period_end(D(2026, 7, 10), 3, roll_forward=True, calendar=cal) == D(2026, 10, 10)
    # an ordinary Sunday moves to Monday
    assert period_end(D(2026, 8, 15), 3, roll_forward=True, calendar=cal) == D(2026, 11, 16)


def test_roll_forward_without_a_calendar_is_refused() -> None:
    with pytest.raises(ValueError, match="calendar"):
        period_end(D(2026, 7, 4), 3, roll_forward=True)


@given(start=dates, lo=months, hi=months)
def test_min_end_is_never_after_max_end_when_min_months_le_max_months(
    start: dt.date, lo: int, hi: int
) -> None:
    lo, hi = min(lo, hi), max(lo, hi)
    assert add_months(start, lo) <= add_months(start, hi)


@given(start=dates, n=st.integers(min_value=1, max_value=120))
def test_a_period_of_at_least_one_month_ends_after_its_start(start: dt.date, n: int) -> None:
    assert add_months(start, n) > start


@given(start=dates, n=months)
def test_the_end_is_n_calendar_months_later_on_the_same_day_or_the_month_end(
    start: dt.date, n: int
) -> None:
    end = add_months(start, n)
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == n
    last = monthcal.monthrange(end.year, end.month)[1]
    assert end.day == min(start.day, last)
    if end.day != start.day:
        assert end.day == last  # only ever clamped to the month end


@given(
    year=st.integers(min_value=1990, max_value=2090).filter(monthcal.isleap),
    n_years=st.integers(min_value=1, max_value=10),
)
def test_a_leap_day_plus_whole_years_ends_on_feb_29_or_28(year: int, n_years: int) -> None:
    end = add_months(D(year, 2, 29), 12 * n_years)
    assert end == D(year + n_years, 2, 29 if monthcal.isleap(year + n_years) else 28)


@given(start=dates.filter(lambda d: d.day <= 28), a=months, b=months)
def test_periods_compose_when_no_clamping_happens(start: dt.date, a: int, b: int) -> None:
    assert add_months(add_months(start, a), b) == add_months(start, a + b)
