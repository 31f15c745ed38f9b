"""Monthly by the 20th: escalate late departments and stuck cases one level up the ladder."""

from __future__ import annotations

from typing import Any

from pipeline.app import App
from pipeline.commands.monthly import run_escalation
from pipeline.config.schedule import JobSchedule
from pipeline.scheduler.runner import JobContext, JobSpec


def run(app: App, ctx: JobContext) -> dict[str, Any]:
    result = run_escalation(app)
    return {
        k: result[k]
        for k in ("month", "found", "escalated", "already_this_month", "by_level", "digests")
    }


SPEC = JobSpec(
    run, JobSchedule(by_day=20, at="09:00"), "escalate unreported departments and stuck cases"
)
