"""The ledger (台账): progress, willingness and plans per record, every change audited.

Progress codes follow the forms: penalties (附件3) 1 已告知, 2 处罚整改, 3 已申请,
4 已完成; list entries (附件4) 1 已告知, 2 处罚决定整改, 3 已申请, 4 已修复, 5 已移出;
0 means not yet told. Every change is a ``ledger_events`` row (what, old → new, when,
source, actor), written in the same transaction as the change.

Automatic transitions (`apply_lifecycle`, after each sync and each day). The pipeline
concludes only what the data proves; what it cannot know, a person confirms:

- a penalty that vanished from the snapshot before its removal date stays **open** as
  待核实 (``verify_reason``: ``likely_repaired`` when it was repairable, ``unexplained``
  when it could not have been repaired early — revoked, corrected, or a gap in the
  export). Only a confirmation (`confirm`) closes it: ``repaired`` (4 已完成, closed as
  ``repaired_early``), ``revoked``, ``data_gap`` or ``other``;
- a penalty that vanished on or after its removal date → closed as ``expired``;
- a penalty past its removal date that the latest snapshot still shows stays open;
  ``grace_days`` working days after the removal date it is flagged 超期仍公示
  (``overdue_display_since``), until it vanishes (closed as expired) or a person closes it;
  with ``ledger.overdue_display`` off, it is closed as expired at once (销账);
- a list entry that vanished → 5 已移出, closed as ``removed``;
- a record that reappears is reopened at its previous progress, its 待核实 cleared;
- green channel marks follow the configuration.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    update,
)

from pipeline.config import GreenChannelSettings, LedgerSettings
from pipeline.db.locks import write_lock
from pipeline.db.models import LedgerEvent, Record, table_of
from pipeline.db.types import UTCDateTime, scanned
from pipeline.domain.calendar import WorkingCalendar
from pipeline.errors import CalendarError, LedgerError
from pipeline.office.text import strip_controls
from pipeline.sync.normalize import decision_key

records = table_of(Record)
events = table_of(LedgerEvent)

PENALTY_PROGRESS = {0: "未告知", 1: "已告知", 2: "处罚整改", 3: "已申请", 4: "已完成"}
LIST_PROGRESS = {0: "未告知", 1: "已告知", 2: "处罚决定整改", 3: "已申请", 4: "已修复", 5: "已移出"}
WILLINGNESS = {"yes": "是", "no": "否", "unknown": ""}
SYSTEM = "credit-repair"


def progress_names(kind: str) -> dict[int, str]:
    return LIST_PROGRESS if kind == "list" else PENALTY_PROGRESS


def audit(
    conn: Connection,
    record_id: int,
    changes: dict[str, tuple[Any, Any]],
    at: dt.datetime,
    source: str,
    actor: str,
    note: str | None = None,
) -> None:
    """Write one event per changed field (old → new), as text."""
    rows = _event_rows(record_id, changes, at, source, actor, note)
    if rows:
        conn.execute(insert(events), rows)


def _event_rows(
    record_id: int,
    changes: dict[str, tuple[Any, Any]],
    at: dt.datetime,
    source: str,
    actor: str,
    note: str | None,
) -> list[dict[str, Any]]:
    """The ledger events of one record's changed fields (old → new, as text)."""
    return [
        {
            "record_id": record_id,
            "field": name,
            "old_value": _text(old),
            "new_value": _text(new),
            "at": at,
            "source": source,
            "actor": actor,
            "note": note,
        }
        for name, (old, new) in changes.items()
        if old != new
    ]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)


def change(
    conn: Connection,
    row: Any,
    values: dict[str, Any],
    at: dt.datetime,
    source: str,
    actor: str,
    note: str | None = None,
) -> None:
    """Update one record and audit each field that really changed."""
    diff = {k: (row[k], v) for k, v in values.items() if row[k] != v}
    if not diff:
        return
    conn.execute(
        update(records).where(records.c.id == row["id"]).values(**values, ledger_updated_at=at)
    )
    audit(conn, row["id"], diff, at, source, actor, note)


def change_many(
    conn: Connection,
    items: Sequence[tuple[Any, dict[str, Any], str | None]],
    at: dt.datetime,
    source: str,
    actor: str,
) -> int:
    """`change` for many records at once: each item is (the record as it was, the new
    values, the audit note). The same rows and events as `change` one by one, written with
    one executemany UPDATE per set of fields and one INSERT of every event. Returns how
    many records changed."""
    by_fields: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    audit_rows = []
    for row, values, note in items:
        diff = {k: (row[k], v) for k, v in values.items() if row[k] != v}
        if not diff:
            continue
        by_fields.setdefault(tuple(values), []).append(
            {"b_id": row["id"], **{f"b_{k}": v for k, v in values.items()}}
        )
        audit_rows += _event_rows(row["id"], diff, at, source, actor, note)
    for fields, params in by_fields.items():
        conn.execute(
            update(records)
            .where(records.c.id == bindparam("b_id"))
            .values({**{k: bindparam(f"b_{k}") for k in fields}, "ledger_updated_at": at}),
            params,
        )
    if audit_rows:
        conn.execute(insert(events), audit_rows)
    return sum(len(params) for params in by_fields.values())


def record_told(
    conn: Connection, told: list[tuple[dict[str, Any], dict[str, Any], str]], actor: str
) -> None:
    """`change` for a group of delivered notices (progress 0 → 1): two executemany statements.

    Each item is (the record as it was, the new values, the outbox key). Only records
    still at progress 0 change, and each changed field gets its audit event, as `change` does.
    """
    if not told:
        return
    r = records.c
    conn.execute(
        update(records)
        .where(r.id == bindparam("b_id"), r.progress == 0)
        .values(
            progress=bindparam("b_progress"),
            notified_at=bindparam("b_at"),
            notified_channel=bindparam("b_channel"),
            ledger_updated_at=bindparam("b_at"),
        ),
        [
            {
                "b_id": rec["id"],
                "b_progress": v["progress"],
                "b_at": v["notified_at"],
                "b_channel": v["notified_channel"],
            }
            for rec, v, _ in told
        ],
    )
    rows = [
        {
            "record_id": rec["id"],
            "field": name,
            "old_value": _text(rec[name]),
            "new_value": _text(new),
            "at": v["notified_at"],
            "source": "notice",
            "actor": actor,
            "note": f"notice {key} delivered",
        }
        for rec, v, key in told
        for name, new in v.items()
        if rec[name] != new
    ]
    if rows:
        conn.execute(insert(events), rows)


# --------------------------------------------------------------------------- lifecycle

VERIFY_REASONS = {"likely_repaired": "可能已修复", "unexplained": "原因不明"}
CONFIRMATIONS = {
    "repaired": "已修复",
    "revoked": "决定已撤销",
    "data_gap": "数据缺失",
    "other": "其他",
    "expired": "已届满撤下",
}
"""What a person may confirm about a record the snapshot no longer (or still) shows."""
CONFIRMED_CLOSE = {
    "repaired": "repaired_early",
    "revoked": "revoked",
    "data_gap": "data_gap",
    "other": "other",
    "expired": "expired",
}
REOPENABLE = ("repaired_early", "removed", "revoked", "data_gap", "other")


@dataclass
class Lifecycle:
    repaired_early: int = 0
    expired: int = 0
    removed: int = 0
    reopened: int = 0
    green_marked: int = 0
    green_unmarked: int = 0
    to_confirm: int = 0
    """Penalties that vanished before their removal date, newly 待核实."""
    overdue_display: int = 0
    """Penalties newly flagged 超期仍公示."""

    def as_json(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Policy:
    """What the lifecycle needs beyond the records: the green channel and the grace."""

    green: GreenChannelSettings
    overdue_display: bool = True
    overdue_before: dt.date | None = None
    """A still-shown penalty whose removal date is on or before this is 超期仍公示
    (today minus `grace_days` working days); None: nothing is flagged yet."""


def lifecycle_policy(
    settings: LedgerSettings, green: GreenChannelSettings, today: dt.date, calendar: WorkingCalendar
) -> Policy:
    """The policy for `today`: flag still-shown penalties removed `grace_days` working days ago."""
    try:
        before = calendar.latest_start(today, settings.grace_days)
    except CalendarError:
        # no working-day data near today: count weekdays only — a flag, not a legal date,
        # so an approximation (never earlier than the real count) beats no flag at all
        before = _weekdays_back(today, settings.grace_days)
    return Policy(green, settings.overdue_display, before)


def _weekdays_back(day: dt.date, n: int) -> dt.date:
    while n > 0:
        day -= dt.timedelta(days=1)
        n -= day.weekday() < 5
    return day


def apply_lifecycle(
    engine: Engine,
    today: dt.date,
    now: dt.datetime,
    green: GreenChannelSettings,
    policy: Policy | None = None,
) -> Lifecycle:
    policy = policy or Policy(green)
    result = Lifecycle()
    with engine.begin() as conn:
        write_lock(conn, "evaluate (ledger transitions)")
        _close_vanished(conn, today, now, result)
        _close_expired(conn, today, now, result, policy.overdue_display)
        if policy.overdue_display and policy.overdue_before is not None:
            _flag_overdue_display(conn, today, now, policy.overdue_before, result)
        _reopen_reappeared(conn, now, result)
        _mark_green(conn, now, policy.green, result)
    return result


def _open(extra: Any) -> Any:
    return and_(records.c.closed_on.is_(None), extra)


def _close_vanished(conn: Connection, today: dt.date, now: dt.datetime, result: Lifecycle) -> None:
    r = records.c
    query = select(records).where(_open(r.vanished_on.is_not(None)), r.verify_reason.is_(None))
    items = []
    for row in conn.execute(query).mappings():
        values, counter, note = _vanished(row)
        items.append((row, values, note))
        setattr(result, counter, getattr(result, counter) + 1)
    change_many(conn, items, now, "sync", SYSTEM)


def _vanished(row: Any) -> tuple[dict[str, Any], str, str]:
    """(new values, the counter, the audit note) for a record gone from the snapshot."""
    note = "record vanished from the snapshot"
    if row["kind"] == "list":
        return (
            {"progress": 5, "closed_on": row["vanished_on"], "close_reason": "removed"},
            "removed",
            note,
        )
    if row["removal_on"] is not None and row["vanished_on"] >= row["removal_on"]:
        return {"closed_on": row["vanished_on"], "close_reason": "expired"}, "expired", note
    # Gone before its removal date: repaired, revoked, corrected, or a gap in the export —
    # the data cannot tell which. A person confirms (`confirm`); until then it stays open.
    reason = "likely_repaired" if _could_be_repaired(row) else "unexplained"
    return {"verify_reason": reason}, "to_confirm", f"{note} before its removal date: to confirm"


def _could_be_repaired(row: Any) -> bool:
    start = row["repairable_from"]
    return row["status"] == "repairable" or (start is not None and row["vanished_on"] >= start)


_ID_CHUNK = 5000
"""Record ids per statement when a transition works on the ids it found."""


def _due_ids(conn: Connection, due: Any) -> Iterator[list[int]]:
    """The ids of the records `due` holds for, in chunks: one pass over the table finds
    them (a handful on a normal day), then each statement reaches them by id."""
    ids = list(conn.execute(select(records.c.id).where(due)).scalars())
    for i in range(0, len(ids), _ID_CHUNK):
        yield ids[i : i + _ID_CHUNK]


def _audit_select(
    conn: Connection,
    ids: list[int],
    field_name: str,
    new: Any,
    now: dt.datetime,
    note: Any,
    old: Any = None,
    when: Any = None,
) -> None:
    """One event per record of `ids` (where `when` holds), computed by the database: the
    rows `audit` would write for `field_name` going from `old` (default empty) to `new`."""
    r = records.c
    audit_rows = select(
        r.id,
        literal(field_name),
        literal(None, String) if old is None else old,
        new,
        literal(now, UTCDateTime()),
        literal("eligibility"),
        literal(SYSTEM),
        note,
    ).where(r.id.in_(ids))
    if when is not None:
        audit_rows = audit_rows.where(when)
    conn.execute(
        insert(events).from_select(
            ["record_id", "field", "old_value", "new_value", "at", "source", "actor", "note"],
            audit_rows,
        )
    )


def _close_expired(
    conn: Connection, today: dt.date, now: dt.datetime, result: Lifecycle, keep_shown: bool
) -> None:
    """Close (销账) open penalties past their removal date: set-based, audited like `change`.

    With `keep_shown`, only those the snapshot no longer shows (a 待核实 record whose
    removal date came): one still shown is a case (超期仍公示), not a closure.
    On the first evaluation of a large ledger this closes hundreds of thousands of rows;
    INSERT ... SELECT for the audit and UPDATE by id do it in seconds, not minutes.
    """
    r = records.c
    due = _open(and_(scanned(r.kind) == "penalty", r.removal_on <= today))
    if keep_shown:
        due = and_(due, r.vanished_on.is_not(None))
    note = literal("maximum disclosure period ended (销账)")
    for ids in _due_ids(conn, due):
        _audit_select(conn, ids, "closed_on", cast(r.removal_on, String), now, note)
        _audit_select(conn, ids, "close_reason", literal("expired"), now, note)
        closed = conn.execute(
            update(records)
            .where(r.id.in_(ids))
            .values(closed_on=r.removal_on, close_reason="expired", ledger_updated_at=now)
        )
        result.expired += closed.rowcount


def _flag_overdue_display(
    conn: Connection, today: dt.date, now: dt.datetime, before: dt.date, result: Lifecycle
) -> None:
    """超期仍公示: still in the snapshot `grace_days` working days after the removal date.

    Set-based, audited as `change` would (one event per record): the first evaluation of
    a large ledger flags hundreds of thousands of records."""
    r = records.c
    due = _open(
        and_(
            scanned(r.kind) == "penalty",
            r.vanished_on.is_(None),
            r.removal_on <= before,
            r.overdue_display_since.is_(None),
        )
    )
    note = (
        literal("still published ")
        + cast(r.removal_on, String)
        + literal(" after the maximum period: ask the site to take it down")
    )
    for ids in _due_ids(conn, due):
        _audit_select(conn, ids, "overdue_display_since", literal(today.isoformat()), now, note)
        flagged = conn.execute(
            update(records)
            .where(r.id.in_(ids))
            .values(overdue_display_since=today, ledger_updated_at=now)
        )
        result.overdue_display += flagged.rowcount


def _reopen_reappeared(conn: Connection, now: dt.datetime, result: Lifecycle) -> None:
    r = records.c
    to_confirm = and_(r.closed_on.is_(None), r.verify_reason.is_not(None))
    query = select(records).where(
        r.vanished_on.is_(None), or_(r.close_reason.in_(REOPENABLE), to_confirm)
    )
    for row in conn.execute(query).mappings():
        progress = row["progress"]
        if row["closed_on"] is not None:
            progress = _previous_progress(conn, row["id"], progress)
        change(
            conn,
            row,
            {"progress": progress, "closed_on": None, "close_reason": None, "verify_reason": None},
            now,
            "sync",
            SYSTEM,
            "record reappeared in the snapshot; reopened",
        )
        result.reopened += 1


def _previous_progress(conn: Connection, record_id: int, current: int) -> int:
    e = events.c
    old = conn.execute(
        select(e.old_value)
        .where(e.record_id == record_id, e.field == "progress", e.new_value == str(current))
        .order_by(e.id.desc())
        .limit(1)
    ).scalar()
    return int(old) if old is not None else current


STATUS_NAMES = {
    "not_published": "不予公示",
    "expired": "已届满",
    "non_repairable": "不可提前修复",
    "in_min_period": "最短公示期内",
    "repairable": "可修复",
    "error": "计算失败",
}
"""The statuses of a penalty on a date (`eligibility`), in precedence, as operators read them
(README "What the ledger concludes", 运维手册 十四)."""

FLAGS = {
    "to_confirm": "待核实",
    "overdue_display": "超期仍公示",
    "restricted": "修复受限",
    "unrouted": "未匹配部门",
    "invalid_row": "末次快照行无效",
}


def ledger_flags(row: Any) -> list[str]:
    """What a person should look at on an open entry (codes of FLAGS, in that order)."""
    if row["closed_on"] is not None:
        return []
    flags = []
    if row["verify_reason"]:
        flags.append("to_confirm")
    if row["overdue_display_since"]:
        flags.append("overdue_display")
    if row["restrictions"]:
        flags.append("restricted")
    if row["route_note"]:
        flags.append("unrouted")
    if row.get("invalid_row_id"):
        flags.append("invalid_row")
    return flags


def is_green(row: Any, green: GreenChannelSettings) -> str | None:
    """Why a record is in the green channel, or None."""
    if row["uscc"] and row["uscc"] in green.entities:
        return "entity list"
    if row["industry"] and any(i in row["industry"] for i in green.industries):
        return f"industry {row['industry']}"
    text = " ".join(row[k] or "" for k in ("entity_name", "violation_type", "facts"))
    hit = next((k for k in green.keywords if k in text), None)
    return f"keyword {hit}" if hit else None


def _mark_green(
    conn: Connection, now: dt.datetime, green: GreenChannelSettings, result: Lifecycle
) -> None:
    """Green channel marks of open records, as `is_green` says, written as `change` would
    (both fields and `ledger_updated_at`, one event per field that changed).

    `is_green` is evaluated by the database (`_green_reason`), so only the records whose
    mark or reason changes come back — a handful on a normal day, every green record on
    the first — and they are written set-based, by id (a row at a time, PostgreSQL spent
    seconds per ten thousand records on the statements alone)."""
    r = records.c
    reason = _green_reason(conn.dialect.name, green)
    marked = reason.is_not(None)
    # green now or green before: the mark or the reason may change (the rest stay as they are)
    query = select(r.id, r.green_channel, r.green_reason, reason.label("new_reason")).where(
        r.closed_on.is_(None), or_(r.green_channel, marked)
    )
    ids = []
    for row in conn.execute(query).mappings():
        why = row["new_reason"]
        if (why is not None) != row["green_channel"] or (why and why != row["green_reason"]):
            ids.append(row["id"])
            result.green_marked += why is not None
            result.green_unmarked += why is None
    note = literal(None, String)
    for i in range(0, len(ids), _ID_CHUNK):
        chunk = ids[i : i + _ID_CHUNK]
        _audit_select(
            conn,
            chunk,
            "green_channel",
            _bool_text(marked),
            now,
            note,
            old=_bool_text(r.green_channel),
            when=r.green_channel != marked,
        )
        _audit_select(
            conn,
            chunk,
            "green_reason",
            reason,
            now,
            note,
            old=r.green_reason,
            when=r.green_reason.is_distinct_from(reason),
        )
        conn.execute(
            update(records)
            .where(r.id.in_(chunk))
            .values(green_channel=marked, green_reason=reason, ledger_updated_at=now)
        )


def _bool_text(value: Any) -> Any:
    """A boolean as `audit` writes it: 'True' / 'False'."""
    return case((value, literal("True")), else_=literal("False"))


def _green_reason(dialect: str, green: GreenChannelSettings) -> Any:
    """`is_green` in SQL: the reason (or NULL) of each record, the tests in the same order."""
    r = records.c

    def holds(text: Any, part: str) -> Any:  # `part in text`, case-sensitive as Python's
        found = func.strpos(text, part) if dialect == "postgresql" else func.instr(text, part)
        return found > 0

    whens: list[tuple[Any, Any]] = []
    if green.entities:
        whens.append((and_(r.uscc != "", r.uscc.in_(green.entities)), literal("entity list")))
    if green.industries:
        industry = or_(*(holds(r.industry, i) for i in green.industries))
        whens.append((and_(r.industry != "", industry), literal("industry ") + r.industry))
    text = (
        func.coalesce(r.entity_name, "")
        + literal(" ")
        + func.coalesce(r.violation_type, "")
        + literal(" ")
        + func.coalesce(r.facts, "")
    )
    for k in green.keywords:
        if not k:
            # `is_green` stops at the first keyword in the text; the empty one is in every
            # text, and its hit is falsy: no reason, whatever keywords follow
            whens.append((true(), null()))
            break
        # a keyword without a blank is in the joined text exactly when it is in one of the
        # fields (a match across a field boundary holds the blank): no text to build per row
        parts = [r.entity_name, r.violation_type, r.facts] if k and " " not in k else [text]
        whens.append((or_(*(holds(part, k) for part in parts)), literal(f"keyword {k}")))
    return case(*whens, else_=null()) if whens else null()


# --------------------------------------------------------------------------- manual changes


@dataclass
class LedgerUpdate:
    """What `ledger set` (or an import row) asks to change; None = leave as is."""

    willingness: str | None = None
    progress: int | None = None
    planned_on: dt.date | None = None
    remarks: str | None = None
    responsible: str | None = None
    repair_effect: str | None = None
    commitment_on: dt.date | None = None
    follow_up_on: dt.date | None = None
    receipt_confirmed: bool = False
    confirm: str | None = None
    """Why a record left the snapshot (a key of CONFIRMATIONS): closes a 待核实 entry, or
    (``expired``) one still shown past its period once the site took it down."""
    notified_method: str | None = None
    """How a person delivered the notice (a key of NOTIFY_METHODS), with progress 1."""
    repairable_from: dt.date | None = None
    """附件4 可修复时间 of a list entry whose list has no periods in rules.yaml."""
    extra: dict[str, Any] = field(default_factory=dict)


NOTIFY_METHODS = {"phone": "电话", "paper": "纸质送达", "onsite": "现场", "other": "其他"}


def find_record(conn: Connection, decision_no: str, authority: str | None) -> Any:
    """The record with this decision number (as typed, in any bracket style: keyed as sync
    keys it, `decision_key`)."""
    r = records.c
    try:
        key = decision_key(decision_no) or decision_no
    except ValueError as exc:
        raise LedgerError(f"decision number: {exc}") from None
    query = select(records).where(r.decision_key == key)
    if authority:
        query = query.where(r.authority == authority)
    rows = list(conn.execute(query).mappings())
    if not rows:
        where = f" of {authority}" if authority else ""
        raise LedgerError(f"no record with decision number {decision_no!r}{where}")
    if len(rows) > 1:
        names = ", ".join(sorted({f"{x['authority']} ({x['kind']})" for x in rows}))
        raise LedgerError(
            f"decision number {decision_no!r} is used by several records: {names}; give --authority"
        )
    return rows[0]


def check_transition(row: Any, upd: LedgerUpdate) -> list[str]:
    """Why this change is not allowed (empty: allowed)."""
    problems = []
    names = progress_names(row["kind"])
    willing = upd.willingness or row["willingness"]
    if upd.progress is not None:
        problems += _progress_problems(row, upd.progress, names, willing)
    if upd.willingness is not None and upd.willingness not in WILLINGNESS:
        problems.append(f"willingness must be yes, no or unknown, not {upd.willingness!r}")
    changes_state = upd.progress is not None or upd.willingness is not None or upd.confirm
    if row["closed_on"] is not None and changes_state:
        problems.append(
            f"the entry was closed on {row['closed_on']} ({row['close_reason']}); it can no longer change"
        )
    if upd.commitment_on is not None and not row["green_channel"]:
        problems.append("a commitment (承诺即修复) is only recorded for green-channel records")
    if upd.confirm is not None:
        problems += _confirm_problems(row, upd)
    if upd.repairable_from is not None and row["kind"] != "list":
        problems.append("a penalty's repairable date is computed from the rules; it cannot be set")
    if upd.notified_method is not None and upd.notified_method not in NOTIFY_METHODS:
        problems.append(
            f"method must be one of {', '.join(NOTIFY_METHODS)}, not {upd.notified_method!r}"
        )
    return problems


def _confirm_problems(row: Any, upd: LedgerUpdate) -> list[str]:
    if upd.confirm not in CONFIRMATIONS:
        return [f"confirm must be one of {', '.join(CONFIRMATIONS)}, not {upd.confirm!r}"]
    if row["closed_on"] is not None:
        return []  # reported above: a closed entry does not change
    if upd.confirm == "expired":
        if row["kind"] != "penalty" or row["status"] != "expired":
            return ["confirm expired is for a penalty past its maximum period (status expired)"]
        return []
    if row["verify_reason"] is None:
        return [
            f"confirm {upd.confirm} is for a record that left the snapshot (待核实); this one has not"
        ]
    if upd.confirm == "other" and not (upd.remarks or row["remarks"]):
        return ["confirm other needs --remarks saying what happened"]
    return []


def _progress_problems(row: Any, new: int, names: dict[int, str], willing: str) -> list[str]:
    old = row["progress"]
    if new not in names or new == 0:
        codes = ", ".join(f"{k} {v}" for k, v in names.items() if k)
        return [f"progress {new} is not a code of this ledger ({codes})"]
    if new < old:
        return [f"progress cannot go back from {old} {names[old]} to {new} {names[new]}"]
    if row["kind"] == "penalty" and new >= 3 and row["status"] not in ("repairable",):
        when = f" (repairable from {row['repairable_from']})" if row["repairable_from"] else ""
        return [
            f"progress {new} {names[new]} needs a repairable record; its status is {row['status']}{when}"
        ]
    if new in (3, 4) and willing == "no":
        return [
            f"progress {new} {names[new]} contradicts willingness 否 (no); set --willing yes first"
        ]
    return []


def apply_update(
    conn: Connection,
    row: Any,
    upd: LedgerUpdate,
    now: dt.datetime,
    source: str,
    actor: str,
    follow_up_days: int = 30,
) -> dict[str, tuple[Any, Any]]:
    """Validate and apply; raise LedgerError listing every refusal, changing nothing."""
    problems = check_transition(row, upd)
    if problems:
        raise LedgerError(f"{row['decision_no']}: " + "; ".join(problems) + "; nothing changed")
    values = _values(row, upd, now, follow_up_days, actor)
    diff = {k: (row[k], v) for k, v in values.items() if row[k] != v}
    change(conn, row, values, now, source, actor)
    return diff


def _values(
    row: Any, upd: LedgerUpdate, now: dt.datetime, follow_up_days: int, actor: str
) -> dict[str, Any]:
    plain = {
        "willingness": upd.willingness,
        "progress": upd.progress,
        "planned_on": upd.planned_on,
        "remarks": upd.remarks,
        "responsible": upd.responsible,
        "repair_effect": upd.repair_effect,
        "commitment_on": upd.commitment_on,
        "follow_up_on": upd.follow_up_on,
        "repairable_from": upd.repairable_from,
    }
    values = {k: v for k, v in plain.items() if v is not None}
    for name in ("remarks", "responsible", "repair_effect"):
        text = values.get(name)
        if isinstance(text, str):  # typed, pasted or imported: no control characters
            values[name] = strip_controls(text)
    if upd.commitment_on is not None and upd.follow_up_on is None:
        values["follow_up_on"] = upd.commitment_on + dt.timedelta(days=follow_up_days)
    if upd.progress == 1 and row["notified_at"] is None:
        values.update(notified_at=now, notified_channel="manual")  # a confirmed manual delivery
    if upd.receipt_confirmed or (upd.progress == 1 and row["notified_at"] is None):
        values["receipt_confirmed_at"] = row["receipt_confirmed_at"] or now
    if upd.notified_method is not None:
        values["notified_method"] = upd.notified_method
    if values.get("notified_channel") == "manual":
        values["notified_by"] = actor
    if upd.confirm is not None:
        values.update(_confirmed(row, upd.confirm))
    return values


def _confirmed(row: Any, confirm: str) -> dict[str, Any]:
    """Close a record a person confirmed: the day it left the snapshot (or its removal)."""
    values: dict[str, Any] = {"close_reason": CONFIRMED_CLOSE[confirm]}
    values["closed_on"] = row["removal_on"] if confirm == "expired" else row["vanished_on"]
    if confirm == "repaired":
        values["progress"] = 4 if row["kind"] == "penalty" else max(row["progress"], 4)
    return values


def open_entries(
    conn: Connection,
    department: str | None = None,
    status: str | None = None,
    include_closed: bool = False,
) -> list[dict[str, Any]]:
    """Ledger rows, green channel first, then by department and decision date."""
    r = records.c
    query = select(records)
    if not include_closed:
        query = query.where(
            r.closed_on.is_(None), or_(r.status.is_(None), r.status != "not_published")
        )
    if department:
        query = query.where(r.department_code == department)
    if status:
        query = query.where(r.status == status)
    query = query.order_by(
        r.green_channel.desc(), r.department_code, r.kind.desc(), r.decision_date, r.id
    )
    return [dict(row) for row in conn.execute(query).mappings()]
