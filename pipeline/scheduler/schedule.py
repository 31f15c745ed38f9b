"""When each job is due: cron expressions and "by the Nth" monthly deadlines.

Pure: given a job's schedule and `now`, say the most recent due time and the next.
APScheduler's CronTrigger does the cron arithmetic, always with the configured time
zone passed explicitly — a trigger without one uses the host's zone, and in a UTC
container a 09:00 Shanghai job would fire at 17:00 Beijing time.

A ``by_day`` job (escalate, monthly_report) is due on that day of the month at
``at``, or — when that day is not a working day and ``working_day_before`` is on —
on the last working day before it.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from pipeline.config.schedule import JobSchedule, ScheduleConfig
from pipeline.domain.calendar import WorkingCalendar
from pipeline.errors import CalendarError, ConfigError

LOOKBACK = dt.timedelta(days=40)


def check_jobs(schedule: ScheduleConfig, known_jobs: list[str]) -> ScheduleConfig:
    """schedule.yaml names only jobs that exist (the registry lives in `jobs`)."""
    for name in schedule.jobs:
        if name not in known_jobs:
            raise ConfigError(
                f"schedule.yaml: jobs.{name}: unknown job (known: {', '.join(known_jobs)})"
            )
    return schedule


def _cron_times(
    spec: JobSchedule, start: dt.datetime, end: dt.datetime, tz: ZoneInfo
) -> list[dt.datetime]:
    assert spec.cron is not None
    trigger = CronTrigger.from_crontab(spec.cron, timezone=tz)
    times, t = [], trigger.get_next_fire_time(None, start)
    while t is not None and t <= end:
        times.append(t)
        t = trigger.get_next_fire_time(t, t + dt.timedelta(seconds=1))
    return times


def deadline(
    year: int, month: int, spec: JobSchedule, calendar: WorkingCalendar, tz: ZoneInfo
) -> dt.datetime:
    """The due time of a by_day job in one month.

    A month whose year has no working-day data yet keeps the nominal day: the job still
    runs (a missed monthly deadline is worse than one on a holiday), and check-config
    has been warning about the missing year for 60 days.
    """
    assert spec.by_day is not None
    day = dt.date(year, month, spec.by_day)
    try:
        if spec.working_day_before and not calendar.is_working_day(day):
            day = calendar.previous_working_day(day)
    except CalendarError:
        pass
    hour, minute = map(int, spec.at.split(":"))
    return dt.datetime.combine(day, dt.time(hour, minute), tz)


def _months(start: dt.datetime, end: dt.datetime) -> list[tuple[int, int]]:
    out, (y, m) = [], (start.year, start.month)
    while (y, m) <= (end.year, end.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def due_times(
    spec: JobSchedule, start: dt.datetime, end: dt.datetime, calendar: WorkingCalendar, tz: ZoneInfo
) -> list[dt.datetime]:
    """Every due time in [start, end]."""
    if spec.cron is not None:
        return _cron_times(spec, start, end, tz)
    times = (deadline(y, m, spec, calendar, tz) for y, m in _months(start, end))
    return [t for t in times if start <= t <= end]


def latest_due(
    spec: JobSchedule,
    now: dt.datetime,
    calendar: WorkingCalendar,
    tz: ZoneInfo,
    since: dt.datetime | None = None,
) -> dt.datetime | None:
    """The most recent due time at or before `now` (looking back from `since` at most)."""
    start = max(since, now - LOOKBACK) if since else now - LOOKBACK
    times = due_times(spec, start, now, calendar, tz)
    return times[-1] if times else None


def next_due(
    spec: JobSchedule, now: dt.datetime, calendar: WorkingCalendar, tz: ZoneInfo
) -> dt.datetime | None:
    after = now + dt.timedelta(seconds=1)
    times = due_times(spec, after, after + LOOKBACK, calendar, tz)
    return times[0] if times else None
