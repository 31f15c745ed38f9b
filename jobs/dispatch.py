"""Every few minutes within the allowed hours: send what the outbox holds."""

from __future__ import annotations

from pipeline import stages
from pipeline.app import App
from pipeline.config.schedule import JobSchedule
from pipeline.delivery.dispatcher import DispatchResult
from pipeline.logs import get_logger
from pipeline.scheduler.daemon import stopping
from pipeline.scheduler.runner import JobContext, JobSpec

log = get_logger(__name__)


def run(app: App, ctx: JobContext) -> DispatchResult:
    limit = ctx.options.get("limit")
    result = stages.dispatch(app, int(limit) if limit else None, stop=stopping)
    if result.written:  # unattended: say it in the log, where the operator looks
        log.warning(
            "dispatch.not_sent",
            written=result.written_by_channel,
            outbox_dir=app.config.settings.paths.outbox_dir,
        )
    return result


SPEC = JobSpec(run, JobSchedule(cron="*/5 8-20 * * *"), "send due notices (SMS only 08:00–21:00)")
