"""Daily, after sync: recompute eligibility and the automatic ledger transitions."""

from __future__ import annotations

from typing import Any

from pipeline.app import App
from pipeline.commands.ledger import evaluate_all
from pipeline.runner import JobContext, JobSpec
from pipeline.schedule import JobSchedule


def run(app: App, ctx: JobContext) -> dict[str, Any]:
    return evaluate_all(app)


SPEC = JobSpec(
    run,
    JobSchedule(cron="30 7 * * *"),
    "recompute eligibility and close expired or vanished entries",
)
