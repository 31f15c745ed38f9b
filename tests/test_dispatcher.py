"""The dispatcher's decisions, with `FakeChannel`s instead of servers: retry with backoff,
fall back to the next channel, a channel down, an unknown outcome — read off the outbox
rows, their delivery attempts and what each channel was given.

Three repair notices are planned through the CLI once per backend (e-mail first: each
company has an address and a phone) and every test starts from a copy of them. The same
paths with real SMTP and SMS servers: tests/test_dispatch.py.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, Engine, select

from pipeline.channels.base import ChannelError, OutcomeUnknown
from pipeline.channels.fake import FakeChannel, Script, fail_with
from pipeline.config import Config, load_config
from pipeline.db.engine import make_engine
from pipeline.db.models import DeliveryAttempt, OutboxMessage, Record, table_of
from pipeline.delivery import dispatcher as dispatcher_module
from pipeline.delivery.dispatcher import ACTOR, Dispatcher, Limits
from pipeline.delivery.steps import StepWriter, Told
from pipeline.delivery.tuning import dispatching
from pipeline.errors import ChannelDown
from pipeline.ledger.state import record_told
from pipeline.notices.outbox import Outcome, claim, finish_many, mark_sending
from tests.helpers import DbCopy, DispatchSetup, cli_at, dispatch_config, load_notices

SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=SH)
N = 3
PHONES = [f"139{i:08d}" for i in range(1, N + 1)]
outbox = table_of(OutboxMessage)
attempts = table_of(DeliveryAttempt)
Mark = tuple[dict[str, Any], dt.datetime, dt.timedelta]


def make_dispatcher(
    config: Config, engine: Engine, channels: dict[str, FakeChannel], now: dt.datetime
) -> Dispatcher:
    """The dispatcher under test: the one place that knows its constructor."""
    settings = config.settings
    start, end = (dt.time.fromisoformat(t) for t in settings.sms.quiet_hours)
    rates = {"email": settings.email.rate_per_minute, "sms": settings.sms.rate_per_minute}
    limits = Limits(settings.tz, (start, end), settings.sms.daily_cap_per_number, rates)
    transports: dict[str, Any] = dict(channels)
    return Dispatcher(
        engine,
        config.notices,
        transports,
        limits,
        lambda: now,
        "unit-test",
        rng=random.Random(7),
    )


def down(message: str) -> ChannelError:
    """An error that takes its whole channel down (a rejected login)."""
    return ChannelDown(message)


@dataclass
class Site:
    config: Config
    engine: Engine
    email: FakeChannel
    sms: FakeChannel
    manual: FakeChannel

    def script(self, channel: str, script: Script | None) -> None:
        getattr(self, channel).script = script

    def dispatch(self, now: dt.datetime) -> dict[str, Any]:
        channels = {"email": self.email, "sms": self.sms, "manual": self.manual}
        dispatcher = make_dispatcher(self.config, self.engine, channels, now)
        result: dict[str, Any] = dispatcher.run().as_json()
        return result

    def rows(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(outbox).order_by(outbox.c.id)).mappings()]

    def attempts(self, row: dict[str, Any]) -> list[str | None]:
        """The outcomes of the row's delivery attempts, in order."""
        query = select(attempts.c.outcome).where(attempts.c.outbox_id == row["id"])
        with self.engine.connect() as conn:
            return list(conn.execute(query.order_by(attempts.c.id)).scalars())


def _plan(url: str, folder: Path, config_dir: Path) -> None:
    cfg = dispatch_config(folder, config_dir, 25, "http://127.0.0.1:9/")
    with cli_at(url, folder, cfg) as cli:
        load_notices(DispatchSetup(cli, cfg, folder), N, email=True, phone=True)


@pytest.fixture
def site(db_copy: DbCopy, config_dir: Path, tmp_path: Path) -> Any:
    url = db_copy("dispatcher-notices", lambda url, folder: _plan(url, folder, config_dir))
    config = load_config(dispatch_config(tmp_path, config_dir, 25, "http://127.0.0.1:9/"), env={})
    engine = make_engine(url)
    try:
        yield Site(config, engine, FakeChannel("email"), FakeChannel("sms"), FakeChannel("manual"))
    finally:
        engine.dispose()


def fields(rows: list[dict[str, Any]], *names: str) -> list[tuple[Any, ...]]:
    return [tuple(row[name] for name in names) for row in rows]


def at(minutes: float) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minutes)


def always(error: Exception) -> Callable[[Any, int], Exception]:
    return lambda _message, _call: error


# --------------------------------------------------------------------------- sent


def test_the_planned_notices_go_out_once_with_their_receipts(site: Site) -> None:
    planned = fields(site.rows(), "kind", "channel", "state")
    assert planned == [("repair_notice", "email", "pending")] * N
    result = site.dispatch(NOW)
    assert (result["claimed"], result["sent"]) == (N, N)
    assert sorted(m.recipient for m in site.email.sent) == [f"c{i}@example.com" for i in (1, 2, 3)]
    assert site.email.opened == 1  # one batch: the channel is opened once
    rows = site.rows()
    assert fields(rows, "state", "attempts") == [("sent", 1)] * N
    assert sorted(r["provider_id"] for r in rows) == ["fake-1", "fake-2", "fake-3"]
    assert all(r["sent_at"] == NOW for r in rows)
    assert [site.attempts(r) for r in rows] == [["sent"]] * N
    assert site.dispatch(at(60))["claimed"] == 0 and site.email.calls == N


# --------------------------------------------------------------------------- retry


def test_a_retryable_failure_is_retried_after_a_growing_backoff_then_sent(site: Site) -> None:
    site.script("email", fail_with(ChannelError("421 busy", permanent=False), times=2 * N))
    assert site.dispatch(NOW)["retry"] == N
    first = site.rows()
    assert fields(first, "state", "attempts", "last_error") == [("retry", 1, "421 busy")] * N
    # backoff_seconds 60, full jitter: the first wait is 30-60 s, the second 60-120 s
    assert all(NOW + dt.timedelta(seconds=30) <= r["next_attempt_at"] <= at(1) for r in first)
    assert site.dispatch(NOW + dt.timedelta(seconds=29))["claimed"] == 0
    assert site.dispatch(at(1))["retry"] == N
    second = site.rows()
    assert all(at(2) <= r["next_attempt_at"] <= at(3) for r in second)
    assert site.dispatch(at(2) - dt.timedelta(seconds=1))["claimed"] == 0
    assert site.dispatch(at(3))["sent"] == N
    rows = site.rows()
    assert fields(rows, "state", "attempts", "last_error") == [("sent", 3, None)] * N
    assert [site.attempts(r) for r in rows] == [["retry", "retry", "sent"]] * N
    assert site.email.calls == 3 * N and len(site.email.sent) == N


def test_the_wait_a_provider_asks_for_replaces_the_backoff(site: Site) -> None:
    site.script("email", fail_with(ChannelError("429", permanent=False, retry_after=300), times=N))
    site.dispatch(NOW)
    assert {r["next_attempt_at"] for r in site.rows()} == {at(5)}


def test_retries_end_after_max_attempts_in_a_failure(site: Site) -> None:
    site.script("email", always(ChannelError("421 busy", permanent=False)))
    limit = site.config.notices.outbox.max_attempts
    for run in range(limit):
        site.dispatch(at(run * 7 * 60))  # past any backoff (max_backoff_seconds is 6 h)
    emails = [r for r in site.rows() if r["channel"] == "email"]
    assert fields(emails, "state", "attempts") == [("failed", limit)] * N
    assert [site.attempts(r) for r in emails] == [["retry"] * (limit - 1) + ["failed"]] * N
    assert site.email.calls == limit * N


# --------------------------------------------------------------------------- fallback


def test_a_permanent_failure_falls_back_to_the_next_channel_in_the_same_run(site: Site) -> None:
    site.script("email", always(ChannelError("550 user unknown", permanent=True)))
    result = site.dispatch(NOW)
    assert (result["failed"], result["fallbacks"], result["sent"]) == (N, N, N)
    rows = site.rows()
    emails = [r for r in rows if r["channel"] == "email"]
    texts = [r for r in rows if r["channel"] == "sms"]
    assert fields(emails, "state", "attempts") == [("failed", 1)] * N
    assert fields(texts, "state", "attempts") == [("sent", 1)] * N
    same_notice = ("record_id", "kind", "occurrence")
    assert sorted(fields(texts, *same_notice)) == sorted(fields(emails, *same_notice))
    assert sorted(m.recipient for m in site.sms.sent) == PHONES
    assert all(m.sms_template == "repair_notice" and m.sms_params for m in site.sms.sent)
    assert site.dispatch(at(60))["claimed"] == 0 and site.email.calls == N


# --------------------------------------------------------------------------- channel down


def test_a_channel_down_is_tried_once_and_its_notices_wait_an_hour_untried(site: Site) -> None:
    site.script("email", always(down("535 login refused")))
    result = site.dispatch(NOW)
    assert result["channels_down"] == ["email"] and (result["sent"], result["failed"]) == (0, 0)
    assert site.email.calls == 1  # one login attempt, not one per notice
    rows = site.rows()
    assert fields(rows, "channel", "state", "attempts") == [("email", "pending", 0)] * N
    # the one tried is deferred; the others were never tried: no attempt at all
    assert [site.attempts(r) for r in rows] == [["deferred"]] + [[]] * (N - 1)
    assert site.sms.calls == 0  # no fallback: the notices are not failed, only delayed
    assert site.dispatch(at(59))["claimed"] == 0 and site.email.calls == 1  # out for an hour
    site.script("email", None)
    assert site.dispatch(at(60))["sent"] == N
    assert fields(site.rows(), "state", "attempts") == [("sent", 1)] * N


# --------------------------------------------------------------------------- unknown


def test_an_unknown_outcome_is_never_resent_nor_failed_over(site: Site) -> None:
    site.script("email", always(OutcomeUnknown("no answer after sending")))
    assert site.dispatch(NOW)["unknown"] == N
    rows = site.rows()
    assert fields(rows, "channel", "state", "attempts") == [("email", "unknown", 1)] * N
    assert all("no answer after sending" in r["last_error"] for r in rows)
    assert [site.attempts(r) for r in rows] == [["unknown"]] * N
    for later in (60, 24 * 60, 30 * 24 * 60):
        assert site.dispatch(at(later))["claimed"] == 0
    assert site.email.calls == N and site.sms.calls == 0


# --------------------------------------------------------------------------- killed mid-batch


class Killed(BaseException):
    """The process dies in the middle of a send (SIGKILL: nothing after it runs)."""


def test_a_dispatcher_killed_mid_batch_leaves_only_the_message_in_hand_unknown(
    site: Site,
) -> None:
    site.script("email", lambda _message, call: Killed() if call == 2 else None)
    with pytest.raises(Killed):
        site.dispatch(NOW)
    rows = site.rows()
    assert fields(rows, "state") == [("sent",), ("sending",), ("claimed",)]
    assert [site.attempts(r) for r in rows] == [["sent"], [None], []]
    # past the lease (notices.yaml outbox.lease_seconds): the one in hand is unknown, the
    # untried one goes out; the one sent is not sent again
    site.script("email", None)
    result = site.dispatch(at(11))
    assert (result["recovered_unknown"], result["sent"]) == (1, 1)
    assert fields(site.rows(), "state", "attempts") == [("sent", 1), ("unknown", 1), ("sent", 1)]
    assert site.email.calls == 3 and len(site.email.sent) == 2


# --------------------------------------------------------------------------- the step's writes


def _separately(
    conn: Connection, done: list[tuple[Outcome, Told | None]], mark: Mark | None
) -> int | None:
    """The step as separate Core statements: the outcomes, the ledger, the mark."""
    finish_many(conn, [outcome for outcome, _ in done])
    record_told(conn, [(t.record, t.values, t.key) for _, t in done if t is not None], ACTOR)
    return mark_sending(conn, *mark) if mark is not None else None


def _steps(
    url: str, write: Callable[..., int | None], tuned: bool = False
) -> tuple[list[int | None], list[Any]]:
    """One scripted sequence of steps (sent and told, retry, unknown, a mark that is no
    longer ours, a cancelled row, an outcome of a row no longer held); what each returned
    and every row of the four tables, as stored. `tuned`: on a connection set up as the
    dispatcher's (`dispatching`: autocommit on PostgreSQL)."""
    engine = make_engine(url)
    lease = dt.timedelta(minutes=10)
    try:
        with engine.connect() as conn, dispatching(conn, engine) if tuned else nullcontext():
            rows = claim(conn, NOW, "unit-test", lease, 10)
            query = select(table_of(Record)).where(table_of(Record).c.id == rows[0]["record_id"])
            record = dict(conn.execute(query).mappings().one())
            conn.commit()

            def step(done: list[tuple[Outcome, Told | None]], mark: Mark | None) -> int | None:
                with conn.begin():
                    found = write(conn, done, mark)
                for outcome, _ in done:
                    outcome.row["state"] = outcome.state
                return found

            def started(row: dict[str, Any], attempt: int | None) -> dict[str, Any]:
                return {**row, "attempt_id": attempt, "attempts": row["attempts"] + 1}

            r0, r1, r2 = rows
            told = Told(
                record, {"progress": 1, "notified_at": NOW, "notified_channel": "email"}, r0["key"]
            )
            later = NOW + dt.timedelta(minutes=5)
            results = [step([], (r0, NOW, lease))]
            r0 = started(r0, results[-1])
            results.append(
                step([(Outcome(r0, "sent", NOW, provider_id="<a@b>"), told)], (r1, NOW, lease))
            )
            r1 = started(r1, results[-1])
            retry = Outcome(r1, "retry", NOW, error="451 later", next_at=later)
            results.append(step([(retry, None)], (r2, NOW, lease)))
            r2 = started(r2, results[-1])
            unknown = Outcome(r2, "unknown", NOW, error="lost", detail={"provider": "x"})
            results.append(step([(unknown, None)], (r0, NOW, lease)))  # r0 is sent: not ours
            [again] = claim(conn, later + dt.timedelta(minutes=1), "unit-test", lease, 10)
            cancelled = Outcome({**again, "attempt_id": None}, "cancelled", later, error="closed")
            sent_elsewhere = Outcome(r2, "sent", later, provider_id="late", detail={"status": 200})
            results.append(step([(cancelled, None), (sent_elsewhere, told)], None))
            tables = [
                conn.exec_driver_sql(f"SELECT * FROM {name} ORDER BY id").all()
                for name in ("outbox", "delivery_attempts", "records", "ledger_events")
            ]
            return results, tables
    finally:
        engine.dispose()


def test_one_step_writes_what_the_separate_statements_write(
    db_copy: DbCopy, config_dir: Path
) -> None:
    """The dispatcher's per-message step (`StepWriter`: prepared statements on the DB-API
    cursor, one statement on PostgreSQL) stores exactly what `finish_many`, `record_told`
    and `mark_sending` store — the same values in the same stored form."""

    def build(url: str, folder: Path) -> None:
        _plan(url, folder, config_dir)

    separately = _steps(db_copy("dispatcher-notices", build), _separately)

    def one_step(conn: Connection, done: Any, mark: Mark | None) -> int | None:
        return StepWriter(conn, ACTOR).step(done, mark)

    for tuned in (False, True):
        stepped = _steps(db_copy("dispatcher-notices", build), one_step, tuned)
        assert stepped[0] == separately[0]
        assert stepped[0][3] is None and all(isinstance(x, int) for x in stepped[0][:3])
        for mine, theirs in zip(stepped[1], separately[1], strict=True):
            assert mine == theirs


def test_a_failure_while_a_message_is_out_still_records_that_message(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dispatcher claims more rows while a message is out; if that fails, the run ends
    but the message out is not left `sending` (it would become `unknown`): its outcome is
    read and written first."""
    notices = site.config.notices
    outbox_settings = notices.outbox.model_copy(update={"batch_size": N})  # room to top up
    site.config = site.config.model_copy(
        update={"notices": notices.model_copy(update={"outbox": outbox_settings})}
    )
    claims: list[int] = []
    real = dispatcher_module.claim

    def claim_then_fail(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        claims.append(1)
        if len(claims) == 2:  # the first claim while the first message is out
            raise RuntimeError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(dispatcher_module, "claim", claim_then_fail)
    with pytest.raises(RuntimeError, match="went away"):
        site.dispatch(NOW)
    rows = site.rows()
    assert fields(rows, "state") == [("sent",), ("claimed",), ("claimed",)]
    assert [site.attempts(r) for r in rows] == [["sent"], [], []]
    assert site.email.calls == 1
