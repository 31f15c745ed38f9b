"""Send what the outbox holds: claim, re-check, send, record — one message at a time.

A batch is claimed (``claimed``, untried); right before a message is sent, one
transaction records the outcomes of the messages before it and marks this one
``sending`` with its delivery attempt. A killed dispatcher therefore leaves at most the
message in hand in ``sending`` — it becomes ``unknown`` when its lease runs out, never
resent by itself — and its untried claimed rows go back to ``pending``.

Before sending, the record is looked at again: a case closed, expired or applied for
since planning cancels its pending notices. SMS respect quiet hours and a per-number
daily cap; every channel has a per-minute rate. A permanent failure falls back to the
next channel of the kind; an authentication failure takes the channel out of service
for an hour instead of failing every message (no retry storm).

The dispatcher renders nothing and plans nothing: a message's text, HTML, SMS text and
DOCX, and the channels it falls back to, were all decided by the planner and are read
from the outbox payload (`to_message`, `pipeline.notices.outbox.fallback`).

One message is in flight at a time (`Flight`). An e-mail is handed over up to its body
(`Pipelined.begin`) and its verdict read later: while the server reads and checks the
~60 kB body, the dispatcher reads the next row's message, lets its channel build the
bytes (`Preparer`) and claims more rows — work the server waited for before. Nothing the
guarantees rest on moves: the next message is decided, marked and handed over only after
the one in flight has come back and its outcome is in the step that marks the next
(`_land`, `_start`). One thread does it all: a sender thread cost two thread hand-overs
per message, each waiting for the interpreter lock.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Engine, and_, bindparam, func, select

from pipeline.channels.base import (
    Attachment,
    Base64Attachment,
    Channel,
    Message,
    Pending,
    Pipelined,
    Preparer,
    Receipt,
)
from pipeline.config.notices import NoticesConfig
from pipeline.db.models import Lease, OutboxMessage, Record, table_of
from pipeline.delivery.reader import InlinePayloads, PayloadReader, payload_reader
from pipeline.delivery.steps import StepWriter, Told
from pipeline.delivery.tuning import Tuning, dispatching
from pipeline.errors import ChannelError, OutcomeUnknown
from pipeline.logs import get_logger
from pipeline.notices.docx import DOCX_FILENAME, DOCX_MIME, docx_base64
from pipeline.notices.outbox import (
    Outcome,
    backoff,
    claim,
    enqueue,
    fallback,
    recover_stale,
    release,
)
from pipeline.scheduler.lease import try_acquire

log = get_logger("dispatch")
records = table_of(Record)
outbox = table_of(OutboxMessage)
leases = table_of(Lease)
TOLD_KINDS = ("repair_notice", "list_notice")
REMINDER_KINDS = ("eligibility_reminder", "follow_up")
CHANNEL_DOWN_FOR = dt.timedelta(hours=1)
RECHECKED = [
    records.c[name]
    for name in (
        *("id", "kind", "status", "closed_on", "close_reason", "verify_reason"),
        *("progress", "notified_at", "notified_channel"),
    )
]
"""What the re-check (`_cancel_reason`) and the ledger write (`Told`) read of a record: the
whole row cost ~10 ms a batch to convert, for nothing."""
RECHECK = select(*RECHECKED).where(records.c.id.in_(bindparam("ids", expanding=True)))
ACTOR = "credit-repair"
SQLITE_TOP_UP = 5
"""SQLite: at most this many rows claimed at a time while a message is on the wire.
SQLite rewrites each ~60 kB row it claims: a claim of 5 takes about as long as a message.
On PostgreSQL (the payload stays where it is) half a batch is claimed at a time, in fewer
round trips."""
"""Who the ledger events of a delivered notice name."""


@dataclass
class DispatchResult:
    claimed: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0
    unknown: int = 0
    cancelled: int = 0
    deferred: int = 0
    fallbacks: int = 0
    recovered_unknown: int = 0
    channels_down: list[str] = field(default_factory=list)
    written: int = 0
    """Handed to a file, not sent (no SMTP / gateway configured): nobody was told."""
    written_by_channel: dict[str, int] = field(default_factory=dict)
    manual_tasks: int = 0
    """Of `sent`: tasks handed to a person to deliver (the manual channel): nobody told yet,
    until the delivery is confirmed in the ledger."""

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Flight:
    """A message handed over: its row, the record it may tell, its outcome to come."""

    row: dict[str, Any]
    record: dict[str, Any] | None
    pending: Pending


@dataclass(frozen=True)
class Done:
    """The outcome of a message sent in one go (a channel that is not `Pipelined`), or of
    a hand-over that failed: given back by `wait` as `send` would have."""

    receipt: Receipt | None = None
    error: ChannelError | None = None

    def wait(self) -> Receipt:
        if self.error is not None:
            raise self.error
        assert self.receipt is not None
        return self.receipt


def hand_over(channel: Channel, message: Message, pipelined: bool) -> Pending:
    """`channel.begin(message)` when it can (`pipelined`), else `send`. A channel's error
    is kept for `wait`, where it is the message's outcome; any other goes on at once, as
    it did from `send` (the message stays `sending`: unknown past its lease)."""
    try:
        if pipelined:
            return cast(Pipelined, channel).begin(message)
        return Done(receipt=channel.send(message))
    except ChannelError as exc:
        return Done(error=exc)


@dataclass
class Limits:
    """Per-run pacing: SMS quiet hours, a per-number daily cap, per-channel rates."""

    tz: Any
    quiet: tuple[dt.time, dt.time]
    daily_cap: int
    rates: dict[str, int]
    sent_this_minute: dict[tuple[str, str], int] = field(default_factory=dict)

    def quiet_until(self, now: dt.datetime) -> dt.datetime | None:
        """When SMS may go out again, if `now` is inside the quiet hours."""
        local = now.astimezone(self.tz)
        start, end = self.quiet
        inside = (
            (local.time() >= start or local.time() < end)
            if start > end
            else start <= local.time() < end
        )
        if not inside:
            return None
        day = local.date() if local.time() < end else local.date() + dt.timedelta(days=1)
        return dt.datetime.combine(day, end, self.tz)

    def over_rate(self, channel: str, now: dt.datetime) -> dt.datetime | None:
        minute = now.strftime("%Y%m%d%H%M")
        used = self.sent_this_minute.get((channel, minute), 0)
        if used >= self.rates.get(channel, 10**9):
            return now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        self.sent_this_minute[(channel, minute)] = used + 1
        return None


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        notices: NoticesConfig,
        transports: dict[str, Channel],
        limits: Limits,
        now: Callable[[], dt.datetime],
        worker: str,
        stop: threading.Event | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.engine, self.notices, self.transports = engine, notices, transports
        self.limits, self.now, self.worker = limits, now, worker
        self.stop = stop or threading.Event()
        self.preparers = {
            name: channel.prepare
            for name, channel in transports.items()
            if isinstance(channel, Preparer)  # once: a runtime Protocol check is slow
        }
        self.pipelined = {name for name, c in transports.items() if isinstance(c, Pipelined)}
        self.rng = rng or random.Random()
        self.result = DispatchResult()
        self.down: set[str] = set()
        self.batch_records: dict[int, dict[str, Any]] = {}
        self.queue: deque[dict[str, Any]] = deque()
        """Claimed rows not tried yet, in order."""
        self.drained = False
        """The last claim found fewer due rows than it asked for: no top-up until refilled."""
        self.sms_today: dict[str, int] = {}
        self.sms_day: dt.date | None = None
        """The local day `sms_today` counts."""
        self.outcomes: list[tuple[Outcome, Told | None]] = []
        self.lease = dt.timedelta(seconds=notices.outbox.lease_seconds)
        self.conn: Connection
        """The run's connection for the claim-to-outcome writes (`run` opens it)."""
        self.steps: StepWriter
        self.reader: PayloadReader | InlinePayloads
        self.tuning: Tuning
        self.flight: Flight | None = None
        """The message on the wire: at most one."""

    # ------------------------------------------------------------------ loop
    def run(self, limit: int | None = None) -> DispatchResult:
        self.result.recovered_unknown = recover_stale(self.engine, self.now())
        self.down = self._channels_down()
        with ExitStack() as stack:
            # One connection for the per-message transactions of the whole run: a pool
            # checkout per message (and its pre-ping round trip on PostgreSQL) cost more
            # than the writes.
            self.conn = stack.enter_context(self.engine.connect())
            self.tuning = stack.enter_context(dispatching(self.conn, self.engine))
            self.steps = StepWriter(self.conn, ACTOR)
            self.reader = payload_reader(self.engine, self.conn)
            stack.callback(self.reader.close)
            channels = stack.enter_context(ExitStack())
            # Run first when leaving, before any channel closes: see `_salvage`.
            stack.callback(self._salvage)
            self._loop(channels, limit)
        return self.result

    def _loop(self, channels: ExitStack, limit: int | None) -> None:
        """Send the queue of claimed rows, topping it up while a message is on the wire.

        The queue starts as one claim of `batch_size` rows. While a message is out, the
        dispatcher claims more whenever the queue has room for them (`SQLITE_TOP_UP`; never
        more than `batch_size` claimed and untried, as before), so the next claim is not made
        after the last message of a batch came back, with the server waiting; an empty
        queue is refilled the old way (after every outcome is written). A stop gives the
        queue back; a channel taken down gives its queued rows back as it comes to them.
        """
        opened: set[str] = set()
        self.drained = False
        batch = self.notices.outbox.batch_size
        top_up = max(batch // 2, 1)
        if self.conn.dialect.name == "sqlite":
            top_up = min(top_up, SQLITE_TOP_UP)
        while not self.stop.is_set():
            if not self.queue:
                self._land()
                self._flush()
                self.drained = False
                if not self._refill(batch, limit):
                    break
            row = self.queue[0]  # queued until handled: its record stays known (`_prefetch`)
            message = self._prepare(row)  # while the previous message is out
            if self.flight is not None and not self.drained and self._room(limit) >= top_up:
                self._refill(top_up, limit)
            self._count_sms(row)
            self.queue.popleft()
            self._land()
            if self.stop.is_set() or row["channel"] in self.down:
                self._give_back(
                    row,
                    self.now(),
                    "dispatcher stopping" if self.stop.is_set() else "channel out of service",
                )
                continue
            if row["channel"] not in opened:  # one connection per channel for the whole run
                channels.enter_context(self.transports[row["channel"]])
                opened.add(row["channel"])
            self.handle(row, message)
        self._land()
        while self.queue:  # stopped: what is claimed and untried goes back
            self._give_back(self.queue.popleft(), self.now(), "dispatcher stopping")
        self._flush()

    def _room(self, limit: int | None) -> int:
        room = self.notices.outbox.batch_size - len(self.queue)
        return room if limit is None else min(room, limit - self.result.claimed)

    def _refill(self, size: int, limit: int | None) -> int:
        """Claim up to `size` more rows (within `limit`) onto the queue; how many."""
        if limit is not None:
            size = min(size, limit - self.result.claimed)
        if size <= 0:
            return 0
        usable = [c for c in self.transports if c not in self.down]
        rows = claim(
            *(self.conn, self.now(), self.worker, self.lease, size, usable),
            payload=False,  # read ahead, while sending (`pipeline.delivery.reader`)
        )
        self.drained = len(rows) < size
        if rows:
            self.reader.want(row["id"] for row in rows)
            self.result.claimed += len(rows)
            self._prefetch(rows)
            self.queue.extend(rows)
        return len(rows)

    def handle(self, row: dict[str, Any], message: Message | None = None) -> None:
        now = self.now()
        record = self.batch_records.get(row["record_id"]) if row["record_id"] is not None else None
        reason = self._cancel_reason(row, record)
        if reason:
            self._finish(row, "cancelled", now, error=reason)
            self.result.cancelled += 1
            return
        later = self._defer_until(row, now)
        if later is not None:
            self._give_back(row, later, "deferred: quiet hours, daily cap or rate limit")
            return
        self._send(row, record, message)

    # ------------------------------------------------------------------ checks
    def _prefetch(self, rows: list[dict[str, Any]]) -> None:
        """The claimed rows' records, in one query: re-checked when claimed (seconds before
        sending), not per message. A record already known stays as the dispatcher knows it
        (a notice it delivered told it); one no queued row needs is dropped."""
        needed = {r["record_id"] for r in self.queue} | {r["record_id"] for r in rows}
        if self.flight is not None:
            needed.add(self.flight.row["record_id"])
        for known in set(self.batch_records) - needed:
            del self.batch_records[known]
        ids = {r["record_id"] for r in rows if r["record_id"] is not None} - set(self.batch_records)
        if ids:
            with self.conn.begin():
                found = self.conn.execute(RECHECK, {"ids": sorted(ids)}).mappings()
                for record in found:
                    self.batch_records[record["id"]] = dict(record)

    def _count_sms(self, row: dict[str, Any]) -> None:
        """Before an SMS is decided: today's count of its number, read with those of every
        queued number not known yet, in one query (the outbox has no index to count by
        number, so each count reads it whole: about once per batch, as before). A number
        the dispatcher knows keeps its count (it counts the messages it sent)."""
        if row["channel"] != "sms":
            return
        today = self.now().astimezone(self.limits.tz).date()
        if today != self.sms_day:  # the providers' daily counters start again
            self.sms_today, self.sms_day = {}, today
        if row["recipient"] in self.sms_today:
            return
        needed = {r["recipient"] for r in self.queue if r["channel"] == "sms"}
        if self.flight is not None and self.flight.row["channel"] == "sms":
            needed.add(self.flight.row["recipient"])
        for known in set(self.sms_today) - needed:
            del self.sms_today[known]
        phones = sorted(needed - set(self.sms_today))
        with self.conn.begin():
            counts = self._sms_counts(self.conn, phones)
        self.sms_today.update({phone: counts.get(phone, 0) for phone in phones})

    def _sms_counts(self, conn: Connection, phones: list[str]) -> dict[str, int]:
        local = self.now().astimezone(self.limits.tz)
        midnight = dt.datetime.combine(local.date(), dt.time(0), self.limits.tz)
        c = outbox.c
        query = (
            select(c.recipient, func.count())
            .where(
                c.channel == "sms",
                c.recipient.in_(phones),
                c.state == "sent",
                c.sent_at >= midnight,
            )
            .group_by(c.recipient)
        )
        return {phone: int(n) for phone, n in conn.execute(query)}

    def _cancel_reason(self, row: dict[str, Any], record: dict[str, Any] | None) -> str | None:
        if record is None:
            return None
        if record["closed_on"] is not None:
            return f"the entry was closed ({record['close_reason']}) before sending"
        if record.get("verify_reason"):
            return "the record left the snapshot before sending (待核实)"
        if record["kind"] == "penalty" and record["status"] in ("expired", "not_published"):
            return f"the record is {record['status']}"
        if row["kind"] in REMINDER_KINDS and record["progress"] >= 3:
            return "the company has already applied"
        return None

    def _defer_until(self, row: dict[str, Any], now: dt.datetime) -> dt.datetime | None:
        if row["channel"] == "sms":
            quiet = self.limits.quiet_until(now)
            if quiet is not None:
                return quiet
            if self.sms_today.get(row["recipient"], 0) >= self.limits.daily_cap:
                local = now.astimezone(self.limits.tz)
                return dt.datetime.combine(
                    local.date() + dt.timedelta(days=1), self.limits.quiet[1], self.limits.tz
                )
        return self.limits.over_rate(row["channel"], now)

    # ------------------------------------------------------------------ sending
    def _prepare(self, row: dict[str, Any]) -> Message | None:
        """The row's message, its bytes built by its channel, while another is on the wire.

        Only a head start: anything that goes wrong here happens again, in its place, when
        the row is sent (`_send` reads the message itself when this gave none)."""
        try:
            message = to_message(self._with_payload(row))
            prepare = self.preparers.get(row["channel"])
            if prepare is not None:
                prepare(message)
        except Exception:
            return None
        return message

    def _send(
        self, row: dict[str, Any], record: dict[str, Any] | None, message: Message | None
    ) -> None:
        message = message or to_message(self._with_payload(row))
        if not self._start(row):
            return  # no longer ours: its lease ran out and another dispatcher took it
        name = row["channel"]
        pending = hand_over(self.transports[name], message, name in self.pipelined)
        self.flight = Flight(row, record, pending)

    def _with_payload(self, row: dict[str, Any]) -> dict[str, Any]:
        """The row with its payload, which the claim left to the reader thread."""
        if "payload" not in row:
            row["payload"] = self.reader.get(row["id"])
        return row

    def _land(self) -> None:
        """Wait for the message in flight and buffer its outcome (written by the next step)."""
        flight, self.flight = self.flight, None
        if flight is None:
            return
        row, record = flight.row, flight.record
        try:
            receipt = flight.pending.wait()
        except OutcomeUnknown as exc:
            self._finish(row, "unknown", self.now(), error=str(exc))
            self.result.unknown += 1
            log.warning("notice.unknown", key=row["key"], error=str(exc))
        except ChannelError as exc:
            self._failed(row, exc)
        else:
            self._sent(row, record, receipt)

    def _sent(self, row: dict[str, Any], record: dict[str, Any] | None, receipt: Receipt) -> None:
        if not receipt.delivered:
            self._written(row, receipt)
            return
        now = self.now()
        told = None
        if (
            record is not None
            and row["kind"] in TOLD_KINDS
            and row["channel"] != "manual"
            and record["progress"] == 0
        ):
            told = Told(
                dict(record),
                {"progress": 1, "notified_at": now, "notified_channel": row["channel"]},
                row["key"],
            )
            record["progress"] = 1  # a second notice to the record in this run must not re-tell
        if row["channel"] == "sms":
            self.sms_today[row["recipient"]] = self.sms_today.get(row["recipient"], 0) + 1
        self._finish(
            row,
            "sent",
            now,
            provider_id=receipt.provider_id,
            detail=receipt.detail or None,
            told=told,
        )
        self.result.sent += 1
        if row["channel"] == "manual":
            self.result.manual_tasks += 1

    def _written(self, row: dict[str, Any], receipt: Receipt) -> None:
        """A file, not a delivery: recorded as `written`; the ledger is not told."""
        self._finish(
            row,
            "written",
            self.now(),
            provider_id=receipt.provider_id,
            detail=receipt.detail or None,
        )
        self.result.written += 1
        by = self.result.written_by_channel
        by[row["channel"]] = by.get(row["channel"], 0) + 1

    def _failed(self, row: dict[str, Any], exc: ChannelError) -> None:
        now = self.now()
        if exc.channel_down:
            self._take_down(row["channel"], now, str(exc))
            self._give_back(row, now + CHANNEL_DOWN_FOR, f"channel out of service: {exc}")
            return
        if not exc.permanent and row["attempts"] < self.notices.outbox.max_attempts:
            wait = (
                dt.timedelta(seconds=exc.retry_after)
                if exc.retry_after
                else backoff(row["attempts"], self.notices.outbox, self.rng)
            )
            self._finish(row, "retry", now, error=str(exc), next_at=now + wait)
            self.result.retry += 1
            return
        self._finish(row, "failed", now, error=str(exc))
        self.result.failed += 1
        self._fall_back(row, now)

    def _fall_back(self, row: dict[str, Any], now: dt.datetime) -> None:
        """Queue the same notice, as planned, on the next channel the planner found."""
        planned = fallback(self._with_payload(row))
        if planned is not None:
            self.drained = False  # due now: a top-up may take it
            with self.engine.begin() as conn:
                self.result.fallbacks += enqueue(conn, [planned], now)

    def _start(self, row: dict[str, Any]) -> bool:
        """Mark `row` sending, in one transaction with the outcomes before it (see the module
        docstring); False when the row is no longer this dispatcher's."""
        with self.conn.begin():
            attempt = self.steps.step(self.outcomes, (row, self.now(), self.lease))
            self.outcomes.clear()
        self.tuning.after_step()
        if attempt is None:
            return False
        row.update(attempt_id=attempt, attempts=row["attempts"] + 1, state="sending")
        return True

    def _finish(
        self,
        row: dict[str, Any],
        state: str,
        now: dt.datetime,
        told: Told | None = None,
        **kwargs: Any,
    ) -> None:
        """Buffer an outcome: written with the next message's start, or at the batch's end.

        A dispatcher killed before it is written leaves that one row in `sending`: it
        becomes `unknown` when the lease runs out — never resent, never lost.
        """
        self.outcomes.append((Outcome(row, state, now, **kwargs), told))

    def _flush(self) -> None:
        if self.outcomes:
            with self.conn.begin():
                self.steps.step(self.outcomes, None)
                self.outcomes.clear()

    def _salvage(self) -> None:
        """Leaving `run` with a message still in flight (an exception in the work done while
        it was out): read its outcome and write it with the others if the database still
        lets us; if not, it stays `sending` and becomes `unknown` past its lease, as after
        a kill. Runs before the channels close; the exception that ended the run goes on."""
        if self.flight is None:
            return
        try:
            self._land()
            self._flush()
        except Exception as exc:
            log.warning("dispatch.salvage_failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            self.flight = None

    def _give_back(self, row: dict[str, Any], when: dt.datetime, note: str) -> None:
        release(self.engine, row["id"], self.worker, when, note, self.now())
        self.result.deferred += 1

    # ------------------------------------------------------------------ channel health
    def _take_down(self, channel: str, now: dt.datetime, reason: str) -> None:
        self.down.add(channel)
        self.result.channels_down.append(channel)
        try_acquire(self.engine, f"channel-down:{channel}", reason[:200], CHANNEL_DOWN_FOR, now)
        log.error(
            "channel.down",
            channel=channel,
            reason=reason,
            until=(now + CHANNEL_DOWN_FOR).isoformat(),
        )

    def _channels_down(self) -> set[str]:
        c = leases.c
        with self.engine.connect() as conn:
            names = conn.execute(
                select(c.name).where(and_(c.name.like("channel-down:%"), c.expires_at > self.now()))
            ).scalars()
            return {n.split(":", 1)[1] for n in names}


def to_message(row: dict[str, Any]) -> Message:
    """The message an outbox row holds, as the planner rendered it (an SMS has no DOCX)."""
    payload = row["payload"]
    is_sms = row["channel"] == "sms"
    attachments: tuple[Attachment, ...] = ()
    if payload.get("docx") and not is_sms:
        # as planned: neither decoded nor re-encoded per message
        attachments = (Base64Attachment(DOCX_FILENAME, docx_base64(payload["docx"]), DOCX_MIME),)
    return Message(
        key=row["key"],
        channel=row["channel"],
        recipient=row["recipient"],
        recipient_name=row["recipient_name"],
        subject=payload["subject"],
        text=payload["sms_text"] if is_sms else payload["text"],
        html=None if is_sms else payload["html"],
        sms_template=payload.get("sms_template"),
        sms_params=payload.get("sms_params") or {},
        attachments=() if is_sms else attachments,
    )
