"""Monthly on the reminder day (default the 15th): each department is asked to update its ledger."""

from __future__ import annotations

from pipeline import stages
from pipeline.app import App
from pipeline.config.schedule import JobSchedule
from pipeline.monthly.escalation import ReminderResult
from pipeline.scheduler.runner import JobContext, JobSpec


def run(app: App, ctx: JobContext) -> ReminderResult:
    return stages.remind_departments(app, ctx.period_month(app.config.settings.tz))


SPEC = JobSpec(
    run,
    JobSchedule(by_day=15, at="09:00"),
    "ask each department to update its ledger before the 20th",
)
