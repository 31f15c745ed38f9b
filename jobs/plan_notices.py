"""Daily, after evaluation: put every notice due today into the outbox."""

from __future__ import annotations

from pipeline import stages
from pipeline.app import App
from pipeline.config.schedule import JobSchedule
from pipeline.results import Counts
from pipeline.scheduler.runner import JobContext, JobSpec


def run(app: App, ctx: JobContext) -> Counts:
    result = stages.plan_notices(app)
    return Counts(
        {
            "considered": result.considered,
            "planned": result.planned,
            "already_planned": result.already_planned,
            "no_address": result.no_address,
            "by_kind": result.by_kind,
        }
    )


SPEC = JobSpec(
    run, JobSchedule(cron="0 8 * * *"), "plan repair notices, reminders, follow-ups and digests"
)
