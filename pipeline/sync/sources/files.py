"""The file adapter: CSV (UTF-8, UTF-8 with BOM, GB18030/GBK), XLSX, XLS, ODS and JSON
snapshots.

CSV and JSON are streamed row by row, so a million-row export needs bounded memory (JSON
with ijson: `pipeline.sync.sources.jsonstream`). Every workbook is checked before it is
parsed, against the limits of settings.yaml `files`: an XLSX or ODS as a zip
(`pipeline.office.archive`: zip bombs, huge rows and cells, DTDs, password-protected
files), an XLS by its BIFF records (`pipeline.office.legacy`), and each for the extent of
its sheets. A sheet within `files.sheet_max_cells` is read by python-calamine (an .xlsx
some 8× faster than openpyxl, whole in memory); a larger .xlsx is streamed by openpyxl,
a larger .xls or .ods refused. Any fault met while a sheet is read is an `InputError`
naming the file (and the row, where known), never a traceback.
Every error names the file; decoding errors also name the encoding and the row.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import openpyxl

from pipeline.errors import CreditRepairError, InputError
from pipeline.office.archive import UnsafeWorkbook, XlsxLimits, check_xlsx
from pipeline.office.legacy import check_ods, check_xls
from pipeline.sync.sources.base import RawRow, RowBatch, Snapshot, fit_row
from pipeline.sync.sources.jsonstream import Source, Utf8Reader, json_snapshot

SNIFF_BYTES = 64 * 1024
_FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".xls": "xls",
    ".ods": "ods",
    ".json": "json",
}
WORKBOOKS = ("xlsx", "xls", "ods")
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Exports carry long 违法事实 texts; the default 128 KiB limit is too tight for some.
csv.field_size_limit(16 * 1024 * 1024)


def read_snapshot(
    path: Path,
    format: str = "auto",
    encoding: str = "auto",
    *,
    records_key: str | None = None,
    name: str | None = None,
    limits: XlsxLimits | None = None,
) -> Snapshot:
    """Open a snapshot file; `name` (default: the path) is what messages call it.

    `limits`: what an XLSX may unpack to (settings.yaml `files`; default: its defaults).
    """
    shown = name or str(path)
    _check_readable(path, shown)
    kind = _format_of(path, format, shown)
    if kind in WORKBOOKS:
        return _read_workbook(path, kind, shown, limits or XlsxLimits())
    text = detect_encoding(path, shown) if encoding == "auto" else _known_encoding(encoding, shown)
    if kind == "json":
        return _read_json(path, text, records_key, shown)
    return _read_csv(path, text, shown)


def detect_encoding(path: Path, shown: str | None = None) -> str:
    """BOM → that; else UTF-8 if the first 64 KiB decode as UTF-8; else GB18030."""
    try:
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as exc:
        raise InputError(f"file {shown or path} cannot be read: {exc.strerror}") from None
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        # not final: a character cut at the 64 KiB boundary (or at a truncated end) is fine
        decoder.decode(head, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _check_readable(path: Path, shown: str) -> None:
    if not path.exists():
        raise InputError(f"file {shown} does not exist")
    if not path.is_file():
        raise InputError(f"file {shown} is not a regular file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"file {shown} cannot be read: {exc.strerror}") from None
    if size == 0:
        raise InputError(f"file {shown} is empty")


def _format_of(path: Path, format: str, shown: str) -> str:
    if format in ("csv", "json", *WORKBOOKS):
        return format
    if format != "auto":
        raise InputError(
            f"file {shown}: unknown format {format!r} (csv, xlsx, xls, ods, json or auto)"
        )
    kind = _FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InputError(
            f"file {shown}: cannot tell the format from the suffix {path.suffix!r} "
            "(expected .csv, .txt, .xlsx, .xls, .ods or .json; or set `format`)"
        )
    return kind


def _known_encoding(encoding: str, shown: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise InputError(f"file {shown}: unknown encoding {encoding!r}") from None


def _open_text(path: Path, encoding: str, shown: str) -> IO[str]:
    try:
        return path.open(encoding=encoding, newline="")
    except OSError as exc:
        raise InputError(f"file {shown} cannot be read: {exc.strerror}") from None


def _open_binary(path: Path, shown: str) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"file {shown} cannot be read: {exc.strerror}") from None


def _decode_error(path: Path, shown: str, encoding: str) -> InputError:
    line_no, at_end = _first_bad_line(path, encoding)
    why = (
        "the file seems cut off in the middle of a character"
        if at_end
        else "that row is in another encoding (a mixed file?), or the declared encoding "
        "is wrong (try encoding: gb18030 or auto)"
    )
    return InputError(f"file {shown}: not valid {encoding} near row {line_no}; {why}")


def _first_bad_line(path: Path, encoding: str) -> tuple[int, bool]:
    """(physical line where decoding fails, whether the file is cut inside a character).

    The text layer decodes ahead in chunks, so the row being parsed when it failed can be
    far earlier; this re-reads the file, but only on failure. Bytes that cannot be decoded
    are an encoding error at their line, even on the last line; only a character left
    incomplete by the end of the file (the final flush) means it was cut off.
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    line_no = 0
    with path.open("rb") as f:
        for line_no, line in enumerate(f, 1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError:
                return line_no, False
    return line_no, True  # only the final flush failed: a character cut off


# --------------------------------------------------------------------------- CSV


def _read_csv(path: Path, encoding: str, shown: str) -> Snapshot:
    if codecs.lookup(encoding).name in _BYTE_ENCODINGS:
        return _read_csv_bytes(path, encoding, shown)
    stream = _open_text(path, encoding, shown)
    try:
        records, header = _header_row(_csv_records(stream, path, encoding, shown))
    except BaseException:
        stream.close()
        raise
    if not header:
        stream.close()
        raise InputError(f"file {shown} has no header row (only blank lines)")
    headers = _header_names(header)
    snapshot = Snapshot(shown, headers, _csv_rows(records, len(headers)))
    snapshot.on_close(stream.close)
    return snapshot


def _csv_records(
    stream: IO[str], path: Path, encoding: str, shown: str
) -> Iterator[tuple[int, list[str]]]:
    """(row number, fields) per CSV record, decoding and CSV errors turned into InputError."""
    row_no = 0
    reader = csv.reader(stream)
    try:
        for row_no, fields in enumerate(reader, 1):
            yield row_no, fields
    except UnicodeDecodeError:
        raise _decode_error(path, shown, encoding) from None
    except csv.Error as exc:
        raise InputError(f"file {shown}: row {row_no + 1}: not valid CSV: {exc}") from None


def _csv_rows(records: Iterator[tuple[int, list[str]]], width: int) -> Iterator[RawRow]:
    for row_no, fields in records:
        if not any(fields):  # a blank line, or only commas; cheap: stops at the first value
            continue
        if len(fields) == width:  # the common case
            yield RawRow(row_no, cast(list[object], fields))
        else:
            yield fit_row(row_no, cast(list[object], fields), width)


_BYTE_ENCODINGS = frozenset({"utf-8", "utf-8-sig", "gb18030", "gbk", "gb2312", "ascii"})
"""Encodings in which the bytes of a line feed, carriage return, comma and double quote
are never part of another character: a record's bytes can be found, and compared with
the last sync's, before (or without) decoding it."""
_CHUNK_BYTES = 1 << 17
"""Read at a time: a row-by-row reader stays in flat, small memory."""
_RAW_ROW: Callable[[tuple[int, list[str], None]], RawRow] = partial(tuple.__new__, RawRow)
"""`RawRow(row_no, values, None)` made in C, from a 3-tuple (all three fields: a default
applies only through the Python constructor)."""


def _read_csv_bytes(path: Path, encoding: str, shown: str) -> Snapshot:
    source = _CsvBytes(_open_binary(path, shown), path, encoding, shown)
    try:
        source.pending, header = _header_split(source.records())
    except BaseException:
        source.file.close()
        raise
    if not header:
        source.file.close()
        raise InputError(f"file {shown} has no header row (only blank lines)")
    headers = _header_names(header)
    source.width = len(headers)
    snapshot = Snapshot(shown, headers, source.rows(), source.row_batches)
    snapshot.on_close(source.file.close)
    return snapshot


class _CsvBytes:
    """A CSV file read as bytes, for the same rows, row numbers and errors as `csv.reader`
    over the decoded text (`_csv_records`), but cheaper:

    - lines without a double quote, and without a carriage return but before a line
      feed, are each one record whose fields are its text split at commas — exactly what
      `csv.reader` makes of them; their bytes are kept (`RowBatch.records`), and decoded
      and split only when asked (`RowBatch.rows`): a resync asks only for the rows whose
      bytes changed;
    - other lines (quoted fields, old Mac line ends) go through `csv.reader` line by line
      (as the text reader splits them), each record's bytes being the lines it took.
    """

    def __init__(self, file: IO[bytes], path: Path, encoding: str, shown: str) -> None:
        self.file = file
        self.path, self.shown = path, shown
        self.named = encoding
        """As given: messages name it so."""
        self.encoding = codecs.lookup(encoding).name
        self.text_encoding = "utf-8" if self.encoding == "utf-8-sig" else self.encoding
        """After the first line (a BOM is stripped only there, as the text reader does)."""
        self.first = True
        self.count = 0
        """Records read so far (the header is 1)."""
        self.lines: list[bytes] = []
        """Lines read from the file and not yet taken (each with its line end)."""
        self.partial = b""
        """The start of a line whose end is not read yet."""
        self.eof = False
        self.pending: list[tuple[int, list[str]]] = []
        """Records read while looking for the header, after it: they come first."""
        self.width = 0

    # ------------------------------------------------------------------ reading lines
    def _fill(self, count: int) -> None:
        """Read until `lines` holds `count` lines, or the file has ended."""
        while len(self.lines) < count and not self.eof:
            data = self.file.read(_CHUNK_BYTES)
            if not data:
                self.eof = True
                if self.partial:
                    self.lines.append(self.partial)
                    self.partial = b""
                return
            lines = (self.partial + data).splitlines(keepends=True)
            # the last line may go on (or be a CR whose LF is yet to come)
            self.partial = lines.pop() if not lines[-1].endswith(b"\n") else b""
            self.lines += lines

    def _take(self, count: int) -> list[bytes]:
        self._fill(count)
        taken = self.lines[:count]
        del self.lines[:count]
        return taken

    def _decode(self, line: bytes) -> str:
        encoding = self.encoding if self.first else self.text_encoding
        self.first = False
        try:
            return line.decode(encoding)
        except UnicodeDecodeError:
            raise _decode_error(self.path, self.shown, self.named) from None

    # ------------------------------------------------------------------ records
    def records(self) -> Iterator[tuple[int, list[str]]]:
        """(row number, fields) per record, one by one (the header and titles above it)."""
        while self.pending:
            yield self.pending.pop(0)
        while parsed := self._parsed(self._take(1)):
            for row_no, _, fields in parsed:
                yield row_no, fields

    def _parsed(self, lines: list[bytes]) -> list[tuple[int, bytes, list[str]]]:
        """`csv.reader` over these lines, and more from the file while a record is open:
        (row number, the record's bytes without its line end, fields) per record."""
        taken: list[bytes] = []

        def feed() -> Iterator[str]:
            for line in lines:
                taken.append(line)
                yield self._decode(line)
            while taken:  # a quoted field goes on: the rest of the record
                more = self._take(1)
                if not more:
                    return
                taken.append(more[0])
                yield self._decode(more[0])

        out = []
        reader = csv.reader(feed())
        try:
            for fields in reader:
                self.count += 1
                out.append((self.count, b"".join(taken).rstrip(b"\r\n"), fields))
                taken.clear()
        except csv.Error as exc:
            raise InputError(
                f"file {self.shown}: row {self.count + 1}: not valid CSV: {exc}"
            ) from None
        return out

    def rows(self) -> Iterator[RawRow]:
        for batch in self.row_batches(64):  # small: a row-by-row reader holds little
            yield from batch.rows()

    def row_batches(self, size: int) -> Iterator[RowBatch]:
        """The rows after the header, blank records skipped (as `_csv_rows`)."""
        if self.pending:
            pending, self.pending = self.pending, []
            yield RowBatch.of_rows(list(_csv_rows(iter(pending), self.width)))
        while lines := self._take(size):
            joined = b"".join(lines)
            if (
                b'"' in joined
                or joined.count(b"\r") != joined.count(b"\r\n")
                or len(joined) >= csv.field_size_limit()
            ):
                batch = self._parsed_batch(lines)
            else:
                batch = self._plain_batch(lines)
            if len(batch):
                yield batch

    def _plain_batch(self, lines: list[bytes]) -> RowBatch:
        """Lines that are each one record, fields between commas (see the class)."""
        start = self.count
        self.count += len(lines)
        records = list(map(bytes.rstrip, lines, repeat(b"\r\n")))
        row_nos = list(range(start + 1, start + 1 + len(records)))
        if not all(map(bytes.strip, records, repeat(b","))):  # blank records: skipped
            kept = [i for i, r in enumerate(records) if r.strip(b",")]
            records = [records[i] for i in kept]
            row_nos = [row_nos[i] for i in kept]
        widths = set(map(bytes.count, records, repeat(b",")))
        return RowBatch(
            row_nos,
            partial(self._split, records, row_nos, widths == {self.width - 1}),
            records,
            self.encoding,
        )

    def _split(
        self, records: list[bytes], row_nos: list[int], fit: bool, positions: list[int] | None
    ) -> list[RawRow]:
        if positions is not None:
            records = [records[p] for p in positions]
            row_nos = [row_nos[p] for p in positions]
        try:
            texts = list(map(bytes.decode, records, repeat(self.text_encoding)))
        except UnicodeDecodeError:
            raise _decode_error(self.path, self.shown, self.named) from None
        fields = list(map(str.split, texts, repeat(",")))
        if fit:
            return list(map(_RAW_ROW, zip(row_nos, fields, repeat(None), strict=False)))
        return list(_csv_rows(zip(row_nos, fields, strict=True), self.width))

    def _parsed_batch(self, lines: list[bytes]) -> RowBatch:
        parsed = [p for p in self._parsed(lines) if any(p[2])]  # blank records: skipped
        rows = list(_csv_rows(((n, f) for n, _, f in parsed), self.width))
        records = [r for _, r, _ in parsed]

        def parse(positions: list[int] | None) -> list[RawRow]:
            return rows if positions is None else [rows[p] for p in positions]

        return RowBatch([n for n, _, _ in parsed], parse, records, self.encoding)


TITLE_ROWS = 10
"""How many rows above the header may be titles (a row of one cell: `某局行政处罚信息公开表`)."""
Row = TypeVar("Row", bound=Sequence[Any])


def _header_row(rows: Iterator[tuple[int, Row]]) -> tuple[Iterator[tuple[int, Row]], list[Any]]:
    """(the rows after the header, the header's cells): see `_header_split`."""
    pending, header = _header_split(rows)
    return (itertools.chain(pending, rows) if pending else rows), header


def _header_split(rows: Iterator[tuple[int, Row]]) -> tuple[list[tuple[int, Row]], list[Any]]:
    """(rows read after the header, the header's cells): the first row with two cells or
    more among the first `TITLE_ROWS` rows that hold anything — rows of one cell above it
    are titles, skipped — else the first such row (the rows of one cell after it were
    read: they come first)."""
    seen: list[tuple[int, Row]] = []
    for number, cells in rows:
        filled = sum(c not in (None, "") for c in cells)
        if not filled:
            continue
        if filled >= 2:
            return [], list(cells)
        seen.append((number, cells))
        if len(seen) >= TITLE_ROWS:
            break
    if not seen:
        return [], []
    return seen[1:], list(seen[0][1])


def _header_names(cells: list[Any]) -> list[str]:
    """Header texts without a BOM, trailing empty columns dropped, blanks named by position."""
    names = ["" if c is None else str(c).strip() for c in cells]
    if names:
        names[0] = names[0].removeprefix("\ufeff").strip()
    while names and not names[-1]:
        names.pop()
    return [n or f"column {i}" for i, n in enumerate(names, 1)]


# --------------------------------------------------------------------------- XLSX


def _read_workbook(path: Path, kind: str, shown: str, limits: XlsxLimits) -> Snapshot:
    """Checked first (`WORKBOOKS`: see the module docstring), then read."""
    try:
        if kind == "xls":
            check_xls(path, limits)
        elif kind == "ods":
            check_ods(path, limits)
        elif check_xlsx(path, limits, measure=True) > limits.max_sheet_cells:
            return _read_xlsx(path, shown)  # too big to hold whole: streamed
    except UnsafeWorkbook as exc:
        raise InputError(
            f"file {shown} was refused before reading: {exc}; nothing was loaded"
        ) from None
    except OSError as exc:
        raise InputError(f"file {shown} cannot be read: {exc.strerror}") from None
    return _read_calamine(path, kind, shown)


def _read_calamine(path: Path, kind: str, shown: str) -> Snapshot:
    from python_calamine import CalamineError, CalamineWorkbook, PasswordError

    try:
        with _with_suffix(path, kind) as named, CalamineWorkbook.from_path(str(named)) as book:
            sheet = book.get_sheet_by_index(0)
            name = book.sheet_names[0]
    except PasswordError:
        raise InputError(
            f"file {shown}: the workbook is password-protected; remove the password and save "
            "it again; nothing was loaded"
        ) from None
    except (CalamineError, OSError, ValueError, IndexError) as exc:
        if kind == "xlsx":  # openpyxl, streaming, names the row where the XML breaks
            return _read_xlsx(path, shown)
        detail = " ".join(str(exc).split())[:200]
        raise InputError(
            f"file {shown} is not a readable .{kind} workbook ({type(exc).__name__}: {detail}); "
            "nothing was loaded"
        ) from None
    first = sheet.start[0] + 1 if sheet.start else 1  # the sheet's row of the first cell read
    rows, header = _header_row(
        enumerate((_calamine_cells(cells) for cells in sheet.iter_rows()), first)
    )
    if not header:
        raise InputError(f"file {shown}: the first sheet {name!r} is empty")
    headers = _header_names(header)
    return Snapshot(shown, headers, _xlsx_rows(rows, len(headers), shown))


@contextmanager
def _with_suffix(path: Path, kind: str) -> Iterator[Path]:
    """The file under a name ending in its format (calamine tells the format by the name;
    a download has none): a symbolic link beside nothing else, removed afterwards."""
    if path.suffix.lower() == f".{kind}" or (kind == "xlsx" and path.suffix.lower() == ".xlsm"):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="credit-repair-sheet-") as folder:
        link = Path(folder) / f"snapshot.{kind}"
        link.symlink_to(path.resolve())
        yield link


def _calamine_cells(cells: list[Any]) -> tuple[object, ...]:
    """As openpyxl gives them: None for an empty cell, whole numbers as int (calamine gives
    every number as a float: a date typed 20220509, a phone number)."""
    return tuple(
        None
        if value == ""
        else int(value)
        if type(value) is float and value.is_integer() and abs(value) < 2**53
        else value
        for value in cells
    )


def _read_xlsx(path: Path, shown: str) -> Snapshot:
    """An .xlsx too big to hold whole (already checked): streamed by openpyxl."""
    # a file object, not the path: openpyxl refuses paths not ending in .xlsx/.xlsm
    stream = _open_binary(path, shown)
    try:
        book = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    # openpyxl raises BadZipFile, KeyError, its own InvalidFileException and more
    except Exception as exc:
        stream.close()
        raise InputError(f"file {shown} is not a readable .xlsx workbook ({exc})") from None
    try:
        snapshot = _xlsx_snapshot(book, shown)
    except CreditRepairError:
        book.close()
        stream.close()
        raise
    except Exception as exc:  # malformed XML in the sheet (ParseError, ...)
        book.close()
        stream.close()
        raise _xml_fault(shown, 1, exc) from None
    except BaseException:
        book.close()
        stream.close()
        raise
    snapshot.on_close(stream.close)
    snapshot.on_close(book.close)  # closes run last-in first-out: the book, then the file
    return snapshot


def _xlsx_snapshot(book: Any, shown: str) -> Snapshot:
    sheet = book.worksheets[0]
    # exporting tools often write a wrong <dimension>; without this rows can be cut off
    sheet.reset_dimensions()
    rows, header = _header_row(enumerate(sheet.iter_rows(values_only=True), 1))
    if not header:
        raise InputError(f"file {shown}: the first sheet {sheet.title!r} is empty")
    headers = _header_names(header)
    return Snapshot(shown, headers, _xlsx_rows(rows, len(headers), shown))


def _xlsx_rows(
    rows: Iterator[tuple[int, tuple[object, ...]]], width: int, shown: str
) -> Iterator[RawRow]:
    row_no = 1
    try:
        for row_no, cells in rows:
            if not any(c not in (None, "") for c in cells):
                continue
            if len(cells) < width:  # a sheet does not store empty trailing cells: not truncation
                yield RawRow(row_no, [*cells, *[None] * (width - len(cells))])
            else:
                yield fit_row(row_no, list(cells), width)
    except CreditRepairError:
        raise
    except Exception as exc:  # malformed XML further down the sheet
        raise _xml_fault(shown, row_no + 1, exc) from None


def _xml_fault(shown: str, row_no: int, exc: Exception) -> InputError:
    detail = " ".join(str(exc).split())[:200]
    return InputError(
        f"file {shown}: the sheet cannot be read near row {row_no} "
        f"(malformed XML: {type(exc).__name__}: {detail}); nothing was loaded"
    )


# --------------------------------------------------------------------------- JSON


def _read_json(path: Path, encoding: str, records_key: str | None, shown: str) -> Snapshot:
    """Streamed (`json_snapshot`): the whole file is checked before the first row comes."""

    def open_utf8() -> Source:
        return Utf8Reader(_open_text(path, encoding, shown))

    try:
        return json_snapshot(shown, open_utf8, records_key, f"file {shown}")
    except UnicodeDecodeError:
        raise _decode_error(path, shown, encoding) from None
