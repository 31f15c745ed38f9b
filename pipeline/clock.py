"""The business clock. Time enters the program here and nowhere else.

The CLI builds one clock (the system clock, or a fixed one from `--now`) and passes
`today` / `now` down; library functions never call `datetime.now()` themselves.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from pipeline.errors import UsageError


class Clock(Protocol):
    @property
    def tz(self) -> ZoneInfo: ...

    def now(self) -> dt.datetime:
        """An aware datetime in the configured time zone."""
        ...

    def today(self) -> dt.date: ...


@dataclass(frozen=True)
class SystemClock:
    tz: ZoneInfo

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.tz)

    def today(self) -> dt.date:
        return self.now().date()


@dataclass(frozen=True)
class FixedClock:
    """The clock of a replayed run (`--now`) and of tests."""

    at: dt.datetime

    @property
    def tz(self) -> ZoneInfo:
        assert isinstance(self.at.tzinfo, ZoneInfo)
        return self.at.tzinfo

    def now(self) -> dt.datetime:
        return self.at

    def today(self) -> dt.date:
        return self.at.date()


def parse_now(value: str, tz: ZoneInfo) -> FixedClock:
    """Parse `--now 2026-12-21` or `--now 2026-12-21T09:30` in the zone `tz`.

    A bare date means the start of that day in the configured zone. An offset in the
    value is honoured and converted to the configured zone.
    """
    try:
        if len(value) == 10:
            at = dt.datetime.combine(dt.date.fromisoformat(value), dt.time(0, 0))
        else:
            at = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--now {value!r} is not an ISO date or date-time (e.g. 2026-12-21 or 2026-12-21T09:30)"
        ) from None
    at = at.replace(tzinfo=tz) if at.tzinfo is None else at.astimezone(tz)
    return FixedClock(at)
