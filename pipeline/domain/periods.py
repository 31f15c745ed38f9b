"""Disclosure-period arithmetic per 民法典 Arts. 201–204. Pure functions.

A period of N months starting on `start` begins the next day (Art. 201: the first day is
not counted) and ends on the same-numbered day N months later, or on that month's last
day when it has no such day (Art. 202). Art. 203 (a last day that is a statutory holiday
moves to the next working day) is optional: the credit sites count calendar days.
"""

from __future__ import annotations

import calendar as _monthcal
import datetime as dt
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.domain.calendar import WorkingCalendar


@lru_cache(maxsize=65536)
def add_months(start: dt.date, months: int) -> dt.date:
    """The same-numbered day `months` later, clamped to the month end (Art. 202)."""
    if months < 0:
        raise ValueError(f"months must be >= 0, got {months}")
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    last = _monthcal.monthrange(year, month + 1)[1]
    return dt.date(year, month + 1, min(start.day, last))


def period_end(
    start: dt.date,
    months: int,
    roll_forward: bool = False,
    calendar: WorkingCalendar | None = None,
) -> dt.date:
    """Last day of an N-month period that starts the day after `start`.

    With `roll_forward` (Art. 203) a last day that is not a working day moves to the next
    working day; that needs a `calendar` and may raise CalendarError for uncovered years.
    """
    end = add_months(start, months)
    if not roll_forward:
        return end
    if calendar is None:
        raise ValueError("roll_forward needs a working calendar")
    return calendar.on_or_after(end)
