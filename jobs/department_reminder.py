"""Monthly on the reminder day (default the 15th): each department is asked to update its ledger."""

from __future__ import annotations

from typing import Any

from pipeline.app import App
from pipeline.commands.monthly import run_reminders
from pipeline.config.schedule import JobSchedule
from pipeline.scheduler.runner import JobContext, JobSpec


def run(app: App, ctx: JobContext) -> dict[str, Any]:
    return run_reminders(app)


SPEC = JobSpec(
    run,
    JobSchedule(by_day=15, at="09:00"),
    "ask each department to update its ledger before the 20th",
)
