"""`credit-repair run`: the long-running scheduler of a container.

APScheduler is only the clock: every `tick_seconds` it calls `tick`, which takes (or
keeps) the runner lease, writes the heartbeat and runs whatever is due. A second
replica finds the lease held and waits as a standby, taking over once the holder's
lease expires. SIGTERM/SIGINT stop the scheduler; a job in hand is finished (jobs
check `stopping` between messages), the lease is released, and the process exits 0.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from pipeline.app import App
from pipeline.clock import Clock
from pipeline.logs import get_logger
from pipeline.scheduler.lease import HeldLease, try_acquire
from pipeline.scheduler.runner import RUNNER_LEASE, JobSpec, Runner, beat, holder_id

log = get_logger("daemon")
stopping = threading.Event()
"""Set on SIGTERM/SIGINT; long jobs (dispatch) stop between messages when it is set."""


class Daemon:
    def __init__(self, app: App, registry: dict[str, JobSpec], real_clock: Clock) -> None:
        self.app = app
        self.runner = Runner(app, registry)
        self.clock = real_clock
        self.holder = holder_id()
        self.ttl = dt.timedelta(seconds=self.runner.schedule.runner.lease_seconds)
        self.lease: HeldLease | None = None
        self.scheduler = BlockingScheduler(timezone=app.config.settings.tz)

    def tick(self) -> None:
        if stopping.is_set():
            return
        beat(self.app.engine, self.holder, self.clock.now())
        if not self._hold_lease():
            log.info("runner.standby", holder=self.holder)
            return
        self.runner.run_due(self.clock.now())

    def _hold_lease(self) -> bool:
        if self.lease is not None and not self.lease.lost.is_set():
            return True
        if not try_acquire(self.app.engine, RUNNER_LEASE, self.holder, self.ttl, self.clock.now()):
            return False
        self.lease = HeldLease(
            self.app.engine, RUNNER_LEASE, self.holder, self.ttl, self.clock.now
        ).__enter__()
        log.info("runner.lease_acquired", holder=self.holder)
        return True

    def serve(self) -> int:
        settings = self.runner.schedule.runner
        self.scheduler.add_job(
            self.tick,
            IntervalTrigger(seconds=settings.tick_seconds, timezone=self.app.config.settings.tz),
            id="tick",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=settings.tick_seconds,
            next_run_time=self.clock.now(),
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        log.info("runner.start", holder=self.holder, tick_seconds=settings.tick_seconds)
        self.scheduler.start()  # returns after shutdown
        self._release()
        log.info("runner.stopped", holder=self.holder)
        return 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("runner.stopping", signal=signal.Signals(signum).name)
        stopping.set()
        threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

    def _release(self) -> None:
        if self.lease is not None:
            self.lease.__exit__(None, None, None)
            self.lease = None
