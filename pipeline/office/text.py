"""Text that can go into XML and a spreadsheet cell: control characters and formulas.

XML 1.0 (so every .xlsx and .docx part) cannot hold the C0 control characters other than
tab, newline and carriage return, nor lone surrogates, U+FFFE or U+FFFF: openpyxl refuses
them (``IllegalCharacterError``) and a DOCX that holds them does not open. They never mean
anything in a name, a remark or a phone number, so they are removed where data enters
(`strip_controls`) and again, as a safety net, where documents are written.

A text cell whose first visible character is ``=``, ``+``, ``-`` or ``@`` (or its full-width
or small form, e.g. ``＝``) is what Excel and LibreOffice take for a formula when the cell is
edited; `formula_like` tells which, so the writer can mark them as text.
"""

from __future__ import annotations

import re
import unicodedata

CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""What XML 1.0 cannot hold: C0 controls but tab, newline and carriage return; lone
surrogates; the non-characters U+FFFE and U+FFFF."""
FORMULA_STARTS = frozenset("=+-@")


def strip_controls(text: str) -> str:
    """`text` without the characters XML cannot hold (see `CONTROLS`)."""
    return CONTROLS.sub("", text) if CONTROLS.search(text) else text


def has_controls(text: str) -> bool:
    return CONTROLS.search(text) is not None


def formula_like(text: str) -> bool:
    """Whether a spreadsheet would read this text as a formula when the cell is entered."""
    head = text.lstrip()[:1]
    if not head:
        return False
    if not head.isascii():
        head = unicodedata.normalize("NFKC", head)[:1]  # ＝ ＋ － ＠ and the small forms
    return head in FORMULA_STARTS
