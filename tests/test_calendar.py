"""Working days: chinesecalendar wrapped, holidays.yaml overrides, fail closed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import load_config
from pipeline.config.holidays import HolidaysConfig, YearOverride
from pipeline.domain.calendar import WorkingCalendar
from pipeline.errors import CalendarError

D = dt.date
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return WorkingCalendar(HolidaysConfig())


def with_2027() -> WorkingCalendar:
    """A made-up 2027 schedule (test data only, not the real one)."""
    year = YearOverride(
        complete=True,
        holidays=[D(2027, 1, 1), D(2027, 1, 2), D(2027, 1, 3)],
        workdays=[D(2027, 1, 9)],
    )
    return WorkingCalendar(HolidaysConfig(years={2027: year}))


def test_seven_working_days_after_2026_09_28_is_2026_10_13(cal: WorkingCalendar) -> None:
    assert cal.add_working_days(D(2026, 9, 28), 7) == D(2026, 10, 13)


@pytest.mark.parametrize(
    "day", ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]
)
def test_2026_make_up_weekend_days_are_working_days(cal: WorkingCalendar, day: str) -> None:
    d = D.fromisoformat(day)
    assert d.weekday() >= 5
    assert cal.is_working_day(d)


def test_national_day_and_plain_weekends_are_not_working_days(cal: WorkingCalendar) -> None:
    assert not cal.is_working_day(D(2026, 10, 1))
    assert not cal.is_working_day(D(2026, 10, 7))
    assert not cal.is_working_day(D(2026, 10, 11))  # Sunday
    assert cal.is_working_day(D(2026, 10, 8))


def test_a_date_in_a_year_nobody_covers_raises_calendar_error_naming_the_year(
    cal: WorkingCalendar,
) -> None:
    with pytest.raises(CalendarError, match="2031") as info:
        cal.is_working_day(D(2031, 3, 3))
    assert info.value.year == 2031


def test_years_before_the_library_are_not_covered_either(cal: WorkingCalendar) -> None:
    with pytest.raises(CalendarError, match="2003"):
        cal.is_working_day(D(2003, 6, 2))


def test_a_complete_2027_override_makes_2027_usable() -> None:
    cal = with_2027()
    assert not cal.is_working_day(D(2027, 1, 1))  # holiday (Friday)
    assert cal.is_working_day(D(2027, 1, 4))  # ordinary Monday
    assert not cal.is_working_day(D(2027, 1, 10))  # ordinary Sunday
    assert cal.is_working_day(D(2027, 1, 9))  # make-up Saturday
    assert cal.add_working_days(D(2026, 12, 31), 1) == D(2027, 1, 4)


def test_a_partial_override_does_not_cover_its_year() -> None:
    year = YearOverride(holidays=[D(2027, 1, 1)])
    cal = WorkingCalendar(HolidaysConfig(years={2027: year}))
    with pytest.raises(CalendarError, match="2027"):
        cal.is_working_day(D(2027, 1, 1))
    with pytest.raises(CalendarError, match="2027"):
        cal.is_working_day(D(2027, 3, 3))


def test_overrides_take_precedence_over_the_library() -> None:
    year = YearOverride(holidays=[D(2026, 10, 9)], workdays=[D(2026, 10, 11)])
    cal = WorkingCalendar(HolidaysConfig(years={2026: year}))
    assert not cal.is_working_day(D(2026, 10, 9))
    assert cal.is_working_day(D(2026, 10, 11))
    assert cal.is_working_day(D(2026, 10, 8))  # the rest of the year from the library


def test_adding_zero_working_days_is_the_same_day_and_negative_is_refused(
    cal: WorkingCalendar,
) -> None:
    assert cal.add_working_days(D(2026, 10, 3), 0) == D(2026, 10, 3)
    with pytest.raises(ValueError, match="-1"):
        cal.add_working_days(D(2026, 10, 3), -1)


def test_working_days_between_counts_the_half_open_interval(cal: WorkingCalendar) -> None:
    assert cal.working_days_between(D(2026, 9, 28), D(2026, 10, 13)) == 7
    assert cal.working_days_between(D(2026, 9, 28), D(2026, 9, 28)) == 0
    assert cal.working_days_between(D(2026, 9, 30), D(2026, 10, 7)) == 0


def test_next_on_or_after_and_previous_working_day(cal: WorkingCalendar) -> None:
    assert cal.next_working_day(D(2026, 9, 30)) == D(2026, 10, 8)
    assert cal.next_working_day(D(2026, 10, 8)) == D(2026, 10, 9)
    assert cal.on_or_after(D(2026, 10, 8)) == D(2026, 10, 8)
    assert cal.on_or_after(D(2026, 10, 3)) == D(2026, 10, 8)
    assert cal.previous_working_day(D(2026, 10, 8)) == D(2026, 9, 30)


def test_covered_until_ends_with_the_last_unbroken_covered_year(cal: WorkingCalendar) -> None:
    assert cal.covered_until() == D(2026, 12, 31)
    assert with_2027().covered_until() == D(2027, 12, 31)
    gap = HolidaysConfig(years={2028: YearOverride(complete=True)})
    assert WorkingCalendar(gap).covered_until() == D(2026, 12, 31)


def test_override_dates_must_lie_in_their_year_and_not_be_both_kinds() -> None:
    with pytest.raises(ValueError, match="not in 2027"):
        HolidaysConfig(years={2027: YearOverride(holidays=[D(2028, 1, 1)])})
    with pytest.raises(ValueError, match="both"):
        HolidaysConfig(
            years={2027: YearOverride(holidays=[D(2027, 1, 9)], workdays=[D(2027, 1, 9)])}
        )


def write_config(folder: Path, holidays: str | None) -> Path:
    (folder / "settings.yaml").write_text("{}\n", encoding="utf-8")
    (folder / "departments.yaml").write_text(
        "departments:\n  - {code: yshj, name: 区营商环境局, bureau: true}\n", encoding="utf-8"
    )
    if holidays is not None:
        (folder / "holidays.yaml").write_text(holidays, encoding="utf-8")
    return folder


def test_the_shipped_holidays_yaml_loads_and_adds_no_year(tmp_path: Path) -> None:
    shipped = (REPO / "config" / "holidays.yaml").read_text(encoding="utf-8")
    overrides = load_config(write_config(tmp_path, shipped), env={}).holidays
    assert overrides.years == {}


def test_a_2027_block_in_holidays_yaml_is_read_through_the_config_loader(tmp_path: Path) -> None:
    text = "years:\n  2027:\n    complete: true\n    holidays: [2027-01-01]\n    workdays: []\n"
    overrides = load_config(write_config(tmp_path, text), env={}).holidays
    assert not WorkingCalendar(overrides).is_working_day(D(2027, 1, 1))


def test_a_bad_holidays_yaml_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    from pipeline.errors import ConfigError

    text = "years:\n  2027:\n    holidays: [2028-01-01]\n"
    with pytest.raises(
        ConfigError, match=r"holidays\.yaml: years: 2027: 2028-01-01 is not in 2027"
    ):
        load_config(write_config(tmp_path, text), env={})


@given(
    start=st.dates(min_value=D(2004, 1, 1), max_value=D(2026, 11, 30)),
    n=st.integers(min_value=0, max_value=15),
)
def test_adding_n_working_days_lands_on_a_working_day_n_working_days_later(
    start: dt.date, n: int
) -> None:
    cal = WorkingCalendar()
    end = cal.add_working_days(start, n)
    assert cal.working_days_between(start, end) == n
    if n:
        assert end > start and cal.is_working_day(end)
