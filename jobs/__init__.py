"""Scheduled jobs: one thin module each, calling one stage of `pipeline.stages` and
returning its result (the runner records its ``as_json()`` as the run's counts).

`REGISTRY` lists them in the order a tick runs them: sync before evaluation, before
planning, before dispatch — so one `run --once` does a whole day's work in order.
"""

from __future__ import annotations

from jobs import (
    department_reminder,
    dispatch,
    escalate,
    evaluate,
    monthly_report,
    plan_notices,
    sync,
)
from pipeline.scheduler.runner import JobSpec

REGISTRY: dict[str, JobSpec] = {
    "sync": sync.SPEC,
    "evaluate": evaluate.SPEC,
    "plan_notices": plan_notices.SPEC,
    "department_reminder": department_reminder.SPEC,
    "escalate": escalate.SPEC,
    "monthly_report": monthly_report.SPEC,
    "dispatch": dispatch.SPEC,  # last: what the jobs above queued goes out in the same tick
}
