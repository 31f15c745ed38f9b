"""ORM models: the whole data model of the campaign.

One ``records`` table holds both ledgers: administrative penalties (附件3, kind
``penalty``) and severe-dishonesty list entries (附件4, kind ``list``). Each row carries
three groups of columns, each owned by one stage:

- snapshot facts, owned by sync (``pipeline.sync.snapshot``);
- eligibility results, owned by the evaluator (``pipeline.ledger.eligibility``);
- ledger state (progress, willingness, plans), owned by ``pipeline.ledger.state`` and
  changed only through audited events (``ledger_events``).

Around it: sync runs and quarantined rows, change history, contacts, the notice
outbox with its delivery attempts, job runs and the runner lease, escalations,
monthly report runs, department reports and ledger exports.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pipeline.db.types import JSONType, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# Columns sync copies from a snapshot row into a record (and compares by hash).
SNAPSHOT_FIELDS: tuple[str, ...] = (
    "entity_name",
    "entity_type",
    "uscc",
    "legal_rep",
    "violation_type",
    "facts",
    "basis",
    "penalty_types",
    "penalty_content",
    "fine_amount",
    "confiscated_amount",
    "license_info",
    "decision_date",
    "publication_date",
    "valid_until",
    "publish_until",
    "authority_uscc",
    "data_source",
    "data_source_uscc",
    "severity_given",
    "industry",
    "list_name",
    "list_reason",
    "uscc_warning",
    "department_code",
    "route_note",
    "raw",
)


class Record(Base):
    """One penalty decision or one severe-list entry, and its ledger entry."""

    __tablename__ = "records"
    __table_args__ = (
        UniqueConstraint("kind", "authority", "decision_key", name="uq_records_key"),
        Index("ix_records_department_status", "department_code", "status"),
        Index("ix_records_uscc", "uscc"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # penalty | list
    authority: Mapped[str] = mapped_column(String(200))
    decision_no: Mapped[str] = mapped_column(String(200))  # as published (for display)
    # the key records are matched by: `pipeline.sync.normalize.decision_key` of decision_no
    # (brackets, width, spaces, 第 and leading zeros of the number do not count)
    decision_key: Mapped[str] = mapped_column(String(200))

    # --- snapshot facts (sync)
    entity_name: Mapped[str] = mapped_column(String(300))
    entity_type: Mapped[str | None] = mapped_column(String(50))
    uscc: Mapped[str | None] = mapped_column(String(18))
    uscc_warning: Mapped[str | None] = mapped_column(String(200))
    legal_rep: Mapped[str | None] = mapped_column(String(100))
    violation_type: Mapped[str | None] = mapped_column(Text)
    facts: Mapped[str | None] = mapped_column(Text)
    basis: Mapped[str | None] = mapped_column(Text)
    penalty_types: Mapped[str | None] = mapped_column(String(300))  # ';'-joined, normalised
    penalty_content: Mapped[str | None] = mapped_column(Text)
    fine_amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))  # 万元
    confiscated_amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))  # 万元
    license_info: Mapped[str | None] = mapped_column(Text)
    decision_date: Mapped[dt.date] = mapped_column(Date)  # list entries: listing date
    publication_date: Mapped[dt.date | None] = mapped_column(Date)
    valid_until: Mapped[dt.date | None] = mapped_column(Date)  # CF_YXQ, kept for reference
    publish_until: Mapped[dt.date | None] = mapped_column(Date)  # CF_GSJZQ, kept for reference
    authority_uscc: Mapped[str | None] = mapped_column(String(18))
    data_source: Mapped[str | None] = mapped_column(String(200))
    data_source_uscc: Mapped[str | None] = mapped_column(String(18))
    severity_given: Mapped[str | None] = mapped_column(String(20))
    industry: Mapped[str | None] = mapped_column(String(100))
    list_name: Mapped[str | None] = mapped_column(String(200))
    list_reason: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSONType)  # unknown extra columns
    content_hash: Mapped[str] = mapped_column(String(32))
    # digest of the raw row as read plus everything that shapes its reading (headers,
    # field_map, departments, jurisdiction, validation code): equal means the row need
    # not be validated again (pipeline.sync.snapshot); NULL means unknown
    raw_hash: Mapped[str | None] = mapped_column(String(32))
    department_code: Mapped[str] = mapped_column(String(32))
    route_note: Mapped[str | None] = mapped_column(String(300))  # unmatched / ambiguous routing
    source: Mapped[str] = mapped_column(String(100))
    first_sync_id: Mapped[int] = mapped_column(Integer)
    last_sync_id: Mapped[int] = mapped_column(Integer)
    first_seen_on: Mapped[dt.date] = mapped_column(Date)
    vanished_on: Mapped[dt.date | None] = mapped_column(Date)
    # 末次快照行无效: the latest snapshot's row for this record was quarantined (this is
    # the quarantine row's id), so the record was kept as it was instead of vanishing
    invalid_row_id: Mapped[int | None] = mapped_column(Integer)

    # --- eligibility (evaluator)
    severity: Mapped[str | None] = mapped_column(String(20))
    severity_source: Mapped[str | None] = mapped_column(String(60))
    rule_set: Mapped[str | None] = mapped_column(String(40))
    market_regulation: Mapped[bool] = mapped_column(Boolean, default=False)
    period_start: Mapped[dt.date | None] = mapped_column(Date)
    min_end: Mapped[dt.date | None] = mapped_column(Date)
    max_end: Mapped[dt.date | None] = mapped_column(Date)
    repairable_from: Mapped[dt.date | None] = mapped_column(Date)
    removal_on: Mapped[dt.date | None] = mapped_column(Date)
    publish_by: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str | None] = mapped_column(String(20))
    status_reason: Mapped[str | None] = mapped_column(Text)
    evaluated_on: Mapped[dt.date | None] = mapped_column(Date)
    # "<evaluator fingerprint>:<content_hash>" the results were computed from: equal to
    # today's, the daily recompute derives the status from the stored dates (eligibility)
    evaluated_key: Mapped[str | None] = mapped_column(String(64))
    # [{"code", "reason"}]: why repair may be refused (修复受限) — flags, never a status
    restrictions: Mapped[list[dict[str, str]] | None] = mapped_column(JSONType)

    # --- ledger (附件3/附件4)
    progress: Mapped[int] = mapped_column(SmallInteger, default=0)  # 0 = not yet told
    willingness: Mapped[str] = mapped_column(String(8), default="unknown")  # yes|no|unknown
    planned_on: Mapped[dt.date | None] = mapped_column(Date)
    responsible: Mapped[str | None] = mapped_column(String(100))
    remarks: Mapped[str | None] = mapped_column(Text)
    repair_effect: Mapped[str | None] = mapped_column(Text)
    closed_on: Mapped[dt.date | None] = mapped_column(Date)  # 销账
    close_reason: Mapped[str | None] = mapped_column(String(30))
    # 待核实: vanished before its removal date, open until a person says why
    # (likely_repaired | unexplained); NULL otherwise
    verify_reason: Mapped[str | None] = mapped_column(String(20))
    # 超期仍公示: still in the snapshot `grace_days` working days after removal_on
    overdue_display_since: Mapped[dt.date | None] = mapped_column(Date)
    green_channel: Mapped[bool] = mapped_column(Boolean, default=False)
    green_reason: Mapped[str | None] = mapped_column(String(200))
    commitment_on: Mapped[dt.date | None] = mapped_column(Date)  # 承诺即修复
    follow_up_on: Mapped[dt.date | None] = mapped_column(Date)
    notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    notified_channel: Mapped[str | None] = mapped_column(String(20))
    notified_by: Mapped[str | None] = mapped_column(String(100))  # a manual delivery: who
    # the company's own answers on its answer page (pipeline.web)
    viewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # 已查看: first view
    company_answer: Mapped[str | None] = mapped_column(String(20))  # the latest answer
    company_answer_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    help_phone: Mapped[str | None] = mapped_column(String(20))  # left with "需要帮助"
    notified_method: Mapped[str | None] = mapped_column(String(20))  # phone | paper | onsite
    receipt_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # 知晓
    ledger_updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class RecordChange(Base):
    """Snapshot history of a record: added, updated (old values), vanished, reappeared."""

    __tablename__ = "record_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), index=True)
    sync_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id"))
    change: Mapped[str] = mapped_column(String(12))
    old_values: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    on: Mapped[dt.date] = mapped_column(Date)


class LedgerEvent(Base):
    """Audit trail: every ledger change, old → new, with its source and actor."""

    __tablename__ = "ledger_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), index=True)
    field: Mapped[str] = mapped_column(String(30))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(String(12))  # sync|eligibility|notice|import|cli
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)


class SyncRun(Base):
    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(8))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="running")  # applied|refused|failed
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    vanished: Mapped[int] = mapped_column(Integer, default=0)
    out_of_scope: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text)


class QuarantinedRow(Base):
    """A row that could not be loaded (level error) or loaded with a warning."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sync_id: Mapped[int] = mapped_column(ForeignKey("sync_runs.id"), index=True)
    source: Mapped[str] = mapped_column(String(300))
    row_no: Mapped[int] = mapped_column(Integer)
    field: Mapped[str | None] = mapped_column(String(60))
    level: Mapped[str] = mapped_column(String(8))  # error | warning
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class SourceState(Base):
    """Conditional-GET validators of an HTTP source, so an unchanged export costs nothing."""

    __tablename__ = "source_state"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    etag: Mapped[str | None] = mapped_column(String(300))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Contact(Base):
    """An entity's contact; a change closes the old row (valid_to) and opens a new one."""

    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_current", "uscc", "valid_to"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uscc: Mapped[str] = mapped_column(String(18))
    contact_name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    source: Mapped[str] = mapped_column(String(300))
    valid_from: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    valid_to: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class OutboxMessage(Base):
    """One notice to one recipient on one channel; the unique key makes planning idempotent."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The claim's order (next_attempt_at, id) straight from a partial index of the due
        # rows: a claim reads its batch off the index instead of sorting every pending row.
        Index(
            "ix_outbox_due",
            "next_attempt_at",
            "id",
            postgresql_where=text("state IN ('pending', 'retry')"),
            sqlite_where=text("state IN ('pending', 'retry')"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"), index=True)
    department_code: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(30))
    occurrence: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(12))
    recipient: Mapped[str] = mapped_column(String(254))
    recipient_name: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    provider_id: Mapped[str | None] = mapped_column(String(200))
    last_error: Mapped[str | None] = mapped_column(Text)


class DeliveryAttempt(Base):
    """Written before a send and completed after it (healthchecks' pattern)."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(12))
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class JobRun(Base):
    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_due", "job", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(40), unique=True)
    job: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(12), default="running")  # ok|error|skipped
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(200))


class Lease(Base):
    """A named lease (the runner lock, the scheduler heartbeat) with an expiry."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))
    acquired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Escalation(Base):
    """A case or department moved up one level of the ladder in one month."""

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("subject_kind", "subject", "level", "month", name="uq_escalations_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    subject_kind: Mapped[str] = mapped_column(String(12))  # record | department
    subject: Mapped[str] = mapped_column(String(60))
    department_code: Mapped[str] = mapped_column(String(32))
    level: Mapped[int] = mapped_column(SmallInteger)
    reason: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ReportRun(Base):
    __tablename__ = "report_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[str] = mapped_column(String(30), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    files: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    kpis: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DepartmentReport(Base):
    """A department's monthly report: an imported ledger file received in that month."""

    __tablename__ = "department_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    department_code: Mapped[str] = mapped_column(String(32), index=True)
    month: Mapped[str] = mapped_column(String(7))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    file: Mapped[str] = mapped_column(String(500))
    counts: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class LedgerExport(Base):
    """An exported department workbook; its token lets an import detect conflicts."""

    __tablename__ = "ledger_exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(40), unique=True)
    department_code: Mapped[str | None] = mapped_column(String(32))
    exported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    file: Mapped[str] = mapped_column(String(500))


class Installation(Base):
    """When this installation started its schedule (one row): the first `init` or the
    scheduler's first tick. Monthly jobs are not caught up for due times before it."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    installed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    how: Mapped[str] = mapped_column(String(20))  # init | runner | upgrade


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, typed (``Model.__table__`` is typed as a FromClause)."""
    return Base.metadata.tables[model.__tablename__]


class AnswerLink(Base):
    """A personal link on one notice: its code (stored hashed), record and life."""

    __tablename__ = "answer_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the code
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), index=True)
    outbox_key: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    first_viewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_viewed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    views: Mapped[int] = mapped_column(Integer, default=0)


class CompanyAnswer(Base):
    """One answer given on an answer page (kept whole; the ledger holds the latest)."""

    __tablename__ = "company_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("answer_links.id"), index=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id"), index=True)
    answer: Mapped[str] = mapped_column(String(20))
    phone: Mapped[str | None] = mapped_column(String(20))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ip_hash: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
