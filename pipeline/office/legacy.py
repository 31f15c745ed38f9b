"""Legacy .xls and .ods checked before python-calamine reads them.

calamine reads a sheet whole into memory, as a dense grid from its first to its last
cell: a 6 kB .xls with one cell in A1 and one in IV65536 made it take 1 GB. Neither format
is a compression bomb in the .xlsx sense (.xls is not compressed; .ods is a zip, and goes
through the same zip checks as an .xlsx, `check_xlsx`), so the guard is the *extent*:

- an .xls: its workbook stream is read out of the OLE file (olefile) and its BIFF records
  walked — every cell record names its row and column — for the largest extent of a sheet;
  an encrypted one (FILEPASS) is named. The stream is at most the file, capped by
  `files.xlsx_max_unpacked_mb`.
- an .ods: after the zip checks, `content.xml` is parsed as a stream (no DTD: the zip
  check refused any) for the first table's extent, its repeated rows and cells
  (`table:number-rows-repeated`, `number-columns-repeated`) counted as calamine expands
  them: up to the last cell that holds a value.

Either over `files.sheet_max_cells` is refused, naming the limit, before calamine opens it.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

import olefile

from pipeline.office.archive import UnsafeWorkbook, XlsxLimits, _mb, check_xlsx

_BOF, _EOF, _FILEPASS = 0x0809, 0x000A, 0x002F
_CELL_RECORDS = frozenset({0x0006, 0x00FD, 0x0203, 0x027E, 0x0201, 0x0205, 0x0204, 0x00D6})
"""FORMULA, LABELSST, NUMBER, RK, BLANK, BOOLERR, LABEL, RSTRING: row, column first."""
_MULTI_RECORDS = frozenset({0x00BD, 0x00BE})
"""MULRK, MULBLANK: row, first column, …, last column (the record's last two bytes)."""
_HEADER = struct.Struct("<HH")
_CELL = struct.Struct("<HH")
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"


def check_xls(path: Path, limits: XlsxLimits) -> int:
    """Raise `UnsafeWorkbook` if the .xls must not be read; else its largest sheet extent."""
    size = path.stat().st_size
    if size > limits.max_unpacked_bytes:
        raise UnsafeWorkbook(
            f"it is {_mb(size)}, over the limit of {_mb(limits.max_unpacked_bytes)} "
            "(files.xlsx_max_unpacked_mb)"
        )
    if not olefile.isOleFile(str(path)):
        raise UnsafeWorkbook("it is not an Excel 97–2003 (.xls) file (no OLE header)")
    try:
        with olefile.OleFileIO(str(path)) as ole:
            if ole.exists("EncryptedPackage"):
                raise UnsafeWorkbook(
                    "the workbook is password-protected (encrypted); remove the password "
                    "and save it again"
                )
            name = next((n for n in ("Workbook", "Book") if ole.exists(n)), None)
            if name is None:
                raise UnsafeWorkbook("the OLE file holds no workbook stream: not an .xls")
            extent = _biff_extent(ole.openstream(name).read())
    except (OSError, ValueError, struct.error) as exc:
        if isinstance(exc, UnsafeWorkbook):
            raise
        raise UnsafeWorkbook(f"its OLE structure cannot be read ({exc})") from None
    _check_extent(extent, limits)
    return extent


def _biff_extent(stream: bytes) -> int:
    """The largest rows × columns of a worksheet substream (the records' own positions)."""
    extent = rows = columns = 0
    at, end = 0, len(stream)
    unpack, cell = _HEADER.unpack_from, _CELL.unpack_from
    while at + 4 <= end:
        kind, length = unpack(stream, at)
        body = at + 4
        if kind in _CELL_RECORDS and length >= 4:
            row, column = cell(stream, body)
            rows, columns = max(rows, row + 1), max(columns, column + 1)
        elif kind in _MULTI_RECORDS and length >= 6:
            row = cell(stream, body)[0]
            last = struct.unpack_from("<H", stream, body + length - 2)[0]
            rows, columns = max(rows, row + 1), max(columns, last + 1)
        elif kind == _FILEPASS:
            raise UnsafeWorkbook(
                "the workbook is password-protected (encrypted); remove the password and "
                "save it again"
            )
        elif kind in (_BOF, _EOF):
            extent, rows, columns = max(extent, rows * columns), 0, 0
        at = body + length
    return max(extent, rows * columns)


def check_ods(path: Path, limits: XlsxLimits) -> int:
    """Raise `UnsafeWorkbook` if the .ods must not be read; else its first table's extent."""
    check_xlsx(path, limits)  # the zip: directory, sizes, ratio, DTDs, run lengths
    try:
        with zipfile.ZipFile(path) as archive, archive.open("content.xml") as content:
            extent = _ods_extent(content)
    except KeyError:
        raise UnsafeWorkbook("it has no content.xml: not an .ods") from None
    except (zipfile.BadZipFile, ElementTree.ParseError, OSError) as exc:
        raise UnsafeWorkbook(f"its content.xml cannot be read ({exc})") from None
    _check_extent(extent, limits)
    return extent


def _ods_extent(content: IO[bytes]) -> int:
    """Rows × columns of the first table, up to its last cell holding a value."""
    table, row, cell = f"{{{_TABLE}}}table", f"{{{_TABLE}}}table-row", f"{{{_TABLE}}}table-cell"
    covered = f"{{{_TABLE}}}covered-table-cell"
    rows = last_row = columns = 0
    position = 0  # the column the next cell starts at
    row_last = 0  # the last valued column of the current row
    for event, element in ElementTree.iterparse(content, events=("start", "end")):
        tag = element.tag
        if event == "start":
            if tag == row:
                position = row_last = 0
            continue
        if tag in (cell, covered):
            repeat = _repeat(element, "number-columns-repeated")
            position += repeat
            if _has_value(element):
                row_last = position
            element.clear()
        elif tag == row:
            repeat = _repeat(element, "number-rows-repeated")
            rows += repeat
            if row_last:
                last_row, columns = rows, max(columns, row_last)
            element.clear()
        elif tag == table:
            break  # calamine reads the first table only
    return last_row * columns


def _repeat(element: Any, name: str) -> int:
    try:
        return max(1, int(element.get(f"{{{_TABLE}}}{name}", "1")))
    except ValueError:
        return 1


def _has_value(element: Any) -> bool:
    return element.get(f"{{{_OFFICE}}}value-type") is not None or len(element) > 0


def _check_extent(extent: int, limits: XlsxLimits) -> None:
    if extent > limits.max_sheet_cells:
        raise UnsafeWorkbook(
            f"a sheet spans {extent:,} cells (rows × columns, up to its last cell), over the "
            f"limit of {limits.max_sheet_cells:,} (files.sheet_max_cells) for a sheet read whole"
        )
