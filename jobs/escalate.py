"""Monthly by the 20th: escalate late departments and stuck cases one level up the ladder."""

from __future__ import annotations

from pipeline import stages
from pipeline.app import App
from pipeline.config.schedule import JobSchedule
from pipeline.results import Counts
from pipeline.scheduler.runner import JobContext, JobSpec


def run(app: App, ctx: JobContext) -> Counts:
    result = stages.escalate(app, ctx.period_month(app.config.settings.tz))
    return Counts(
        {
            "month": result.month,
            "found": result.found,
            "escalated": result.escalated,
            "already_this_month": result.already_this_month,
            "by_level": result.by_level,
            "digests": result.digests,
        }
    )


SPEC = JobSpec(
    run, JobSchedule(by_day=20, at="09:00"), "escalate unreported departments and stuck cases"
)
