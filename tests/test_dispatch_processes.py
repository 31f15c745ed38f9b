"""Dispatchers as real processes: killed mid-batch, and two racing on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    DISPATCH_NOW,
    UNLIMITED_EMAIL_RATE,
    CliRunner,
    DispatchSetup,
    dispatch_config,
    load_notices,
    outbox_states,
)
from tests.sms_server import running_server
from tests.smtp_server import Recorder, SlowRecorder, smtp_server


def _dispatch_process(
    cfg: Path, db_url: str, cwd: Path, now: str = DISPATCH_NOW
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CREDIT_REPAIR_DATABASE_URL": db_url}
    argv = [
        sys.executable,
        "-m",
        "pipeline",
        "--config",
        str(cfg),
        "--now",
        now,
        "--commit",
        "dispatch",
        "--json",
    ]
    return subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(predicate: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_dispatcher_killed_mid_batch_loses_and_doubles_nothing(
    cli: CliRunner, db_url: str, tmp_path: Path, config_dir: Path
) -> None:
    recorder = SlowRecorder()
    with running_server() as sms, smtp_server(recorder) as port:
        cfg = dispatch_config(tmp_path, config_dir, port, sms.url, extra_email=UNLIMITED_EMAIL_RATE)
        s = DispatchSetup(CliRunner(cfg), cfg, tmp_path)
        load_notices(s, 1000)
        proc = _dispatch_process(cfg, db_url, tmp_path)
        try:
            _wait_for(lambda: len(recorder.received) >= 317)  # inside a batch of 50
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        before_restart = len(recorder.received)
        recorder.delay = 0  # the kill has landed
        # after the lease (notices.yaml outbox.lease_seconds = 600 s) the row in flight is
        # unknown and the claimed, untried rows are due again
        restart = _dispatch_process(cfg, db_url, tmp_path, now="2026-11-27T09:20")
        _out, err = restart.communicate(timeout=120)
        assert restart.returncode == 0, err.decode()
    states = outbox_states(s, now="2026-11-27T09:20")
    ids = recorder.message_ids()
    assert len(ids) == len(set(ids)), "a notice was sent twice"
    assert states.get("sent", 0) + states.get("unknown", 0) == 1000
    # at most the message in hand at the kill (the batch it had claimed went out after all)
    assert states.get("unknown", 0) <= 1
    assert len(ids) >= states["sent"] and len(ids) > before_restart
    unknown = s.cli("outbox", "--state", "unknown", "--json", now="2026-11-27T09:20").json_lines()
    assert all("lease expired" in u["last_error"] for u in unknown)


@pytest.mark.postgres
def test_two_dispatchers_racing_on_postgresql_never_send_one_notice_twice(
    pg_url: str, tmp_path: Path, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDIT_REPAIR_DATABASE_URL", pg_url)
    monkeypatch.chdir(tmp_path)
    recorder = Recorder()
    with running_server() as sms, smtp_server(recorder) as port:
        cfg = dispatch_config(tmp_path, config_dir, port, sms.url, extra_email=UNLIMITED_EMAIL_RATE)
        s = DispatchSetup(CliRunner(cfg), cfg, tmp_path)
        load_notices(s, 400)
        procs = [_dispatch_process(cfg, pg_url, tmp_path) for _ in range(2)]
        results = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), [r[1].decode()[-500:] for r in results]
    ids = recorder.message_ids()
    assert len(ids) == 400 and len(set(ids)) == 400
    assert outbox_states(s) == {"sent": 400}
    import json

    sent = [json.loads(r[0])["sent"] for r in results]
    assert sum(sent) == 400
