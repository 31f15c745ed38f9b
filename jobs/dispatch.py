"""Every few minutes within the allowed hours: send what the outbox holds."""

from __future__ import annotations

from typing import Any

from pipeline.app import App
from pipeline.commands.notices import dispatch_now
from pipeline.config.schedule import JobSchedule
from pipeline.scheduler.daemon import stopping
from pipeline.scheduler.runner import JobContext, JobSpec


def run(app: App, ctx: JobContext) -> dict[str, Any]:
    limit = ctx.options.get("limit")
    return dispatch_now(app, int(limit) if limit else None, stop=stopping)


SPEC = JobSpec(run, JobSchedule(cron="*/5 8-20 * * *"), "send due notices (SMS only 08:00–21:00)")
