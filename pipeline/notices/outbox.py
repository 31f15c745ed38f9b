"""The outbox: one row per notice × channel × recipient, under a unique key.

States::

    pending ──claim──> claimed ──(about to send)──> sending ──> sent / written
      ^   ^               │  └──> cancelled (closed,      ├──> retry ──(due)──> claimed again
      │   └─(given back)──┘      expired before sending)  ├──> failed (permanent, or exhausted)
      └─────────(requeue, after a person checked)──────── └──> unknown (never resent by itself)

Claims are one conditional UPDATE over a batch (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL); only rows whose state really changed are returned, so two dispatchers
never send the same row. A claimed row becomes ``sending`` (with its delivery attempt)
only right before it is sent, one at a time (`mark_sending`). A dispatcher killed
mid-batch therefore leaves one row in ``sending`` at most, which becomes ``unknown``
past its lease (it may have gone out: a person decides, then `requeue` it); the rows it
had claimed but not touched go back to ``pending`` (`recover_stale`).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    select,
    update,
)

from pipeline.config.notices import OutboxSettings
from pipeline.db.models import AnswerLink, DeliveryAttempt, OutboxMessage, table_of

outbox = table_of(OutboxMessage)
attempts = table_of(DeliveryAttempt)
answer_links = table_of(AnswerLink)
DUE_STATES = ("pending", "retry")
STATES = (
    "pending",
    "sending",
    "sent",
    "retry",
    "failed",
    "unknown",
    "cancelled",
    "written",
    "claimed",
)
"""`written`: handed to a file, not to the recipient (no SMTP / gateway configured): final,
never counted as delivered; a person may requeue it once a channel is configured.
`claimed`: in a dispatcher's batch, not tried yet."""
DONE = ("sent", "written")
HELD = ("claimed", "sending")
"""The states of a row a dispatcher holds (`claimed_by`)."""
REQUEUE_STATES = ("unknown", "written", "failed")
"""What a person may send again (`requeue`): they checked it did not arrive."""


@dataclass(frozen=True)
class Planned:
    key: str
    kind: str
    occurrence: str
    channel: str
    recipient: str
    recipient_name: str | None
    record_id: int | None
    department_code: str | None
    payload: dict[str, Any]
    link: NewLink | None = None
    """The company's answer link printed in this notice (stored with the row)."""


@dataclass(frozen=True)
class NewLink:
    code_hash: str
    expires_at: dt.datetime


def message_key(kind: str, subject: str, occurrence: str, channel: str, recipient: str) -> str:
    return f"{kind}:{subject}:{occurrence}:{channel}:{recipient}"


def fallback(row: dict[str, Any]) -> Planned | None:
    """The same notice on the next channel the planner found for it, or None.

    The planner stores the fallbacks in the payload (`fallbacks`, in the kind's channel
    order, each with its key and recipient) beside the content, which is the same for every
    channel; the new row keeps the fallbacks after its own, so a chain goes on.
    """
    payload = row["payload"]
    rest = payload.get("fallbacks") or []
    if not rest:
        return None
    first, later = rest[0], rest[1:]
    return Planned(
        key=first["key"],
        kind=row["kind"],
        occurrence=row["occurrence"],
        channel=first["channel"],
        recipient=first["recipient"],
        recipient_name=first["recipient_name"],
        record_id=row["record_id"],
        department_code=row["department_code"],
        payload={**payload, "fallbacks": later},
    )


def existing_keys(conn: Connection, keys: Iterable[str]) -> set[str]:
    keys = list(keys)
    found: set[str] = set()
    for i in range(0, len(keys), 500):
        found |= set(
            conn.execute(select(outbox.c.key).where(outbox.c.key.in_(keys[i : i + 500]))).scalars()
        )
    return found


def enqueue(conn: Connection, planned: list[Planned], now: dt.datetime) -> int:
    """Insert the rows not planned before; return how many were new."""
    fresh = {p.key: p for p in planned}
    for key in existing_keys(conn, fresh):
        del fresh[key]
    rows = [
        {
            **{k: v for k, v in p.__dict__.items() if k != "link"},
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            "updated_at": now,
        }
        for p in fresh.values()
    ]
    if rows:
        conn.execute(insert(outbox), rows)
    new_links = [
        {
            "code_hash": p.link.code_hash,
            "record_id": p.record_id,
            "outbox_key": p.key,
            "created_at": now,
            "expires_at": p.link.expires_at,
            "views": 0,
        }
        for p in fresh.values()
        if p.link is not None and p.record_id is not None
    ]
    if new_links:
        conn.execute(insert(answer_links), new_links)
    return len(rows)


def recover_stale(engine: Engine, now: dt.datetime) -> int:
    """Rows held past their lease (a dispatcher died): `sending` → `unknown` (it may have
    gone out; returns how many), `claimed` → due again (never tried: nothing to fear)."""
    c = outbox.c
    with engine.begin() as conn:
        unknown = conn.execute(
            update(outbox)
            .where(c.state == "sending", c.lease_until < now)
            .values(
                state="unknown",
                updated_at=now,
                last_error="the dispatcher stopped while sending (lease expired)",
            )
        ).rowcount
        conn.execute(
            update(outbox)
            .where(c.state == "claimed", c.lease_until < now)
            .values(
                state=case((c.attempts > 0, "retry"), else_="pending"),
                claimed_by=None,
                lease_until=None,
                updated_at=now,
            )
        )
    return int(unknown)


def claim(
    conn: Connection,
    now: dt.datetime,
    worker: str,
    lease: dt.timedelta,
    limit: int,
    channels: Iterable[str] | None = None,
    payload: bool = True,
) -> list[dict[str, Any]]:
    """Atomically move up to `limit` due rows to `claimed` for this worker, in a
    transaction of its own on `conn` (not in one); return them.

    One statement: the conditional UPDATE returns the rows it changed, whole — or, with
    `payload` false, without their payloads (~60 kB each with a DOCX), for a caller that
    reads each one when it needs it (`pipeline.delivery.reader`). Nothing is tried yet: each row
    becomes `sending`, with its delivery attempt, only right before it is sent
    (`mark_sending`).
    """
    params: dict[str, Any] = {
        "c_now": now,
        "c_worker": worker,
        "c_lease": now + lease,
        "c_limit": limit,
    }
    if channels is not None:
        params["c_channels"] = list(channels)
    statement = _claim_statement(conn.dialect.name == "postgresql", channels is not None, payload)
    with conn.begin():
        rows = conn.execute(statement, params).mappings()
        claimed = [{**r, "attempt_id": None} for r in rows]
    return sorted(claimed, key=lambda r: int(r["id"]))


@lru_cache(maxsize=8)
def _claim_statement(postgresql: bool, by_channel: bool, payload: bool) -> Any:
    """The claim's UPDATE, built once per shape (building it cost more than a small claim)."""
    c = outbox.c
    # The states as literals, not bound: only then can SQLite see that the query is within
    # the partial index ix_outbox_due (state IN ('pending', 'retry')) and read the batch
    # off it; with bound states it scanned the whole outbox — every row ever sent — and
    # sorted it, at each claim.
    is_due = c.state.in_(_literal(*DUE_STATES))
    now = bindparam("c_now", type_=c.next_attempt_at.type)
    due = select(c.id).where(is_due, c.next_attempt_at <= now)
    if by_channel:
        due = due.where(c.channel.in_(bindparam("c_channels", expanding=True)))
    due = due.order_by(c.next_attempt_at, c.id).limit(bindparam("c_limit", type_=Integer))
    if postgresql:
        due = due.with_for_update(skip_locked=True)
    return (
        update(outbox)
        .where(c.id.in_(due.scalar_subquery()), is_due)
        .values(
            state="claimed",
            claimed_by=bindparam("c_worker", type_=c.claimed_by.type),
            lease_until=bindparam("c_lease", type_=c.lease_until.type),
            updated_at=bindparam("c_now", type_=c.updated_at.type),
        )
        .returning(*(col for col in c if payload or col.name != "payload"))
    )


def _literal(*values: str) -> list[Any]:
    """SQL string literals: a state list rendered into the statement, not bound per call."""
    return [literal_column(f"'{v}'") for v in values]


def mark_statement(prefix: str) -> Any:
    """UPDATE a claimed row to `sending` (parameters ``<prefix>id``, ``worker``, ``now``,
    ``lease``): it changes nothing unless the row is still this worker's claim."""
    c = outbox.c
    return (
        update(outbox)
        .where(
            c.id == bindparam(f"{prefix}id"),
            c.claimed_by == bindparam(f"{prefix}worker"),
            c.state == _literal("claimed")[0],
        )
        .values(
            state=_literal("sending")[0],
            attempts=c.attempts + 1,
            lease_until=bindparam(f"{prefix}lease", type_=c.lease_until.type),
            updated_at=bindparam(f"{prefix}now", type_=c.updated_at.type),
        )
    )


def start_attempt_statement(prefix: str) -> Any:
    """INSERT the delivery attempt of a row being sent (``<prefix>id``, ``now``)."""
    return insert(attempts).values(
        outbox_id=bindparam(f"{prefix}id", type_=attempts.c.outbox_id.type),
        started_at=bindparam(f"{prefix}now", type_=attempts.c.started_at.type),
    )


_MARK = mark_statement("b_")
_START_ATTEMPT = start_attempt_statement("b_").returning(attempts.c.id)
_MARKED = mark_statement("b_").returning(outbox.c.id).cte("marked")
_MARK_AND_START = (
    insert(attempts)
    .from_select(
        ["outbox_id", "started_at"],
        select(_MARKED.c.id, bindparam("b_now", type_=attempts.c.started_at.type)),
    )
    .add_cte(_MARKED)
    .returning(attempts.c.id)
)
"""PostgreSQL: the mark and its delivery attempt in one statement (one round trip); the
attempt is inserted only when the row was still this worker's claim."""


def mark_sending(
    conn: Connection, row: dict[str, Any], now: dt.datetime, lease: dt.timedelta
) -> int | None:
    """A claimed row is about to be sent: `sending`, one more attempt, its delivery attempt
    written (returns its id). None when the row is no longer this worker's (its lease
    ran out and another dispatcher took it): it must not be sent.

    The statements are built once (module level): building them per message cost more
    than running them."""
    params = {
        "b_id": row["id"],
        "b_worker": row["claimed_by"],
        "b_now": now,
        "b_lease": now + lease,
    }
    if conn.dialect.name == "postgresql":
        attempt = conn.execute(_MARK_AND_START, params).scalar_one_or_none()
        return None if attempt is None else int(attempt)
    if conn.execute(_MARK, params).rowcount != 1:
        return None
    return int(conn.execute(_START_ATTEMPT, params).scalar_one())


def release(
    engine: Engine, row_id: int, worker: str, when: dt.datetime, note: str, now: dt.datetime
) -> None:
    """Give a held row back (quiet hours, a cap, a channel down): not an attempt."""
    c = outbox.c
    with engine.begin() as conn:
        conn.execute(
            update(outbox)
            .where(c.id == row_id, c.claimed_by == worker, c.state.in_(HELD))
            .values(
                state="pending",
                next_attempt_at=when,
                attempts=c.attempts - case((c.state == "sending", 1), else_=0),
                updated_at=now,
                last_error=note,
                lease_until=None,
            )
        )
        _finish_attempt(conn, row_id, now, "deferred", note)


def requeue(
    conn: Connection,
    state: str,
    before: dt.datetime | None,
    ids: list[int] | None,
    actor: str,
    now: dt.datetime,
) -> list[int]:
    """Make rows in `state` (one of REQUEUE_STATES) due again, after a person checked.

    Audited: each row gets a delivery attempt with outcome `requeued` saying who, when and
    from which state; `last_error` keeps the reason it stopped. Returns the row ids.
    """
    if state not in REQUEUE_STATES:
        raise ValueError(f"only {', '.join(REQUEUE_STATES)} rows can be requeued")
    c = outbox.c
    query = select(c.id).where(c.state == state)
    if before is not None:
        query = query.where(c.updated_at < before)
    if ids:
        query = query.where(c.id.in_(ids))
    found = list(conn.execute(query.order_by(c.id)).scalars())
    if not found:
        return []
    note = f"requeued from {state} by {actor}"
    conn.execute(
        update(outbox)
        .where(c.id.in_(found), c.state == state)
        .values(
            state="pending",
            next_attempt_at=now,
            claimed_by=None,
            lease_until=None,
            updated_at=now,
        )
    )
    conn.execute(
        insert(attempts),
        [
            {
                "outbox_id": i,
                "started_at": now,
                "finished_at": now,
                "outcome": "requeued",
                "error": note,
                "detail": {"from": state, "by": actor},
            }
            for i in found
        ],
    )
    return found


def _finish_attempt(
    conn: Connection, row_id: int, now: dt.datetime, outcome: str, error: str | None
) -> None:
    """Close the row's latest attempt (a release: the row was claimed but not tried)."""
    a = attempts.c
    latest = select(func.max(a.id)).where(a.outbox_id == row_id).scalar_subquery()
    conn.execute(
        update(attempts)
        .where(and_(a.id == latest, a.finished_at.is_(None)))
        .values(finished_at=now, outcome=outcome, error=error)
    )


def backoff(attempt: int, settings: OutboxSettings, rng: random.Random) -> dt.timedelta:
    """Exponential with full jitter: spreads retries so a recovered server is not stormed."""
    ceiling = min(settings.max_backoff_seconds, settings.backoff_seconds * 2 ** max(attempt - 1, 0))
    return dt.timedelta(seconds=rng.uniform(ceiling / 2, ceiling))


def cancel(conn: Connection, row_ids: list[int], reason: str, now: dt.datetime) -> int:
    if not row_ids:
        return 0
    return conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(row_ids), outbox.c.state.in_(DUE_STATES))
        .values(state="cancelled", last_error=reason, updated_at=now)
    ).rowcount


def listing(
    engine: Engine, state: str | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    c = outbox.c
    query = select(
        c.id,
        c.key,
        c.kind,
        c.occurrence,
        c.channel,
        c.recipient,
        c.recipient_name,
        c.state,
        c.attempts,
        c.next_attempt_at,
        c.sent_at,
        c.last_error,
        c.record_id,
        c.department_code,
        c.updated_at,
    ).order_by(c.id)
    if state:
        query = query.where(c.state == state)
    if kind:
        query = query.where(c.kind == kind)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            s: n
            for s, n in conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
        }


@dataclass(frozen=True)
class Outcome:
    """One send's result, to be written with others in one transaction (`finish_many`)."""

    row: dict[str, Any]
    state: str
    now: dt.datetime
    error: str | None = None
    provider_id: str | None = None
    next_at: dt.datetime | None = None
    detail: dict[str, Any] | None = None


def finish_statements(prefix: str) -> dict[str, Any]:
    """The outcome writes, parameters named ``<prefix>…``: ``done`` (sent / written) and
    ``other`` update the outbox row while this worker still holds it (``id``, ``worker``,
    ``state``, ``now``, ``pid`` / ``error``, ``next``); ``attempt`` closes its delivery
    attempt (``aid``, ``now``, ``state``, ``error``, ``detail``)."""
    c, a = outbox.c, attempts.c
    held = and_(
        c.id == bindparam(f"{prefix}id"),
        c.state.in_(_literal(*HELD)),
        c.claimed_by == bindparam(f"{prefix}worker"),
    )
    return {
        "done": update(outbox)
        .where(held)
        .values(
            state=bindparam(f"{prefix}state", type_=c.state.type),
            updated_at=bindparam(f"{prefix}now", type_=c.updated_at.type),
            sent_at=bindparam(f"{prefix}now", type_=c.sent_at.type),
            last_error=None,
            lease_until=None,
            provider_id=bindparam(f"{prefix}pid", type_=c.provider_id.type),
        ),
        "other": update(outbox)
        .where(held)
        .values(
            state=bindparam(f"{prefix}state", type_=c.state.type),
            updated_at=bindparam(f"{prefix}now", type_=c.updated_at.type),
            last_error=bindparam(f"{prefix}error", type_=c.last_error.type),
            lease_until=None,
            next_attempt_at=func.coalesce(
                bindparam(f"{prefix}next", type_=c.next_attempt_at.type), c.next_attempt_at
            ),
        ),
        "attempt": update(attempts)
        .where(a.id == bindparam(f"{prefix}aid"), a.finished_at.is_(None))
        .values(
            finished_at=bindparam(f"{prefix}now", type_=a.finished_at.type),
            outcome=bindparam(f"{prefix}state", type_=a.outcome.type),
            error=bindparam(f"{prefix}error", type_=a.error.type),
            detail=bindparam(f"{prefix}detail", type_=a.detail.type),
        ),
    }


_FINISH = finish_statements("b_")


def finish_many(conn: Connection, outcomes: list[Outcome]) -> None:
    """Record the outcomes of a group of sends: one statement per kind of write (executed
    once per outcome, or as one executemany for several), built once at module level.

    Only rows this worker still holds change (a row taken over after its lease expired is
    left alone); each row's delivery attempt gets its outcome (a row cancelled before it
    was tried has none).
    """
    if not outcomes:
        return
    sent = [
        {
            "b_id": o.row["id"],
            "b_worker": o.row["claimed_by"],
            "b_now": o.now,
            "b_pid": o.provider_id,
            "b_state": o.state,
        }
        for o in outcomes
        if o.state in DONE
    ]
    other = [
        {
            "b_id": o.row["id"],
            "b_worker": o.row["claimed_by"],
            "b_now": o.now,
            "b_state": o.state,
            "b_error": o.error,
            "b_next": o.next_at,
        }
        for o in outcomes
        if o.state not in DONE
    ]
    tried = [
        {
            "b_aid": o.row["attempt_id"],
            "b_now": o.now,
            "b_state": o.state,
            "b_error": o.error,
            "b_detail": o.detail,
        }
        for o in outcomes
        if o.row["attempt_id"] is not None
    ]
    for name, params in (("done", sent), ("other", other), ("attempt", tried)):
        if params:
            # one parameter set: a plain execute (an executemany of one costs more)
            conn.execute(_FINISH[name], params[0] if len(params) == 1 else params)
