"""The one writer of workbooks: every cell the pipeline writes, and every save, go through it.

- `cell` / `row` / `append` turn values into cells: text loses the characters XML cannot
  hold (`pipeline.office.text`), and text a spreadsheet would take for a formula (``=``,
  ``+``, ``-``, ``@`` first, after blanks; full-width too) is written as a text cell with
  the quote prefix (what Excel stores for ``'=…``), so it stays text when a person edits
  the cell; error codes (``#N/A``) stay text too. The value itself is unchanged, so an
  exported ledger reads back as it was written. No cell is ever a formula.
- `save_workbook` writes beside the target, checks the file (`check_xlsx_written`: every
  part parses, no sheet holds a formula) and only then moves it into place.

The pipeline's workbooks hold no intended formulas: totals are computed in Python, the
dropdowns' lists and date checks are data validations, and the charts refer to ranges.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.styles import Font, PatternFill

from pipeline.office.text import formula_like, strip_controls
from pipeline.office.xml import check_xlsx_written

__all__ = ["Workbook", "append", "cell", "new_workbook", "row", "safe_value", "save_workbook"]


def new_workbook(write_only: bool = False) -> Workbook:
    """An empty workbook (no default sheet): add sheets with `create_sheet`."""
    book = Workbook(write_only=write_only)
    if not write_only:
        book.remove(book.active)
    return book


def safe_value(value: Any) -> Any:
    """A value as it may go into a cell: text without the characters XML cannot hold."""
    return strip_controls(value) if isinstance(value, str) else value


def cell(
    ws: Any,
    value: Any,
    font: Font | None = None,
    fill: PatternFill | None = None,
    fmt: str | None = None,
) -> Cell:
    """A cell for `ws.append` (either mode), with the value made safe and the style given."""
    if isinstance(value, Cell):
        return value
    value = safe_value(value)
    out = WriteOnlyCell(ws, value=value)
    if isinstance(value, str) and out.data_type != "s":
        out.data_type = "s"  # '=…' would be a formula and '#N/A' an error: text they stay
    if isinstance(value, str) and formula_like(value):
        out.quotePrefix = True
    if font is not None:
        out.font = font
    if fill is not None:
        out.fill = fill
    if fmt is not None:
        out.number_format = fmt
    return out


def row(ws: Any, values: Iterable[Any]) -> list[Any]:
    """A row for `ws.append`: plain values where that is safe (faster), cells where not."""
    out: list[Any] = []
    for value in values:
        if isinstance(value, str):
            clean = safe_value(value)
            if formula_like(clean) or clean[:1] == "#":
                out.append(cell(ws, clean))
                continue
            value = clean
        out.append(value)
    return out


def append(ws: Any, values: Iterable[Any]) -> None:
    """Append one row to a sheet (normal or write-only), every value through `row`."""
    ws.append(row(ws, values))


def save_workbook(book: Workbook, path: Path) -> None:
    """Write the workbook beside `path`, check it, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        book.save(partial)
        check_xlsx_written(partial, str(path))
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
