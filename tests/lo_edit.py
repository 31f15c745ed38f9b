"""Edit a department workbook *in LibreOffice* (headless, through UNO), then save it as .xlsx.

Run with the system Python that has the ``uno`` module (Debian: python3-uno)::

    /usr/bin/python3 tests/lo_edit.py SOFFICE PROFILE_DIR SRC.xlsx DST.xlsx EDITS.json

EDITS.json: ``{sheet: {decision number: {header prefix: text typed into the cell}}}``.
Each value is entered like a user typing it (``setFormula``): "2026-12-31" becomes a date
cell, "2处罚整改" text. Header row 2, data from row 3, as `ledger export` writes them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import uno  # type: ignore[import-not-found]
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]


def _prop(name: str, value: Any) -> Any:
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


def _connect(pipe: str) -> Any:
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext(
        "com.sun.star.bridge.UnoUrlResolver", local
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            return resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _edit(doc: Any, edits: dict[str, dict[str, dict[str, str]]]) -> None:
    for sheet_name, rows in edits.items():
        sheet = doc.Sheets.getByName(sheet_name)
        headers = {sheet.getCellByPosition(c, 1).getString(): c for c in range(40)}
        number = next(c for h, c in headers.items() if "决定书文号" in h)
        for decision_no, cells in rows.items():
            row = next(
                r
                for r in range(2, 10_000)
                if sheet.getCellByPosition(number, r).getString() == decision_no
            )
            for prefix, text in cells.items():
                column = next(c for h, c in headers.items() if h and h.startswith(prefix))
                sheet.getCellByPosition(column, row).setFormula(text)


def main(soffice: str, profile: str, src: str, dst: str, edits_file: str) -> None:
    pipe = f"credit_repair_lo_{os.getpid()}"
    office = subprocess.Popen(
        [
            soffice,
            "--headless",
            "--invisible",
            "--norestore",
            "--nologo",
            "--nodefault",
            f"-env:UserInstallation={Path(profile).resolve().as_uri()}",
            f"--accept=pipe,name={pipe};urp;StarOffice.ComponentContext",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ctx = _connect(pipe)
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        url = Path(src).resolve().as_uri()
        doc = desktop.loadComponentFromURL(url, "_blank", 0, (_prop("Hidden", True),))
        _edit(doc, json.loads(Path(edits_file).read_text(encoding="utf-8")))
        out = Path(dst).resolve().as_uri()
        doc.storeToURL(out, (_prop("FilterName", "Calc MS Excel 2007 XML"),))
        doc.close(True)
    finally:
        office.terminate()
        try:
            office.wait(timeout=20)
        except subprocess.TimeoutExpired:
            office.kill()
            office.wait()


if __name__ == "__main__":
    main(*sys.argv[1:6])
