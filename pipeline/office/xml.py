"""Generated documents checked before they leave: every XML part well-formed, no formula.

`check_docx` (the 告知书, at plan time) and `check_xlsx_written` (every workbook, before it
is moved into place) parse each XML part back with expat, streaming, no tree kept. A
part that does not parse, declares a DTD, or (a workbook's sheet) holds a formula the
pipeline never writes, raises `InvalidDocument`.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import IO
from xml.parsers import expat

from pipeline.errors import CreditRepairError

CHUNK = 1024 * 1024
FORMULA_MARKERS = (b"<f>", b"<f ", b"<f/")
"""How openpyxl writes a cell formula (no namespace prefix)."""


class InvalidDocument(CreditRepairError):
    """A document the pipeline generated is not valid; it was not saved or sent."""


def check_docx(data: bytes, what: str, parts: tuple[str, ...] | None = None) -> None:
    """Every XML part of a DOCX (or those named) parses; `what` names the document."""
    _check_archive(zipfile.ZipFile(io.BytesIO(data)), what, formulas=False, only=parts)


def check_xlsx_written(path: Path, what: str | None = None) -> None:
    """Every XML part of a workbook parses and no sheet holds a formula."""
    with zipfile.ZipFile(path) as archive:
        _check_archive(archive, what or str(path), formulas=True)


def _check_archive(
    archive: zipfile.ZipFile, what: str, formulas: bool, only: tuple[str, ...] | None = None
) -> None:
    for name in archive.namelist():
        if not name.endswith((".xml", ".rels")) or (only is not None and name not in only):
            continue
        sheet = formulas and name.startswith("xl/worksheets/")
        with archive.open(name) as part:
            problem = _parse(part, sheet)
        if problem:
            raise InvalidDocument(f"{what}: generated part {name} {problem}; not saved or sent")


def _parse(part: IO[bytes], sheet: bool) -> str | None:
    parser = expat.ParserCreate()
    dtd: list[str] = []
    parser.StartDoctypeDeclHandler = lambda name, *_: dtd.append(name)
    tail = b""
    try:
        while chunk := part.read(CHUNK):
            window = tail + chunk if sheet else b""
            if any(m in window for m in FORMULA_MARKERS):
                return "holds a formula, which the pipeline never writes (formula injection?)"
            tail = chunk[-3:]
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        return f"is not well-formed XML ({expat.ErrorString(exc.code)} at line {exc.lineno}, column {exc.offset})"
    if dtd:
        return "declares a DTD"
    return None
