"""schedule.yaml: the runner's settings and each job's schedule (cron or "by the Nth")."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from pydantic import Field, field_validator, model_validator

from pipeline.config.base import Strict


class JobSchedule(Strict):
    enabled: bool = True
    cron: str | None = None
    """Five-field crontab in the configured time zone, e.g. '30 7 * * *'."""
    by_day: int | None = Field(None, ge=1, le=28)
    """Monthly deadline day (e.g. 20: "by the 20th")."""
    at: str = "09:00"
    """Time of day for a by_day job."""
    working_day_before: bool = True
    """A by_day that is not a working day moves to the last working day before it."""
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                CronTrigger.from_crontab(value, timezone=ZoneInfo("UTC"))
            except ValueError as exc:
                raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return value

    @field_validator("at")
    @classmethod
    def _at(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r} is not a time of day HH:MM")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> JobSchedule:
        if (self.cron is None) == (self.by_day is None):
            raise ValueError("give exactly one of `cron` or `by_day`")
        return self


class RunnerSettings(Strict):
    lease_seconds: int = Field(120, ge=10)
    """A runner that stops renewing its lease for this long is presumed dead."""
    heartbeat_stale_seconds: int = Field(300, ge=30)
    """`health` fails when the scheduler's heartbeat is older than this."""
    tick_seconds: int = Field(60, ge=5)
    max_attempts: int = Field(3, ge=1)
    """Failed runs of one due time retried on later ticks, at most this often."""
    shutdown_grace_seconds: int = Field(30, ge=1)


class ScheduleConfig(Strict):
    runner: RunnerSettings = Field(default_factory=RunnerSettings)
    jobs: dict[str, JobSchedule] = Field(default_factory=dict)
