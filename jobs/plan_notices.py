"""Daily, after evaluation: put every notice due today into the outbox."""

from __future__ import annotations

from typing import Any

from pipeline.app import App
from pipeline.commands.notices import plan_today
from pipeline.config.schedule import JobSchedule
from pipeline.scheduler.runner import JobContext, JobSpec


def run(app: App, ctx: JobContext) -> dict[str, Any]:
    result = plan_today(app)
    return {
        k: result[k] for k in ("considered", "planned", "already_planned", "no_address", "by_kind")
    }


SPEC = JobSpec(
    run, JobSchedule(cron="0 8 * * *"), "plan repair notices, reminders, follow-ups and digests"
)
