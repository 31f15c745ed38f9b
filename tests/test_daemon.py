"""`credit-repair run` as real processes: SIGTERM mid-dispatch, and two runners on one database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import (
    UNLIMITED_EMAIL_RATE,
    CliRunner,
    DispatchSetup,
    dispatch_config,
    load_notices,
    outbox_states,
)
from tests.sms_server import running_server
from tests.smtp_server import SlowRecorder, smtp_server


def _only_dispatch() -> dict[str, str]:
    """Every job off but dispatch, which runs every minute (ticks every 5 s)."""
    from jobs import REGISTRY

    env = {
        f"CREDIT_REPAIR_JOBS__{name.upper()}__ENABLED": "false"
        for name in REGISTRY
        if name != "dispatch"
    }
    return {
        **env,
        "CREDIT_REPAIR_RUNNER__TICK_SECONDS": "5",
        "CREDIT_REPAIR_JOBS__DISPATCH__CRON": "* * * * *",
    }


ONLY_DISPATCH = _only_dispatch()


def _runner(
    cfg: Path, db_url: str, cwd: Path, log: Path, extra: dict[str, str]
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CREDIT_REPAIR_DATABASE_URL": db_url, **extra}
    argv = [sys.executable, "-m", "pipeline", "--config", str(cfg), "run"]
    with log.open("wb") as err:  # the child keeps its own descriptor
        return subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)


def _wait(predicate: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _said(log: Path, event: str, times: int = 1) -> bool:
    """Whether the runner logged `event` (at least `times` times)."""
    text = log.read_text(encoding="utf-8", errors="replace")
    return text.count(f'"event": "{event}"') >= times


def test_sigterm_during_dispatch_finishes_the_message_in_hand_and_loses_nothing(
    cli: CliRunner, db_url: str, tmp_path: Path, config_dir: Path
) -> None:
    recorder = SlowRecorder()
    with running_server() as sms, smtp_server(recorder) as port:
        cfg = dispatch_config(tmp_path, config_dir, port, sms.url, extra_email=UNLIMITED_EMAIL_RATE)
        s = DispatchSetup(CliRunner(cfg), cfg, tmp_path)
        load_notices(s, 300)
        log = tmp_path / "runner.log"
        proc = _runner(cfg, db_url, tmp_path, log, ONLY_DISPATCH)
        try:
            _wait(lambda: len(recorder.received) >= 40)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert _said(log, "runner.stopped")
        stopped_at = len(recorder.received)
        recorder.delay = 0  # the stop has landed
        states = outbox_states(s)
        assert "sending" not in states and "unknown" not in states
        assert states["sent"] == stopped_at < 300
        rest = s.cli(
            "dispatch", "--json", now=None
        )  # released rows are due from the real stop time
        assert rest.json()["sent"] == 300 - stopped_at
    ids = recorder.message_ids()
    assert len(ids) == 300 and len(set(ids)) == 300


@pytest.mark.postgres
def test_two_runners_one_runs_the_other_waits_and_takes_over_when_it_dies(
    pg_url: str, tmp_path: Path, config_dir: Path
) -> None:
    lease = {
        "CREDIT_REPAIR_RUNNER__TICK_SECONDS": "5",
        "CREDIT_REPAIR_RUNNER__LEASE_SECONDS": "10",
        "CREDIT_REPAIR_JOBS__SYNC__CRON": "* * * * *",
    }
    first_log, second_log = tmp_path / "a.log", tmp_path / "b.log"
    first = _runner(config_dir, pg_url, tmp_path, first_log, lease)
    second = None
    try:
        _wait(lambda: _said(first_log, "runner.lease_acquired"))
        second = _runner(config_dir, pg_url, tmp_path, second_log, lease)
        _wait(lambda: _said(second_log, "runner.standby"))
        _wait(lambda: _said(second_log, "runner.standby", times=2))  # its next tick: still waiting
        assert not _said(second_log, "runner.lease_acquired")
        first.send_signal(signal.SIGKILL)
        first.wait()
        _wait(lambda: _said(second_log, "runner.lease_acquired"), timeout=40)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert _said(first_log, '"job.end') or _said(first_log, "job.end")
