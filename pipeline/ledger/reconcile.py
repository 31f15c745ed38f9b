"""`ledger import`: a department's edited workbook back into the ledger, reconciled (对账).

For each editable cell the import compares three values: the one in the file, the one
the file was exported with, and the one in the database now. The exported value is
rebuilt from the audit trail (the ``old_value`` of the first ``ledger_events`` row of
that field after the export time; no event → the current value).

- file = exported: the department did not touch it; nothing to do (a newer pipeline
  value stays);
- file = current: already so; nothing to do;
- the field changed in the database after the export: a **conflict** — listed, never
  applied (the pipeline's or another import's value is kept);
- otherwise a change, checked with `pipeline.ledger.state.check_transition` and applied with
  `apply_update(..., source="import")`, one audit event per field.

A row with an error (bad cell, impossible transition, unknown record, another
department's record) stops the whole import, unless ``apply_valid`` skips those rows.
Structural problems (not an exported file, missing sheet or column, wrong department)
always stop it. An applied import (not a dry run) of a department's file is that
department's monthly report (``department_reports``, month of ``now``). Planning and
applying happen in one transaction, so what was checked is what is applied.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from pipeline.db.locks import write_lock
from pipeline.db.models import DepartmentReport, LedgerEvent, LedgerExport, Record, table_of
from pipeline.ledger.state import CONFIRMED_CLOSE, LedgerUpdate, apply_update, check_transition
from pipeline.ledger.workbook import (
    MAX_BYTES,
    MAX_ROWS,
    FileRow,
    Issue,
    LedgerFile,
    read_workbook,
)
from pipeline.office.archive import XlsxLimits
from pipeline.sync.normalize import decision_key

records = table_of(Record)
events = table_of(LedgerEvent)
exports = table_of(LedgerExport)
reports = table_of(DepartmentReport)
CHUNK = 500


@dataclass(frozen=True)
class Change:
    sheet: str
    row: int
    decision_no: str
    authority: str
    field: str
    column: str
    old: str | None
    new: str | None

    def __str__(self) -> str:
        return f"{self.sheet} row {self.row} {self.decision_no}: {self.column} {self.old or '(空)'} → {self.new or '(空)'}"


@dataclass(frozen=True)
class Conflict:
    sheet: str
    row: int
    decision_no: str
    authority: str
    field: str
    column: str
    exported: str | None
    file: str | None
    current: str | None
    changed_at: str | None
    reason: str

    def __str__(self) -> str:
        return (
            f"{self.sheet} row {self.row} {self.decision_no}: {self.column} — file {self.file or '(空)'}, "
            f"exported {self.exported or '(空)'}, ledger now {self.current or '(空)'} ({self.reason}); not applied"
        )


@dataclass
class ImportReport:
    file: str
    department: str | None = None
    token: str | None = None
    exported_at: dt.datetime | None = None
    dry_run: bool = False
    applied: bool = False
    rows_read: int = 0
    changes: list[Change] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    skipped_rows: list[str] = field(default_factory=list)  # "sheet row N"

    @property
    def exit_code(self) -> int:
        return 2 if self.errors and not self.applied else 0

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows_read,
            "changes": len(self.changes),
            "changed_rows": len({(c.sheet, c.row) for c in self.changes}),
            "conflicts": len(self.conflicts),
            "errors": len(self.errors),
            "skipped_rows": len(self.skipped_rows),
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "department": self.department,
            "token": self.token,
            "exported_at": self.exported_at.isoformat() if self.exported_at else None,
            "dry_run": self.dry_run,
            "applied": self.applied,
            "counts": self.counts(),
            "changes": [c.__dict__ for c in self.changes],
            "conflicts": [c.__dict__ for c in self.conflicts],
            "errors": [e.as_json() for e in self.errors],
            "warnings": [w.as_json() for w in self.warnings],
            "skipped_rows": self.skipped_rows,
        }

    def lines(self) -> list[str]:
        """The human diff (for stderr)."""
        out = [f"change: {c}" for c in self.changes]
        out += [f"conflict (对账): {c}" for c in self.conflicts]
        out += [f"error: {e}" for e in self.errors]
        out += [f"warning: {w}" for w in self.warnings]
        if self.skipped_rows:
            out.append("skipped (errors): " + ", ".join(self.skipped_rows))
        n = self.counts()
        verb = (
            "applied"
            if self.applied
            else ("would apply" if not self.errors else "nothing applied;")
        )
        out.append(
            f"{self.file}: {n['rows']} rows read, {verb} {n['changes']} changes in {n['changed_rows']} rows, "
            f"{n['conflicts']} conflicts, {n['errors']} errors"
            + (" (dry run)" if self.dry_run else "")
        )
        return out


# --------------------------------------------------------------------------- values


def _canon(name: str, value: Any) -> str | None:
    """A field's value as the audit trail writes it ('' and None alike)."""
    if name == "willingness":
        return str(value) if value else "unknown"
    if name == "progress":
        return str(value) if value is not None else "0"
    if value is None or value == "":
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _update(values: dict[str, Any]) -> LedgerUpdate:
    upd = LedgerUpdate()
    for name, value in values.items():
        setattr(upd, name, "" if value is None else value)
    return upd


# --------------------------------------------------------------------------- import


@dataclass
class _Plan:
    row: FileRow
    record: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)


def import_ledger(
    engine: Engine,
    path: Path,
    now: dt.datetime,
    department: str | None = None,
    *,
    dry_run: bool = False,
    apply_valid: bool = False,
    actor: str | None = None,
    follow_up_days: int = 30,
    max_bytes: int = MAX_BYTES,
    max_rows: int = MAX_ROWS,
    limits: XlsxLimits | None = None,
) -> ImportReport:
    """Validate, reconcile and (unless refused or a dry run) apply an edited workbook.

    `limits`: what the workbook may unpack to (settings.yaml `files`), checked before it
    is parsed.
    """
    book = read_workbook(path, max_bytes, max_rows, limits)
    report = ImportReport(str(path), dry_run=dry_run, rows_read=len(book.rows))
    report.errors += book.errors
    report.warnings += book.warnings
    with engine.begin() as conn:
        write_lock(conn, "ledger import")
        _check_export(conn, book, department, report)
        if report.errors:
            return report
        plans = _plan(conn, book, report)
        bad = [p for p in plans if p.row.errors]
        for plan in bad:
            report.errors += plan.row.errors
        skipped = {(p.row.layout.name, p.row.row_no) for p in bad}
        report.changes = [c for c in report.changes if (c.sheet, c.row) not in skipped]
        if dry_run or (bad and not apply_valid):
            return report
        report.skipped_rows = [f"{sheet} row {row}" for sheet, row in sorted(skipped)]
        who = (actor or f"import:{path.name}")[:100]
        for plan in plans:
            if plan.values and not plan.row.errors:
                apply_update(
                    conn, plan.record, _update(plan.values), now, "import", who, follow_up_days
                )
        report.applied = True
        _record_report(conn, report, path, now)
    return report


def _check_export(
    conn: Connection, book: LedgerFile, department: str | None, report: ImportReport
) -> None:
    if book.meta is None:
        return  # already an error
    e = exports.c
    row = conn.execute(select(exports).where(e.token == book.meta.token)).mappings().first()
    if row is None:
        report.errors.append(
            Issue(
                f"the export token {book.meta.token} is unknown to this database: the file was not "
                "exported from this ledger; export again"
            )
        )
        return
    report.token, report.exported_at = row["token"], row["exported_at"]
    report.department = row["department_code"]
    if department and row["department_code"] != department:
        report.errors.append(
            Issue(
                f"a file of department {row['department_code'] or '全区 (all departments)'} imported as "
                f"{department}; nothing changed"
            )
        )
    report.department = report.department or department


def _records(
    conn: Connection, rows: list[FileRow]
) -> tuple[dict[int, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    r = records.c
    ids = sorted({x.record_id for x in rows if x.record_id is not None})
    numbers = sorted({_key(x.decision_no) for x in rows if x.record_id is None and x.decision_no})
    by_id: dict[int, dict[str, Any]] = {}
    by_no: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(ids), CHUNK):
        for rec in conn.execute(
            select(records).where(r.id.in_(ids[start : start + CHUNK]))
        ).mappings():
            by_id[rec["id"]] = _with_confirm(dict(rec))
    for start in range(0, len(numbers), CHUNK):
        query = select(records).where(r.decision_key.in_(numbers[start : start + CHUNK]))
        for rec in conn.execute(query).mappings():
            by_no.setdefault(rec["decision_key"], []).append(_with_confirm(dict(rec)))
    return by_id, by_no


def _key(number: str) -> str:
    """A decision number as records are keyed by (`decision_key`): a number typed with other
    brackets still finds its record; one that cannot be a key finds none."""
    try:
        return decision_key(number) or number
    except ValueError:
        return number


def _with_confirm(rec: dict[str, Any]) -> dict[str, Any]:
    """The record with its 核实结果 as the file shows it: the confirmation that closed it."""
    confirmed = rec["closed_on"] is not None and rec["verify_reason"] is not None
    by_reason = {v: k for k, v in CONFIRMED_CLOSE.items()}
    rec["confirm"] = by_reason.get(rec["close_reason"]) if confirmed else None
    return rec


def _match(
    row: FileRow, by_id: dict[int, dict[str, Any]], by_no: dict[str, list[dict[str, Any]]]
) -> dict[str, Any] | None:
    key = row.layout.column("record_id").header
    number = row.layout.column("decision_no").header
    if row.record_id is not None:
        rec = by_id.get(row.record_id)
        if rec is None or rec["kind"] != row.layout.kind:
            row.error(
                f"no {row.layout.kind} entry with record number {row.record_id} in the ledger", key
            )
            return None
        if row.decision_no and _key(row.decision_no) != rec["decision_key"]:
            row.error(
                f"record {row.record_id} is decision {rec['decision_no']}, not {row.decision_no} "
                "(were the key columns edited?)",
                number,
            )
            return None
        return rec
    found = [
        x
        for x in by_no.get(_key(row.decision_no), [])
        if x["kind"] == row.layout.kind and (not row.authority or x["authority"] == row.authority)
    ]
    if len(found) != 1:
        what = "no entry" if not found else f"{len(found)} entries (fill in the authority column)"
        row.error(f"{what} with decision number {row.decision_no} in the ledger", number)
        return None
    return found[0]


def _history(
    conn: Connection, ids: list[int], since: dt.datetime
) -> dict[tuple[int, str], tuple[str | None, dt.datetime]]:
    """(record, field) → (value at export time, time of the last change) for fields changed since."""
    e = events.c
    out: dict[tuple[int, str], tuple[str | None, dt.datetime]] = {}
    for start in range(0, len(ids), CHUNK):
        query = (
            select(e.record_id, e.field, e.old_value, e.at)
            .where(e.record_id.in_(ids[start : start + CHUNK]), e.at > since)
            .order_by(e.id)
        )
        for ev in conn.execute(query):
            key = (ev.record_id, ev.field)
            first = out[key][0] if key in out else ev.old_value
            out[key] = (first, ev.at)
    return out


def _plan(conn: Connection, book: LedgerFile, report: ImportReport) -> list[_Plan]:
    by_id, by_no = _records(conn, book.rows)
    plans: list[_Plan] = []
    seen: dict[int, int] = {}
    for row in book.rows:
        if row.errors:
            plans.append(_Plan(row, {}))
            continue
        rec = _match(row, by_id, by_no)
        if rec is not None and report.department and rec["department_code"] != report.department:
            row.error(
                f"the entry {rec['decision_no']} belongs to department {rec['department_code']}: "
                f"a file of department {report.department} cannot change it "
                f"(a file of department {rec['department_code']} imported as {report.department}?)"
            )
        if rec is not None and rec["id"] in seen:
            row.error(f"the entry {rec['decision_no']} appears twice (also row {seen[rec['id']]})")
        if rec is not None:
            seen.setdefault(rec["id"], row.row_no)
        plans.append(_Plan(row, rec or {}))
    assert report.exported_at is not None
    ids = sorted({p.record["id"] for p in plans if p.record})
    history = _history(conn, ids, report.exported_at)
    for plan in plans:
        if plan.record and not plan.row.errors:
            _reconcile(plan, history, report)
    return plans


def _reconcile(
    plan: _Plan,
    history: dict[tuple[int, str], tuple[str | None, dt.datetime]],
    report: ImportReport,
) -> None:
    rec, row, layout = plan.record, plan.row, plan.row.layout
    closed_since = rec["closed_on"] is not None and (rec["id"], "closed_on") in history
    for name, value in row.values.items():
        new, current = _canon(name, value), _canon(name, rec[name])
        past = history.get((rec["id"], name))
        exported = _canon(name, past[0]) if past else current
        if new in (exported, current):
            continue
        column = layout.column(name).header
        base = (layout.name, row.row_no, rec["decision_no"], rec["authority"], name, column)
        if past or closed_since:
            when = past[1] if past else history[(rec["id"], "closed_on")][1]
            reason = (
                f"closed ({rec['close_reason']}) by the pipeline after the export"
                if closed_since
                else "changed in the ledger after the export"
            )
            report.conflicts.append(
                Conflict(*base, exported, new, current, when.isoformat(), reason)
            )
            continue
        if name in ("planned_on", "repairable_from") and value is None:
            report.warnings.append(
                Issue(
                    "a date cannot be cleared by an import; left as is",
                    layout.name,
                    row.row_no,
                    column,
                )
            )
            continue
        plan.values[name] = value
        report.changes.append(Change(*base, current, new))
    if plan.values:
        problems = check_transition(rec, _update(plan.values))
        target = "progress" if "progress" in plan.values else next(iter(plan.values))
        for problem in problems:
            row.error(f"{rec['decision_no']}: {problem}", layout.column(target).header)


def _record_report(conn: Connection, report: ImportReport, path: Path, now: dt.datetime) -> None:
    if not report.department:
        report.warnings.append(
            Issue(
                "a whole-ledger file (exported without --department) is not a department's monthly report"
            )
        )
        return
    conn.execute(
        insert(reports).values(
            department_code=report.department,
            month=now.strftime("%Y-%m"),
            received_at=now,
            file=str(path)[:500],
            counts=report.counts(),
        )
    )
