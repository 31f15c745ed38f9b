"""Hostile workbooks and JSON files (issue 15, items 9 and 10), on SQLite and PostgreSQL.

Every hostile file is built here by hand with zipfile: a real workbook whose sheet or
shared strings part is replaced by one written streaming (a huge cell, huge shared
strings, a row of many cells, a DTD, malformed XML). Each is refused by `sync` and by
`ledger import` with exit 2 and one sentence naming the file and the limit — before
openpyxl is asked to parse anything (`openpyxl.load_workbook` is made to fail here), and
with little memory. The sizes are those of a test (tens of MB unpacked, not GBs); the
limits are the shipped defaults or, where said, smaller ones set through the
environment. `bench/bench_hostile.py` measures the real 2 GiB bombs.
"""

from __future__ import annotations

import io
import json
import os
import random
import string
import tracemalloc
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import requests
from msoffcrypto.format.ooxml import OOXMLFile

from pipeline.config import SourceSettings
from pipeline.errors import InputError, SourceError
from pipeline.office.archive import OLE_MAGIC, UnsafeWorkbook, XlsxLimits, check_xlsx
from pipeline.sync.samplegen import PENALTY_HEADERS
from pipeline.sync.sources.files import read_snapshot
from pipeline.sync.sources.http import fetch_snapshot
from tests.helpers import CliRunner, Result, penalty, write_rows
from tests.source_server import Reply, running_source

NOW = "2026-11-27T09:00"
SHEET = "xl/worksheets/sheet1.xml"
SHARED = "xl/sharedStrings.xml"
MB = 1024 * 1024
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _snapshot_book(path: Path, rows: int = 3) -> Path:
    """A real penalty snapshot workbook (openpyxl writes shared strings)."""
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(PENALTY_HEADERS)
    for n in range(1, rows + 1):
        ws.append([penalty(n)[h] for h in PENALTY_HEADERS])
    book.save(path)
    return path


def _replace(src: Path, dst: Path, parts: dict[str, Iterable[bytes]]) -> Path:
    """A copy of `src` whose named parts are written from the chunks given, streaming."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as new:
        names = old.namelist()
        for name in names:
            if name in parts:
                continue
            new.writestr(old.getinfo(name), old.read(name))
        for name, chunks in parts.items():
            with new.open(name, "w", force_zip64=True) as part:
                for chunk in chunks:
                    part.write(chunk)
    return dst


def _repeat(head: bytes, unit: bytes, times: int, tail: bytes) -> Iterator[bytes]:
    yield head
    block = unit * max(1, (1 << 20) // len(unit))
    per_block = len(block) // len(unit)
    full, rest = divmod(times, per_block)
    for _ in range(full):
        yield block
    yield unit * rest
    yield tail


SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    b"<sheetData>"
)
SHEET_TAIL = b"</sheetData></worksheet>"


def _header_row() -> bytes:
    cells = b"".join(
        b'<c t="inlineStr"><is><t>' + h.encode() + b"</t></is></c>" for h in PENALTY_HEADERS
    )
    return b'<row r="1">' + cells + b"</row>"


def _huge_cell(megabytes: int) -> Iterator[bytes]:
    head = SHEET_HEAD + _header_row() + b'<row r="2"><c t="inlineStr"><is><t>'
    yield from _repeat(head, b"A", megabytes * MB, b"</t></is></c></row>" + SHEET_TAIL)


def _wide_row(cells: int) -> Iterator[bytes]:
    head = SHEET_HEAD + _header_row() + b'<row r="2">'
    yield from _repeat(head, b'<c t="n"><v>1</v></c>', cells, b"</row>" + SHEET_TAIL)


def _random_cell(chars: int) -> Iterator[bytes]:
    text = "".join(random.Random(7).choices(string.ascii_letters, k=chars)).encode()
    yield SHEET_HEAD + _header_row() + b'<row r="2"><c t="inlineStr"><is><t>'
    yield text
    yield b"</t></is></c></row>" + SHEET_TAIL


def _huge_shared_strings(megabytes: int) -> Iterator[bytes]:
    head = b'<?xml version="1.0" encoding="UTF-8"?>\n<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><si><t>'
    yield from _repeat(head, b"B", megabytes * MB, b"</t></si></sst>")


BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(
        b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&" + bytes([97 + i]) + b";") * 10)
        for i in range(8)
    )
    + b"]>"
    + SHEET_HEAD.split(b"\n", 1)[1]
    + b'<row r="1"><c t="inlineStr"><is><t>&i;</t></is></c></row>'
    + SHEET_TAIL
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE worksheet [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    + SHEET_HEAD.split(b"\n", 1)[1]
    + b'<row r="1"><c t="inlineStr"><is><t>&x;</t></is></c></row>'
    + SHEET_TAIL
)


@pytest.fixture
def no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """openpyxl must not be asked to parse a refused file: the check comes first."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("openpyxl was asked to parse a file that should have been refused")

    monkeypatch.setattr(openpyxl, "load_workbook", refuse)


def _refused(result: Result, *words: str) -> None:
    assert result.code == 2, (result.code, result.err)
    assert "Traceback" not in result.err and result.err.count("\n") == 1, result.err
    for word in words:
        assert word in result.err, result.err


def _nothing_loaded(cli: CliRunner) -> None:
    assert cli("ledger", "show", "--all", "--json", now=NOW).out == ""


def _export(cli: CliRunner, tmp_path: Path) -> Path:
    """An exported (empty) ledger workbook: a real file for `ledger import`."""
    out = tmp_path / "ledger.xlsx"
    assert cli("ledger", "export", "--out", str(out), now=NOW).code == 0
    return out


def _ledger_sheet(book: Path) -> str:
    with zipfile.ZipFile(book) as archive:
        return next(n for n in archive.namelist() if n.startswith("xl/worksheets/sheet"))


# --------------------------------------------------------------------------- zip bombs


def test_a_workbook_with_a_huge_cell_is_refused_before_parsing(
    cli: CliRunner, tmp_path: Path, no_parsing: None
) -> None:
    src = _snapshot_book(tmp_path / "src.xlsx")
    bomb = _replace(src, tmp_path / "cell.xlsx", {SHEET: _huge_cell(64)})
    assert bomb.stat().st_size < MB  # 64 MB of one cell in a few hundred kB
    _refused(
        cli("sync", "--file", str(bomb), now=NOW), "cell.xlsx", SHEET, "zip bomb", "xlsx_max_ratio"
    )
    _nothing_loaded(cli)
    ledger = _export(cli, tmp_path)
    import_bomb = _replace(
        ledger, tmp_path / "import.xlsx", {_ledger_sheet(ledger): _huge_cell(64)}
    )
    _refused(cli("ledger", "import", str(import_bomb), now=NOW), "import.xlsx", "zip bomb")
    _refused(cli("contacts", "import", str(bomb), now=NOW), "cell.xlsx", "zip bomb")
    _refused(cli("eligibility", "--snapshot", str(bomb), now=NOW), "cell.xlsx", "zip bomb")


def test_huge_shared_strings_are_refused_before_parsing(
    cli: CliRunner, tmp_path: Path, no_parsing: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _snapshot_book(tmp_path / "src.xlsx")
    bomb = _replace(src, tmp_path / "sst.xlsx", {SHARED: _huge_shared_strings(64)})
    _refused(cli("sync", "--file", str(bomb), now=NOW), SHARED, "zip bomb")
    monkeypatch.setenv("CREDIT_REPAIR_FILES__XLSX_MAX_RATIO", "100000")  # the size limit alone
    monkeypatch.setenv("CREDIT_REPAIR_FILES__XLSX_MAX_SHARED_STRINGS_MB", "16")
    _refused(
        cli("sync", "--file", str(bomb), now=NOW),
        "shared strings",
        "64.0 MB",
        "xlsx_max_shared_strings_mb",
    )
    monkeypatch.setenv("CREDIT_REPAIR_FILES__XLSX_MAX_UNPACKED_MB", "32")
    _refused(cli("sync", "--file", str(bomb), now=NOW), "would unpack to", "xlsx_max_unpacked_mb")
    _nothing_loaded(cli)


def test_a_row_with_too_many_cells_is_refused_before_parsing(
    cli: CliRunner, tmp_path: Path, no_parsing: None
) -> None:
    src = _snapshot_book(tmp_path / "src.xlsx")
    wide = _replace(src, tmp_path / "wide.xlsx", {SHEET: _wide_row(20_000)})  # 440 kB, ratio floor
    _refused(
        cli("sync", "--file", str(wide), now=NOW),
        "row 2",
        "over 16,384 cells",
        "xlsx_max_cells_per_row",
    )
    ledger = _export(cli, tmp_path)
    bomb = _replace(ledger, tmp_path / "import.xlsx", {_ledger_sheet(ledger): _wide_row(20_000)})
    _refused(cli("ledger", "import", str(bomb), now=NOW), "over 16,384 cells")
    _nothing_loaded(cli)


def test_a_cell_over_the_length_limit_is_refused_before_parsing(
    cli: CliRunner, tmp_path: Path, no_parsing: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _snapshot_book(tmp_path / "src.xlsx")
    long = _replace(src, tmp_path / "long.xlsx", {SHEET: _random_cell(400_000)})  # incompressible
    _refused(cli("sync", "--file", str(long), now=NOW), "32,767 characters", "xlsx_max_cell_chars")
    monkeypatch.setenv("CREDIT_REPAIR_FILES__XLSX_MAX_CELL_CHARS", "1000")
    short = _replace(src, tmp_path / "short.xlsx", {SHEET: _random_cell(20_000)})
    _refused(cli("sync", "--file", str(short), now=NOW), "1,000 characters")
    _nothing_loaded(cli)


def test_a_dtd_in_a_sheet_is_refused_and_malformed_xml_is_a_clear_error(
    cli: CliRunner, tmp_path: Path
) -> None:
    src = _snapshot_book(tmp_path / "src.xlsx")
    for name, sheet in (("laughs", BILLION_LAUGHS), ("external", EXTERNAL_ENTITY)):
        bomb = _replace(src, tmp_path / f"{name}.xlsx", {SHEET: [sheet]})
        _refused(cli("sync", "--file", str(bomb), now=NOW), "declares a DTD", "<!DOCTYPE")
    ledger = _export(cli, tmp_path)
    part = _ledger_sheet(ledger)
    bomb = _replace(ledger, tmp_path / "laughs-import.xlsx", {part: [BILLION_LAUGHS]})
    _refused(cli("ledger", "import", str(bomb), now=NOW), "declares a DTD")

    with zipfile.ZipFile(src) as archive:
        sheet = archive.read(SHEET)
    broken = sheet.replace(b"</sheetData>", b'<row r="9"><c><v>1</v></row></sheetData>')
    bad = _replace(src, tmp_path / "broken.xlsx", {SHEET: [broken]})
    _refused(cli("sync", "--file", str(bad), now=NOW), "broken.xlsx", "malformed XML", "row")
    with zipfile.ZipFile(ledger) as archive:
        xml = archive.read(part)
    bad_import = _replace(
        ledger,
        tmp_path / "broken-import.xlsx",
        {part: [xml.replace(b"</sheetData>", b"<row><c></row></sheetData>")]},
    )
    _refused(cli("ledger", "import", str(bad_import), now=NOW), "malformed XML", "nothing changed")
    _nothing_loaded(cli)


def test_an_encrypted_or_old_excel_file_says_what_it_is(
    cli: CliRunner, tmp_path: Path, no_parsing: None
) -> None:
    # the start of an OLE compound file (MS-CFB) holding an encrypted OOXML package
    encrypted = tmp_path / "secret.xlsx"
    directory = (
        "EncryptionInfo".encode("utf-16-le") + b"\0" * 50 + "EncryptedPackage".encode("utf-16-le")
    )
    encrypted.write_bytes(OLE_MAGIC + b"\0" * 504 + directory + os.urandom(4096))
    _refused(cli("sync", "--file", str(encrypted), now=NOW), "password-protected")
    _refused(cli("ledger", "import", str(encrypted), now=NOW), "password-protected")
    old = tmp_path / "old.xlsx"
    old.write_bytes(OLE_MAGIC + b"\0" * 504 + "Workbook".encode("utf-16-le") + os.urandom(4096))
    _refused(cli("sync", "--file", str(old), now=NOW), "Excel 97–2003 (.xls)", "save it as .xlsx")


def test_a_workbook_encrypted_with_a_password_is_named_so(
    cli: CliRunner, tmp_path: Path, no_parsing: None
) -> None:
    """A real encrypted workbook (msoffcrypto-tool writes what Excel's "Encrypt with
    Password" writes: an OLE file holding the agile-encrypted package)."""
    ledger = _export(cli, tmp_path)
    locked = tmp_path / "locked.xlsx"
    with ledger.open("rb") as plain, locked.open("wb") as out:
        OOXMLFile(plain).encrypt("secret", out)
    assert locked.read_bytes()[:8] == OLE_MAGIC
    _refused(cli("ledger", "import", str(locked), now=NOW), "locked.xlsx", "password-protected")
    _refused(cli("sync", "--file", str(locked), now=NOW), "password-protected")


def test_the_check_reads_the_directory_first_and_streams_the_parts(tmp_path: Path) -> None:
    src = _snapshot_book(tmp_path / "src.xlsx")
    check_xlsx(src, XlsxLimits())  # a real workbook passes
    bomb = _replace(src, tmp_path / "cell.xlsx", {SHEET: _huge_cell(64)})
    tracemalloc.start()
    with pytest.raises(UnsafeWorkbook, match="zip bomb"):
        check_xlsx(bomb, XlsxLimits())
    relaxed = XlsxLimits(max_ratio=1e9)  # the ratio off: the streaming scan finds the cell
    with pytest.raises(UnsafeWorkbook, match="over 328,694 bytes"):
        check_xlsx(bomb, relaxed)
    wide = _replace(src, tmp_path / "wide.xlsx", {SHEET: _wide_row(2_000_000)})
    with pytest.raises(UnsafeWorkbook, match="row 2 of its part"):
        check_xlsx(wide, relaxed)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * MB, peak
    with pytest.raises(InputError, match="refused before reading"):
        read_snapshot(bomb)
    crowded = tmp_path / "crowded.xlsx"
    with zipfile.ZipFile(crowded, "w") as archive:
        for n in range(20_000):
            archive.writestr(f"x/{n}", b"")
    with pytest.raises(UnsafeWorkbook, match="lists 20,000 parts"):
        check_xlsx(crowded, XlsxLimits())


def test_every_limit_is_in_the_config_with_a_default(config: Any) -> None:
    files = config.settings.files
    limits = files.xlsx_limits()
    assert limits == XlsxLimits()
    assert (files.xlsx_max_unpacked_mb, files.xlsx_max_ratio) == (2048, 100)


def test_a_downloaded_workbook_is_checked_with_the_configured_limits(
    session: requests.Session, tmp_path: Path
) -> None:
    src = _snapshot_book(tmp_path / "src.xlsx")
    wide = _replace(src, tmp_path / "wide.xlsx", {SHEET: _wide_row(200)}).read_bytes()
    locked = io.BytesIO()
    with src.open("rb") as plain:
        OOXMLFile(plain).encrypt("secret", locked)
    excel = "application/vnd.ms-excel"
    with running_source() as server:
        settings = SourceSettings(name="city", kind="http", url=server.url, retries=0)
        server.replies = [Reply(body=wide, content_type=excel)] * 2 + [
            Reply(body=locked.getvalue(), content_type=XLSX_TYPE)
        ]
        small = XlsxLimits(max_cells_per_row=100)
        with pytest.raises(SourceError, match="over 100 cells"):
            fetch_snapshot(session, settings, None, tmp_path / "work", limits=small)
        fetched = fetch_snapshot(session, settings, None, tmp_path / "work")  # defaults: 16,384
        assert fetched.snapshot is not None
        fetched.snapshot.close()
        with pytest.raises(SourceError, match="password-protected"):
            fetch_snapshot(session, settings, None, tmp_path / "work")


# --------------------------------------------------------------------------- JSON


def _json_rows(n: int) -> list[dict[str, str]]:
    return [penalty(i) for i in range(1, n + 1)]


def test_a_large_json_snapshot_is_streamed_not_parsed_whole(tmp_path: Path) -> None:
    rows = _json_rows(20_000)
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"total": len(rows), "data": rows}, ensure_ascii=False), "utf-8")
    assert path.stat().st_size > 9 * MB
    tracemalloc.start()
    with read_snapshot(path) as snapshot:
        headers = snapshot.headers
        count = sum(1 for _ in snapshot)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert (headers, count) == (list(rows[0]), 20_000)
    assert peak < 4 * MB, f"peak {peak / MB:.1f} MB: the document was held whole"


def test_json_snapshots_keep_their_shapes_errors_and_encodings(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    records = [{"CF_WSH": "A1", "n": 1.5}, {"CF_XDR_MC": "甲", "CF_WSH": "A2"}, 7]
    for document in (records, {"meta": {"x": [1]}, "data": records}, {"n": 1, "rows": records}):
        path.write_text(json.dumps(document, ensure_ascii=False), encoding="gb18030")
        with read_snapshot(path) as snapshot:
            rows = list(snapshot)
        assert snapshot.headers == ["CF_WSH", "n", "CF_XDR_MC"]
        assert [r.values for r in rows[:2]] == [["A1", 1.5, None], ["A2", None, "甲"]]
        assert rows[2].problem == "is a JSON int, not an object"
    path.write_text(json.dumps({"meta": {"data": [1]}, "rows": records}), encoding="utf-8")
    with read_snapshot(path, records_key="rows") as snapshot:
        assert len(list(snapshot)) == 3
    with pytest.raises(InputError, match=r"no list under key 'data' \(keys: meta, rows\)"):
        read_snapshot(path, records_key="data")
    path.write_text('"text"', encoding="utf-8")
    with pytest.raises(InputError, match="expected a JSON list or object, got str"):
        read_snapshot(path)
    path.write_text(json.dumps(records)[:-1] + ', {"a": }]', encoding="utf-8")
    with pytest.raises(InputError, match=r"p\.json: not valid JSON"):
        read_snapshot(path)  # the error at the very end is found before the first row


def test_a_json_snapshot_with_a_syntax_error_at_its_end_loads_nothing(
    cli: CliRunner, tmp_path: Path
) -> None:
    good = write_rows(tmp_path / "p.csv", _json_rows(3))
    assert cli("sync", "--file", str(good), now=NOW).code == 0
    text = json.dumps({"data": _json_rows(500)}, ensure_ascii=False)
    (tmp_path / "bad.json").write_text(text[:-2] + ",]}", encoding="utf-8")
    result = cli("sync", "--file", str(tmp_path / "bad.json"), "--json", now=NOW)
    _refused(result, "bad.json", "not valid JSON")
    shown = cli("ledger", "show", "--json", now=NOW).json_lines()
    assert len(shown) == 3  # as before: nothing added, nothing vanished
