"""Working days (工作日, 行政处罚法 Art. 85) from chinesecalendar plus config/holidays.yaml.

A working day is Mon–Fri that is not a statutory holiday, plus the weekend days the
State Council declares make-up working days (调休). `chinesecalendar` knows 2004–2026;
holidays.yaml adds or corrects years. A date that neither covers raises `CalendarError`
naming its year: a wrong working-day count would put a wrong date on a legal notice, so
the calendar fails closed instead of guessing.
"""

from __future__ import annotations

import datetime as dt

import chinese_calendar

from pipeline.config.holidays import HolidaysConfig
from pipeline.errors import CalendarError

ONE_DAY = dt.timedelta(days=1)


def _library_years() -> range:
    """The years chinesecalendar knows (2004–2026 for 1.11.0), probed once."""
    known = [y for y in range(1990, 2101) if _library_knows(y)]
    return range(known[0], known[-1] + 1) if known else range(0)


def _library_knows(year: int) -> bool:
    try:
        chinese_calendar.is_workday(dt.date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


_LIBRARY_YEARS = _library_years()


class WorkingCalendar:
    """Working-day arithmetic; every per-date answer is cached (it runs per record)."""

    def __init__(self, overrides: HolidaysConfig | None = None) -> None:
        overrides = overrides or HolidaysConfig()
        self._holidays = {d for y in overrides.years.values() for d in y.holidays}
        self._workdays = {d for y in overrides.years.values() for d in y.workdays}
        self._complete = {y for y, block in overrides.years.items() if block.complete}
        self._cache: dict[dt.date, bool] = {}
        self._add_cache: dict[tuple[dt.date, int], dt.date] = {}

    def fingerprint(self) -> str:
        """Everything the answers depend on, as text: the overrides and the library's data."""
        return "|".join(
            (
                ",".join(sorted(d.isoformat() for d in self._holidays)),
                ",".join(sorted(d.isoformat() for d in self._workdays)),
                ",".join(str(y) for y in sorted(self._complete)),
                f"{_LIBRARY_YEARS.start}-{_LIBRARY_YEARS.stop}",
                str(getattr(chinese_calendar, "__version__", "")),
            )
        )

    def is_working_day(self, day: dt.date) -> bool:
        cached = self._cache.get(day)
        if cached is None:
            cached = self._cache[day] = self._lookup(day)
        return cached

    def _lookup(self, day: dt.date) -> bool:
        # a partial override cannot vouch for the rest of its year: fail closed
        complete = day.year in self._complete
        if not complete and day.year not in _LIBRARY_YEARS:
            raise CalendarError(day.year)
        # overrides first: they correct the library and extend it past its last year
        if day in self._workdays:
            return True
        if day in self._holidays:
            return False
        if complete:
            return day.weekday() < 5
        return bool(chinese_calendar.is_workday(day))

    def add_working_days(self, day: dt.date, n: int) -> dt.date:
        """The n-th working day after `day` (counting starts the day after); n=0 → day."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        key = (day, n)
        result = self._add_cache.get(key)
        if result is None:
            result = day
            for _ in range(n):
                result = self.next_working_day(result)
            self._add_cache[key] = result
        return result

    def working_days_between(self, a: dt.date, b: dt.date) -> int:
        """Working days in (a, b]; 0 when b <= a."""
        count, day = 0, a + ONE_DAY
        while day <= b:
            count += self.is_working_day(day)
            day += ONE_DAY
        return count

    def next_working_day(self, day: dt.date) -> dt.date:
        """The first working day strictly after `day`."""
        return self.on_or_after(day + ONE_DAY)

    def on_or_after(self, day: dt.date) -> dt.date:
        """`day` itself if it is a working day, else the next one."""
        while not self.is_working_day(day):
            day += ONE_DAY
        return day

    def latest_start(self, day: dt.date, n: int) -> dt.date:
        """The last date from which `day` is at least n working days later (n=0 → day)."""
        start = day
        while self.add_working_days(start, n) > day:
            start -= ONE_DAY
        return start

    def previous_working_day(self, day: dt.date) -> dt.date:
        """The last working day strictly before `day`."""
        day -= ONE_DAY
        while not self.is_working_day(day):
            day -= ONE_DAY
        return day

    def covered_until(self) -> dt.date:
        """The last day of the unbroken run of covered years that includes the library's."""
        if _LIBRARY_YEARS:
            year = _LIBRARY_YEARS[-1]
        elif self._complete:  # only if chinesecalendar ever ships without data
            year = min(self._complete)
        else:
            return dt.date.min
        while year + 1 in self._complete:
            year += 1
        return dt.date(year, 12, 31)
