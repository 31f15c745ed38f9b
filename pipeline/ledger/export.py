"""`ledger export`: a department's sub-ledger as an .xlsx workbook in the 附件3/附件4 layout.

Chinese headers (row 2, frozen under the title), column widths, dropdowns for 是/否 and
the progress codes, real date cells, and sheet protection (no password) that locks every
column the pipeline owns; the department edits 意愿, 计划完成修复时间, 工作进展, 责任人及电话,
备注 and 修复效果. The export is recorded in ``ledger_exports`` with a random token, also
written to the hidden ``meta`` sheet, so `ledger import` can reconcile (对账) what changed
in the database after the file left. Every cell and the save go through
`pipeline.office.xlsx` (text never a formula; the file checked before it is in place).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy import Connection, Engine, insert, select

from pipeline.db.models import Contact, LedgerExport, table_of
from pipeline.ledger.state import FLAGS, VERIFY_REASONS, ledger_flags, open_entries
from pipeline.ledger.workbook import (
    CONFIRM_LABELS,
    FORMAT,
    LAYOUTS,
    META_SHEET,
    PENALTY_LAYOUT,
    Column,
    SheetLayout,
)
from pipeline.office.xlsx import Workbook, append, new_workbook, save_workbook

contacts = table_of(Contact)
exports = table_of(LedgerExport)
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
EDIT_FILL = PatternFill("solid", fgColor="FFF2CC")
DATE_FORMAT = "yyyy-mm-dd"
FIRST_DATA_ROW = 3


@dataclass(frozen=True)
class ExportResult:
    path: Path
    token: str
    department: str | None
    exported_at: dt.datetime
    penalties: int
    list_entries: int

    def as_json(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "token": self.token,
            "department": self.department,
            "exported_at": self.exported_at.isoformat(),
            "penalties": self.penalties,
            "list_entries": self.list_entries,
        }


def export_ledger(
    engine: Engine,
    out: Path,
    now: dt.datetime,
    department: str | None,
    department_names: dict[str, str],
) -> ExportResult:
    """Write the open entries (of one department, or all) and record the export."""
    token = secrets.token_hex(16)
    with engine.begin() as conn:
        rows = open_entries(conn, department)
        people = _contacts(conn, {r["uscc"] for r in rows if r["uscc"]})
        book = new_workbook()
        counts = {}
        for layout in LAYOUTS:
            mine = [r for r in rows if r["kind"] == layout.kind]
            counts[layout.kind] = len(mine)
            title = department_names.get(department, department) if department else "全区"
            _sheet(book, layout, mine, people, department_names, title or "")
        _meta(book, token, department, now)
        book.security.lockStructure = True  # no sheets added, removed or unhidden by mistake
        save_workbook(book, out)  # checked (no formula, well-formed) before it is in place
        conn.execute(
            insert(exports).values(
                token=token, department_code=department, exported_at=now, file=str(out)
            )
        )
    return ExportResult(out, token, department, now, counts["penalty"], counts["list"])


def _contacts(conn: Connection, codes: set[str]) -> dict[str, str]:
    """USCC → '联系人 电话' of the entity's current contact (企业负责人及电话)."""
    found: dict[str, str] = {}
    c = contacts.c
    ordered = sorted(codes)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        query = select(c.uscc, c.contact_name, c.phone).where(
            c.uscc.in_(chunk), c.valid_to.is_(None)
        )
        for row in conn.execute(query):
            found[row.uscc] = " ".join(x for x in (row.contact_name, row.phone) if x)
    return found


def _value(
    column: Column,
    row: dict[str, Any],
    seq: int,
    layout: SheetLayout,
    people: dict[str, str],
    names: dict[str, str],
) -> Any:
    if column.field == "seq":
        return seq
    if column.field == "record_id":
        return row["id"]
    if column.field == "willingness":
        return {"yes": "是", "no": "否"}.get(row["willingness"])
    if column.field == "progress":
        code = row["progress"]
        return f"{code}{layout.progress[code]}" if code else None
    if column.field == "department":
        return names.get(row["department_code"], row["department_code"])
    if column.field == "contact":
        return people.get(row["uscc"] or "")
    if column.field == "confirm":
        return None  # filled by the department for a 待核实 record (open entries only here)
    if column.field == "flags":
        return flag_text(row)
    value: Any = row.get(column.field)
    return value


def flag_text(row: dict[str, Any]) -> str | None:
    """The entry's flags in words, for the department (待核实 with its likely reason first)."""
    parts = []
    for flag in ledger_flags(row):
        if flag == "to_confirm":
            parts.append(f"待核实（{VERIFY_REASONS.get(row['verify_reason'], '')}，请填核实结果）")
        elif flag == "restricted":
            parts.append("修复受限：" + "；".join(r["reason"] for r in row["restrictions"]))
        else:
            parts.append(FLAGS[flag])
    return "；".join(parts) or None


def _sheet(
    book: Workbook,
    layout: SheetLayout,
    rows: list[dict[str, Any]],
    people: dict[str, str],
    names: dict[str, str],
    department: str,
) -> None:
    ws = book.create_sheet(layout.name)
    width = len(layout.columns)
    last = get_column_letter(width)
    append(ws, [layout.title.format(department=department)])
    ws.merge_cells(f"A1:{last}1")
    ws["A1"].font = Font(bold=True, size=14)
    ws["A1"].alignment = Alignment(horizontal="center")
    append(ws, [c.header for c in layout.columns])
    for index, column in enumerate(layout.columns, start=1):
        cell = ws.cell(row=2, column=index)
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
        dim = ws.column_dimensions[get_column_letter(index)]
        dim.width = column.width
        dim.hidden = column.hidden
    ws.row_dimensions[2].height = 45
    ws.freeze_panes = f"A{FIRST_DATA_ROW}"
    for seq, row in enumerate(rows, start=1):
        append(ws, [_value(c, row, seq, layout, people, names) for c in layout.columns])
    end = FIRST_DATA_ROW + max(len(rows), 1) - 1
    for index, column in enumerate(layout.columns, start=1):
        for (cell,) in ws.iter_rows(
            min_row=FIRST_DATA_ROW, max_row=end, min_col=index, max_col=index
        ):
            if column.kind == "date":
                cell.number_format = DATE_FORMAT
            if column.editable:
                cell.protection = Protection(locked=False)
                cell.fill = EDIT_FILL
    _validations(ws, layout, end)
    ws.protection.sheet = True
    ws.protection.formatColumns = False  # columns may still be resized, rows too
    ws.protection.formatRows = False
    ws.auto_filter.ref = f"A2:{last}{end}"
    ws.protection.autoFilter = False


def _letter(layout: SheetLayout, name: str) -> str:
    return str(
        get_column_letter(next(i for i, c in enumerate(layout.columns, 1) if c.field == name))
    )


def _validations(ws: Any, layout: SheetLayout, end: int) -> None:
    def add(name: str, dv: DataValidation) -> None:
        letter = _letter(layout, name)
        dv.error = f"{layout.column(name).header}: {dv.error}"
        dv.errorTitle = "输入有误"
        dv.showErrorMessage = True
        dv.add(f"{letter}{FIRST_DATA_ROW}:{letter}{end}")
        ws.add_data_validation(dv)

    add(
        "willingness",
        DataValidation(type="list", formula1='"是,否"', allow_blank=True, error="请选择 是 或 否"),
    )
    choices = ",".join(layout.progress_choices())
    add(
        "progress",
        DataValidation(
            type="list",
            formula1=f'"{choices}"',
            allow_blank=True,
            error="请从下拉列表选择工作进展代码",
        ),
    )
    add(
        "planned_on",
        DataValidation(
            type="date",
            operator="greaterThan",
            formula1="36526",
            allow_blank=True,
            error="请输入日期，如 2026-12-31",
        ),
    )
    if layout.kind == "penalty":
        labels = ",".join(CONFIRM_LABELS)
        add(
            "confirm",
            DataValidation(
                type="list",
                formula1=f'"{labels}"',
                allow_blank=True,
                error="请从下拉列表选择核实结果",
            ),
        )
    if layout.column("repairable_from").editable:
        add(
            "repairable_from",
            DataValidation(
                type="date",
                operator="greaterThan",
                formula1="36526",
                allow_blank=True,
                error="请输入日期，如 2027-03-01",
            ),
        )


def _meta(book: Workbook, token: str, department: str | None, now: dt.datetime) -> None:
    ws = book.create_sheet(META_SHEET)
    rows: Iterable[tuple[str, str]] = (
        ("format", FORMAT),
        ("token", token),
        ("department", department or ""),
        ("exported_at", now.isoformat()),
        ("note", "由 credit-repair ledger export 生成，请勿修改此工作表 / do not edit this sheet"),
    )
    for key, value in rows:
        append(ws, [key, value])
    ws.sheet_state = "hidden"
    ws.protection.sheet = True
    book.active = book.sheetnames.index(PENALTY_LAYOUT.name)
