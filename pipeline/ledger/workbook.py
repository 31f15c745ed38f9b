"""The department workbook (分账) of 附件3/附件4: its layout, and reading an edited copy back.

One workbook per export: sheet ``附件3 行政处罚`` (penalties), sheet ``附件4 严重失信名单``
(list entries) and a hidden, protected sheet ``meta`` holding the export token, the
department code and the export time. Each ledger sheet has a title in row 1 (merged),
the form's Chinese headers in row 2 (frozen) and one entry per row from row 3, with two
hidden key columns at the end (处罚机关/认定部门, 记录编号).

Reading (`read_workbook`) is tolerant of what a department's spreadsheet program does to
a file: columns may be moved (the header row is found by its texts), 是/否 may be
written Y/N/1/0/yes/no, dates may be real cells or text, progress ``2`` / ``"2处罚整改"``.
It is strict about the rest, and every problem names sheet, row and column:

- *structural* problems (not a ledger file, a ledger sheet or a needed column missing,
  a merged header) stop the whole import;
- *row* problems (a bad cell, a merged range over data rows, an unknown record) stop the
  import too, unless the caller skips those rows (``--apply-valid``);
- extra sheets are ignored with a warning.

Merged cells over data rows are an error naming the range (a merged cell holds its value
in the first cell only, so reading it as "unmerged" would silently blank the others).

Memory stays bounded: a file over `MAX_BYTES` is refused before it is opened, the archive
is checked before it is parsed (`pipeline.office.archive`: zip bombs, rows and cells over
the limits, DTDs, password-protected files), openpyxl reads in read-only (streaming) mode,
a sheet whose dimension or row count exceeds `MAX_ROWS` is refused, and merged ranges are
found by streaming the sheet's XML. Malformed XML met while reading is an `InputError`
naming the sheet, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import iterparse

import openpyxl
from openpyxl.utils.cell import range_boundaries
from openpyxl.utils.datetime import from_excel

from pipeline.errors import CreditRepairError, InputError
from pipeline.ledger.state import LIST_PROGRESS, PENALTY_PROGRESS
from pipeline.office.archive import UnsafeWorkbook, XlsxLimits, check_xlsx
from pipeline.office.text import strip_controls
from pipeline.sync.normalize import parse_date

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 200_000
HEADER_SCAN = 10  # the header row is looked for in the first rows only
FORMAT = "credit-repair-ledger/1"
META_SHEET = "meta"
PROTECTION_PASSWORD = None  # sheets are protected without a password: a guard, not security

# Editable fields (the department's columns) in the order they are imported.
EDITABLE = (
    "willingness",
    "planned_on",
    "progress",
    "responsible",
    "remarks",
    "repair_effect",
    "confirm",
    "repairable_from",
)
CONFIRM_LABELS = {
    "已修复": "repaired",
    "决定已撤销": "revoked",
    "数据缺失": "data_gap",
    "其他": "other",
}
"""核实结果: why a 待核实 record left the snapshot, as the department writes it."""


@dataclass(frozen=True)
class Column:
    field: str
    header: str
    width: float
    kind: str = "text"  # text | date | yesno | progress | seq | id
    editable: bool = False
    hidden: bool = False
    prefix: str | None = None  # a header starting with this matches too
    aliases: tuple[str, ...] = ()
    optional: bool = False  # an editable column a file may lack (exported by older versions)

    def matches(self, text: str) -> bool:
        key = header_key(text)
        if key in (header_key(self.header), *map(header_key, self.aliases)):
            return True
        return self.prefix is not None and key.startswith(header_key(self.prefix))


@dataclass(frozen=True)
class SheetLayout:
    kind: str  # penalty | list
    name: str
    title: str  # with {department}
    columns: tuple[Column, ...]
    progress: dict[int, str]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.field == name)

    @property
    def required(self) -> tuple[str, ...]:
        return ("decision_no", *(c.field for c in self.columns if c.editable and not c.optional))

    def progress_choices(self) -> list[str]:
        return [f"{k}{v}" for k, v in self.progress.items() if k]


def _common_head(
    decision_header: str, repairable_header: str, repairable_editable: bool = False
) -> tuple[Column, ...]:
    return (
        Column("seq", "序号", 6, kind="seq"),
        Column("entity_name", "企业名称", 30),
        Column("uscc", "统一社会信用代码", 22),
        Column(
            "decision_no",
            decision_header,
            26,
            aliases=("行政处罚决定书文号", "处罚/判决决定书文号", "决定书文号", "文号"),
        ),
        Column(
            "repairable_from",
            repairable_header,
            14,
            kind="date",
            aliases=("行政处罚可修复时间", "可修复时间"),
            editable=repairable_editable,
            optional=True,
        ),
        Column(
            "willingness",
            "企业修复意愿（是/否）",
            12,
            kind="yesno",
            editable=True,
            prefix="企业修复意愿",
        ),
        Column("planned_on", "计划完成修复时间", 14, kind="date", editable=True),
    )


# After the annex's own columns: the system's additions, then the hidden keys.
CONFIRM_COLUMN = Column(
    "confirm",
    "核实结果（待核实记录：已修复/决定已撤销/数据缺失/其他）",
    20,
    kind="confirm",
    editable=True,
    prefix="核实结果",
    optional=True,
)


def _common_tail(
    department_header: str, authority_header: str, *extra: Column
) -> tuple[Column, ...]:
    return (
        Column("department", department_header, 20, aliases=("责任部门/处室", "责任处室")),
        Column("responsible", "责任人及电话", 22, editable=True),
        Column("contact", "企业负责人及电话", 22),
        Column("remarks", "备注", 30, editable=True),
        *extra,
        Column("flags", "提示（待核实/超期仍公示/修复受限）", 30),
        Column("authority", authority_header, 30, hidden=True, aliases=("处罚机关", "认定部门")),
        Column(
            "record_id", "记录编号（系统，勿改）", 10, kind="id", hidden=True, prefix="记录编号"
        ),
    )


PENALTY_LAYOUT = SheetLayout(
    kind="penalty",
    name="附件3 行政处罚",
    title="{department}市场主体行政处罚信用修复工作台账",
    columns=(
        *_common_head("行政处罚决定书文号", "行政处罚可修复时间"),
        Column(
            "progress",
            "工作进展（1已告知/2处罚整改/3已申请/4已完成）",
            20,
            kind="progress",
            editable=True,
            prefix="工作进展",
        ),
        *_common_tail("责任部门/处室", "处罚机关", CONFIRM_COLUMN),
    ),
    progress=PENALTY_PROGRESS,
)

LIST_LAYOUT = SheetLayout(
    kind="list",
    name="附件4 严重失信名单",
    title="{department}严重失信市场主体信用修复工作台账",
    columns=(
        *_common_head("处罚/判决决定书文号", "可修复时间", repairable_editable=True),
        Column(
            "progress",
            "工作进展（1 已告知/2 处罚决定整改/3 已申请/4 已修复/5 已移出）",
            22,
            kind="progress",
            editable=True,
            prefix="工作进展",
        ),
        Column("repair_effect", "修复效果（执行金额等）", 22, editable=True, prefix="修复效果"),
        *_common_tail("责任处室", "认定部门"),
    ),
    progress=LIST_PROGRESS,
)

LAYOUTS = (PENALTY_LAYOUT, LIST_LAYOUT)


def header_key(text: object) -> str:
    """A header as compared: NFKC (full-width brackets → ASCII), no whitespace at all."""
    return "".join(unicodedata.normalize("NFKC", str(text or "")).split())


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Issue:
    message: str
    sheet: str | None = None
    row: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = [
            x
            for x in (
                f"sheet {self.sheet}" if self.sheet else "",
                f"row {self.row}" if self.row else "",
                f"column {self.column}" if self.column else "",
            )
            if x
        ]
        return (", ".join(where) + ": " if where else "") + self.message

    def as_json(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "message": self.message,
        }


@dataclass
class FileRow:
    """One data row of a ledger sheet: its key, its editable values, its problems."""

    layout: SheetLayout
    row_no: int
    record_id: int | None
    decision_no: str
    authority: str | None
    values: dict[str, Any] = field(default_factory=dict)  # field → parsed value
    errors: list[Issue] = field(default_factory=list)

    def error(self, message: str, column: str | None = None) -> None:
        self.errors.append(Issue(message, self.layout.name, self.row_no, column))


@dataclass(frozen=True)
class Meta:
    token: str
    department: str | None
    exported_at: dt.datetime | None


@dataclass
class LedgerFile:
    path: Path
    meta: Meta | None = None
    rows: list[FileRow] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)  # structural: nothing may be applied
    warnings: list[Issue] = field(default_factory=list)


# --------------------------------------------------------------------------- values


_PROGRESS = re.compile(r"(\d*)[.、:：-]?(.*)")
YES = {"是", "是的", "y", "yes", "1", "true", "对", "有", "愿意", "√"}
NO = {"否", "不", "不是", "n", "no", "0", "false", "无", "不愿意", "×"}


def parse_yes_no(value: object) -> str:
    """是/否 cell → 'yes' | 'no' | 'unknown' (empty); ValueError otherwise."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float) and value in (0, 1):
        return "yes" if value == 1 else "no"
    text = header_key(value).lower()
    if not text:
        return "unknown"
    if text in YES:
        return "yes"
    if text in NO:
        return "no"
    raise ValueError(f"{value!r} is not 是 or 否")


def parse_progress(value: object, names: dict[int, str]) -> int:
    """``2``, ``"2"``, ``"2处罚整改"``, ``"2 处罚整改"`` or ``"处罚整改"`` → 2; empty → 0."""
    codes = "/".join(f"{k}{v}" for k, v in names.items() if k)
    if value is None:
        return 0
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value == int(value) and int(value) in names:
            return int(value)
        raise ValueError(f"{value!r} is not a progress code ({codes})")
    text = header_key(value)
    if not text:
        return 0
    match = _PROGRESS.fullmatch(text)
    digits, rest = (match.group(1), match.group(2)) if match else ("", text)
    if digits:
        code = int(digits)
        if code in names and rest in ("", names[code]):
            return code
    else:
        code = next((k for k, v in names.items() if v == rest), -1)
        if code > 0:
            return code
    raise ValueError(f"{value!r} is not a progress code ({codes})")


def parse_date_cell(value: object) -> dt.date | None:
    """A real date cell, or text in the usual forms; a bare number is an Excel serial."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 10_000_000 <= value <= 99_991_231 and value == int(value):  # typed as 20261231
            return parse_date(str(int(value)))
        if 1 <= value < 2_958_466:
            converted = from_excel(value)
            return converted.date() if isinstance(converted, dt.datetime) else None
        raise ValueError(f"{value!r} is not a date")
    return parse_date(value)


def parse_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value == int(value):
        value = int(value)  # a phone number typed into a number cell
    if isinstance(value, dt.datetime):
        value = value.date()
    text = (value.isoformat() if isinstance(value, dt.date) else str(value)).strip()
    return strip_controls(text).strip() or None  # no control character enters the ledger


def _parse(column: Column, value: object, layout: SheetLayout) -> Any:
    if column.kind == "yesno":
        return parse_yes_no(value)
    if column.kind == "progress":
        return parse_progress(value, layout.progress)
    if column.kind == "date":
        return parse_date_cell(value)
    if column.kind == "confirm":
        return parse_confirm(value)
    return parse_text(value)


def parse_confirm(value: object) -> str | None:
    text = parse_text(value)
    if text is None:
        return None
    code = CONFIRM_LABELS.get(text) or (text if text in CONFIRM_LABELS.values() else None)
    if code is None:
        raise ValueError(f"{text!r} is not one of {', '.join(CONFIRM_LABELS)}")
    return code


# --------------------------------------------------------------------------- reading


def read_workbook(
    path: Path,
    max_bytes: int = MAX_BYTES,
    max_rows: int = MAX_ROWS,
    limits: XlsxLimits | None = None,
) -> LedgerFile:
    """Read an edited department workbook; raise InputError when it cannot be read at all."""
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(
            f"{path}: the file is {size / 1048576:.1f} MB, over the {max_bytes / 1048576:.0f} MB limit "
            "for a ledger workbook; it was not opened and nothing changed"
        )
    try:
        check_xlsx(path, limits or XlsxLimits())
    except UnsafeWorkbook as exc:
        raise InputError(f"{path}: refused before reading: {exc}; nothing changed") from None
    result = LedgerFile(path)
    with path.open("rb") as stream:
        try:
            book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
        except Exception as exc:  # BadZipFile, KeyError, InvalidFileException, ...
            raise InputError(
                f"{path}: not an .xlsx workbook ({type(exc).__name__}: {exc}); nothing changed"
            ) from None
        try:
            _read_book(book, result, max_rows)
        except CreditRepairError:
            raise
        except Exception as exc:  # malformed XML in a sheet: ParseError, ValueError, ...
            raise _xml_fault(path, None, exc) from None
        finally:
            book.close()
    return result


def _read_book(book: Any, result: LedgerFile, max_rows: int) -> None:
    sheets = {header_key(name): name for name in book.sheetnames}
    known = {header_key(META_SHEET)} | {header_key(x.name) for x in LAYOUTS}
    for name in book.sheetnames:
        if header_key(name) not in known:
            result.warnings.append(Issue("extra sheet ignored", name))
    meta_name = sheets.get(header_key(META_SHEET))
    if meta_name is None:
        result.errors.append(
            Issue(
                "the hidden sheet 'meta' (export token, department) is missing: this is not a workbook "
                "exported by `credit-repair ledger export`, or the sheet was deleted; export again"
            )
        )
    else:
        result.meta = _read_meta(book[meta_name], result)
    for layout in LAYOUTS:
        name = sheets.get(header_key(layout.name))
        if name is None:
            result.errors.append(Issue(f"the sheet {layout.name!r} is missing", layout.name))
            continue
        try:
            _read_sheet(book[name], layout, result, max_rows)
        except CreditRepairError:
            raise
        except Exception as exc:
            raise _xml_fault(result.path, name, exc) from None


def _xml_fault(path: Path, sheet: str | None, exc: Exception) -> InputError:
    detail = " ".join(str(exc).split())[:200]
    where = f"sheet {sheet}" if sheet else "a sheet"
    return InputError(
        f"{path}: {where} cannot be read (malformed XML: {type(exc).__name__}: {detail}); "
        "nothing changed"
    )


def _read_meta(ws: Any, result: LedgerFile) -> Meta | None:
    pairs: dict[str, Any] = {}
    for i, row in enumerate(ws.iter_rows(max_row=50, max_col=2, values_only=True)):
        if i >= 50:
            break
        if row and row[0] is not None:
            pairs[str(row[0]).strip()] = row[1] if len(row) > 1 else None
    token = parse_text(pairs.get("token"))
    if not token or pairs.get("format") != FORMAT:
        result.errors.append(
            Issue("the meta sheet lacks the export token or format; export again", ws.title)
        )
        return None
    exported = parse_text(pairs.get("exported_at"))
    try:
        at = dt.datetime.fromisoformat(exported) if exported else None
    except ValueError:
        at = None
    return Meta(token, parse_text(pairs.get("department")), at)


def _check_size(rows: int | None, layout: SheetLayout, path: Path, max_rows: int) -> None:
    if rows is not None and rows > max_rows:
        raise InputError(
            f"{path}: sheet {layout.name} has {rows:,} rows, over the limit of {max_rows:,} rows "
            "for a ledger sheet; nothing was imported"
        )


def _read_sheet(ws: Any, layout: SheetLayout, result: LedgerFile, max_rows: int) -> None:
    _check_size(ws.max_row, layout, result.path, max_rows)
    merges = list(_merged_ranges(ws))
    ws.reset_dimensions()  # a wrong dimension must not hide rows; the row cap still holds
    columns: dict[str, int] | None = None
    for row_no, values in enumerate(ws.iter_rows(values_only=True), start=1):
        _check_size(row_no, layout, result.path, max_rows)
        if columns is None:
            if row_no > HEADER_SCAN:
                break
            columns = _header(values, layout, row_no, result)
            if columns is not None and not _check_header(columns, layout, row_no, merges, result):
                return
            continue
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        result.rows.append(_row(values, columns, layout, row_no, merges))
    if columns is None:
        result.errors.append(
            Issue(
                f"no header row found in the first {HEADER_SCAN} rows (looked for "
                f"{layout.column('decision_no').header} and the other column titles)",
                layout.name,
            )
        )


def _header(
    values: tuple[Any, ...], layout: SheetLayout, row_no: int, result: LedgerFile
) -> dict[str, int] | None:
    """The column of each known field, if this row is the header row (else None)."""
    found: dict[str, int] = {}
    duplicates: list[str] = []
    for index, text in enumerate(values):
        if text is None:
            continue
        column = next((c for c in layout.columns if c.matches(str(text))), None)
        if column is None:
            continue
        if column.field in found:
            duplicates.append(column.header)
        found[column.field] = index
    if "decision_no" not in found or len(found) < 3:
        return None
    for header in duplicates:
        result.errors.append(
            Issue("the column appears twice in the header", layout.name, row_no, header)
        )
    return found


def _check_header(
    columns: dict[str, int],
    layout: SheetLayout,
    row_no: int,
    merges: list[tuple[str, int, int]],
    result: LedgerFile,
) -> bool:
    ok = True
    for name in layout.required:
        if name not in columns:
            header = layout.column(name).header
            result.errors.append(
                Issue(
                    f"the required column {header} is missing (moved columns are fine, deleted ones are not)",
                    layout.name,
                    row_no,
                    header,
                )
            )
            ok = False
    for ref, first, last in merges:
        if first <= row_no <= last:
            result.errors.append(
                Issue(f"merged cells {ref} in the header row; unmerge them", layout.name, row_no)
            )
            ok = False
    return ok


def _row(
    values: tuple[Any, ...],
    columns: dict[str, int],
    layout: SheetLayout,
    row_no: int,
    merges: list[tuple[str, int, int]],
) -> FileRow:
    def cell(name: str) -> Any:
        index = columns.get(name)
        return values[index] if index is not None and index < len(values) else None

    raw_id = cell("record_id")
    record_id = None
    if raw_id is not None and str(raw_id).strip():
        try:
            record_id = int(float(str(raw_id).strip()))
        except ValueError:
            record_id = None
    row = FileRow(
        layout,
        row_no,
        record_id,
        parse_text(cell("decision_no")) or "",
        parse_text(cell("authority")),
    )
    for ref, first, last in merges:
        if first <= row_no <= last:
            row.error(
                f"merged cells {ref}: a merged cell keeps its value in its first cell only; unmerge and fill each row"
            )
    if raw_id is not None and record_id is None:
        row.error(f"{raw_id!r} is not a record number", layout.column("record_id").header)
    if not row.decision_no and record_id is None:
        row.error("the row has values but no decision number", layout.column("decision_no").header)
    for column in layout.columns:
        name = column.field
        if not column.editable or name not in columns:
            continue
        try:
            row.values[name] = _parse(column, cell(name), layout)
        except ValueError as exc:
            row.error(str(exc), column.header)
    return row


def _merged_ranges(ws: Any) -> Iterator[tuple[str, int, int]]:
    """(ref, first row, last row) of each merged range, streaming the sheet's XML."""
    archive: zipfile.ZipFile = ws.parent._archive
    with archive.open(ws._worksheet_path) as source:
        parent: Any = None
        for event, element in iterparse(source, events=("start", "end")):
            tag = element.tag.rsplit("}", 1)[-1]
            if event == "start":
                if tag == "sheetData":
                    parent = element
                continue
            if tag == "row" and parent is not None:
                parent.clear()  # rows are read by openpyxl; keep none of them here
            elif tag == "mergeCell":
                ref = element.get("ref", "")
                try:
                    _c1, first, _c2, last = range_boundaries(ref)
                except (TypeError, ValueError):
                    continue
                yield ref, int(first or 0), int(last or first or 0)
