"""The working parts a stage is built from, made from an `App`: the planner, the
dispatcher, the monthly report deadline.

Shared by `pipeline.stages`, `pipeline.checks` (which renders every template with the
planner) and the `preview` command; below all three, so none of them imports another.
"""

from __future__ import annotations

import datetime as dt
from types import TracebackType
from typing import cast

import requests

from pipeline.app import App
from pipeline.channels.base import Channel, Message, Pending, Pipelined, Preparer, Receipt
from pipeline.channels.fake import FakeChannel
from pipeline.config.schedule import JobSchedule
from pipeline.delivery.dispatcher import Dispatcher, Limits
from pipeline.delivery.transports import build_transports
from pipeline.notices.planner import Planner
from pipeline.notices.templating import Renderer, template_dirs
from pipeline.progress import Progress
from pipeline.scheduler.runner import holder_id
from pipeline.scheduler.schedule import deadline


def make_planner(app: App) -> Planner:
    config = app.config
    return Planner(config, config.notices, Renderer(template_dirs(config)), app.calendar)


class Counted:
    """A channel that steps a progress bar for each message it is handed."""

    def __init__(self, channel: Channel, progress: Progress) -> None:
        self.channel = channel
        self.name = channel.name
        self.progress = progress
        self._prepare = channel.prepare if isinstance(channel, Preparer) else None

    def send(self, message: Message) -> Receipt:
        try:
            return self.channel.send(message)
        finally:
            self.progress.step()

    def prepare(self, message: Message) -> None:
        if self._prepare is not None:
            self._prepare(message)

    def begin(self, message: Message) -> Pending:
        """The channel's `begin` (`send` for one that has none); counted when it is waited for."""
        if not isinstance(self.channel, Pipelined):
            return _Sent(self.send(message))
        try:
            return _CountedPending(self.channel.begin(message), self.progress)
        except BaseException:
            self.progress.step()
            raise

    def __enter__(self) -> Counted:
        self.channel.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.channel.__exit__(kind, exc, tb)


class _Sent:
    def __init__(self, receipt: Receipt) -> None:
        self.receipt = receipt

    def wait(self) -> Receipt:
        return self.receipt


class _CountedPending:
    def __init__(self, pending: Pending, progress: Progress) -> None:
        self.pending, self.progress = pending, progress

    def wait(self) -> Receipt:
        try:
            return self.pending.wait()
        finally:
            self.progress.step()


def make_dispatcher(
    app: App, session: requests.Session, progress: Progress | None = None
) -> Dispatcher:
    settings = app.config.settings
    notices = app.config.notices
    quiet = tuple(dt.time.fromisoformat(t) for t in settings.sms.quiet_hours)
    limits = Limits(
        settings.tz,
        (quiet[0], quiet[1]),
        settings.sms.daily_cap_per_number,
        {"email": settings.email.rate_per_minute, "sms": settings.sms.rate_per_minute},
    )
    transports = build_transports(app.config, session, app.clock.now)
    if app.what_if:  # nothing leaves the machine in a what-if: every channel only pretends
        transports = {name: cast(Channel, FakeChannel(name)) for name in transports}
    if progress is not None:
        transports = {name: Counted(channel, progress) for name, channel in transports.items()}
    return Dispatcher(
        app.engine,
        notices,
        transports,
        limits,
        app.clock.now,
        holder_id(),
    )


def report_deadline(app: App, month: str) -> dt.date:
    """When `month`'s reports are due: the escalate job's day (the 20th or a working day before)."""
    spec = app.config.schedule.jobs.get("escalate") or JobSchedule(by_day=20)
    year, mon = map(int, month.split("-"))
    if spec.by_day is None:
        return dt.date(year, mon, 20)
    return deadline(year, mon, spec, app.calendar, app.config.settings.tz).date()
