"""An .xlsx checked before it is parsed: zip bombs, huge rows and cells, DTDs, passwords.

An .xlsx is a zip of XML parts, and openpyxl trusts it: it unpacks the shared strings
whole into memory, builds each row (every cell of it) before handing it over, and each
text node whole. A 2 MB file can unpack to gigabytes. So, before openpyxl sees a file,
`check_xlsx`:

1. refuses an OLE compound file, naming what it is: a password-protected (encrypted)
   workbook, or an old .xls;
2. reads the zip's end record (a directory listing more parts than a workbook has is
   refused before zipfile builds an object for each), then its directory only — the sizes it declares bound what Python's zipfile
   will ever unpack (it stops at the declared size and fails the CRC beyond it) — and
   refuses a total unpacked size, a compression ratio of a part (parts over 1 MiB), or
   shared strings over the limits (`XlsxLimits`), and encrypted parts;
3. streams each XML part through zlib in chunks, never holding more than one, and
   refuses a DTD (``<!DOCTYPE``/``<!ENTITY``: entity expansion, external entities), a
   row with more cells than allowed, and a cell (any text between two tags) longer than
   allowed. These are byte scans (`bytes.find`/`count`), a few per chunk: a sheet
   streams at the speed of zlib.

The scan is exact for runs and markers that cross chunk boundaries (an unfinished tag at
a chunk's end is carried into the next), and a chunk is never longer than a cell or a
row may be, so a run or row inside one chunk is within the limits by construction.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MIB = 1024 * 1024
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTED_STREAM = "EncryptedPackage".encode("utf-16-le")
"""The stream an OLE file holding an encrypted OOXML package carries (MS-OFFCRYPTO)."""
RATIO_FLOOR = 1 * MIB
"""Parts unpacking to less than this are not held to the ratio (tiny parts compress well)."""
MAX_PARTS = 10_000
OLE_SCAN = 64 * MIB
"""How far into an OLE file the name of an encrypted package's stream is looked for."""
CHUNK = 64 * 1024
CARRY = 64
"""At most this much of a chunk's end (an unfinished tag) is carried into the next."""
BYTES_PER_CHAR = 10
"""A character of a cell takes at most 10 bytes of XML (``&#x10FFFF;``)."""
TAG_SLACK = 1024
"""Room for a cell's tag and attributes around its text."""
_DTD = (b"<!DOCTYPE", b"<!ENTITY")
_CELL_REF = re.compile(rb" r=\"([A-Z]{2,3})[0-9]")
_CELL_REF_ANY = re.compile(rb"\sr=\"([A-Z]{2,3})[0-9]")
"""The same where a reference follows a tab or a line break (rare: a slower scan)."""
_ODD_SPACES = (b'\tr="', b'\nr="', b'\rr="')
"""References past column Z (AA1, XFD9): a sheet without any is at most 26 columns wide,
and finding none is a quick scan (no match to build for each of a million cells)."""
NARROW = 26
_ROOT = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?(worksheet|sst)[\s>/]")


@dataclass(frozen=True)
class XlsxLimits:
    """What a workbook may unpack to (settings.yaml `files`; the defaults here)."""

    max_unpacked_bytes: int = 2048 * MIB
    """All parts together, unpacked."""
    max_ratio: float = 100.0
    """Unpacked ÷ packed size of one part (over 1 MiB); zip bombs reach 1000."""
    max_shared_strings_bytes: int = 256 * MIB
    """The shared strings part, which openpyxl holds in memory whole."""
    max_cells_per_row: int = 16_384
    """Excel's own maximum (XFD)."""
    max_cell_chars: int = 32_767
    """Excel's own maximum for a cell."""
    max_sheet_cells: int = 4_000_000
    """Rows × columns of a sheet read whole into memory (python-calamine: .xls, .ods, and
    an .xlsx within it; a larger .xlsx is streamed by openpyxl, a larger .xls or .ods
    refused). About 80 bytes a cell: 4 million cells, some 350 MB."""

    @property
    def max_run_bytes(self) -> int:
        """The longest run of XML between two tags a cell within the limit can take."""
        return self.max_cell_chars * BYTES_PER_CHAR + TAG_SLACK


class UnsafeWorkbook(ValueError):
    """The workbook was refused before parsing; str() says why (without the file name)."""


def check_xlsx(path: Path, limits: XlsxLimits, measure: bool = False) -> int:
    """Raise `UnsafeWorkbook` if the file must not be parsed; return if it may, with the
    largest extent of its sheets in cells (rows × columns, as the cells' references and
    counts give them: what a reader that holds a sheet whole must allocate).

    A file that is not a zip at all (nor an OLE file) passes: openpyxl says what it is.
    An .ods (a zip of XML parts too) is checked the same way but for the cell scan.
    The extent is measured only with `measure` (it costs about as much as the scan).
    """
    with path.open("rb") as stream:
        head = stream.read(len(OLE_MAGIC))
        if head == OLE_MAGIC:
            raise UnsafeWorkbook(_ole_kind(stream))
        _check_directory_size(stream)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError):
        return 0
    extent = 0
    with archive:
        parts = archive.infolist()
        _check_directory(parts, limits)
        for info in parts:
            if info.filename.endswith((".xml", ".rels")):
                extent = max(extent, _scan_part(archive, info, limits, measure))
    return extent


def is_encrypted_package(stream: IO[bytes]) -> bool:
    """Whether an OLE file (read from its current position) holds an encrypted OOXML
    package — a password-protected .xlsx — rather than an .xls."""
    return "password" in _ole_kind(stream)


def _ole_kind(stream: IO[bytes]) -> str:
    """What an OLE file is: an encrypted package names its stream in the directory."""
    tail, read = b"", 0
    while read < OLE_SCAN and (chunk := stream.read(CHUNK)):
        read += len(chunk)
        if ENCRYPTED_STREAM in tail + chunk:
            break
        tail = chunk[-len(ENCRYPTED_STREAM) :]
    else:
        return "this is an old Excel 97–2003 (.xls) or other OLE file; save it as .xlsx"
    return (
        "the workbook is password-protected (encrypted); remove the password "
        "(File → Info → Protect Workbook) and save it again as .xlsx"
    )


def _check_directory_size(stream: IO[bytes]) -> None:
    """Refuse a zip directory listing more parts than a workbook has, before zipfile
    builds an object for each of them (from the end record: a few bytes)."""
    try:
        end = zipfile._EndRecData(stream)  # type: ignore[attr-defined]
    except (OSError, ValueError):
        return
    if not end:
        return  # not a zip: openpyxl says so
    entries, size = int(end[zipfile._ECD_ENTRIES_TOTAL]), int(end[zipfile._ECD_SIZE])  # type: ignore[attr-defined]
    if entries > MAX_PARTS or size > MAX_PARTS * 1024:
        raise UnsafeWorkbook(
            f"its zip directory lists {entries:,} parts in {_mb(size)} (an .xlsx has dozens)"
        )


def _check_directory(parts: list[zipfile.ZipInfo], limits: XlsxLimits) -> None:
    if len(parts) > MAX_PARTS:
        raise UnsafeWorkbook(f"the archive has {len(parts):,} parts (an .xlsx has dozens)")
    total = sum(info.file_size for info in parts)
    if total > limits.max_unpacked_bytes:
        raise UnsafeWorkbook(
            f"its parts would unpack to {_mb(total)}, over the limit of "
            f"{_mb(limits.max_unpacked_bytes)} (files.xlsx_max_unpacked_mb)"
        )
    for info in parts:
        if info.flag_bits & 0x1:
            raise UnsafeWorkbook(
                f"its part {info.filename} is encrypted: the workbook is password-protected; "
                "remove the password and save it again"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > limits.max_ratio:
            raise UnsafeWorkbook(
                f"its part {info.filename} would unpack to {_mb(info.file_size)} from "
                f"{_mb(info.compress_size)} ({ratio:,.0f}× compression, over the limit of "
                f"{limits.max_ratio:,.0f}×: files.xlsx_max_ratio); this looks like a zip bomb"
            )
        if _is_shared_strings(info.filename) and info.file_size > limits.max_shared_strings_bytes:
            raise UnsafeWorkbook(
                f"its shared strings ({info.filename}) would unpack to {_mb(info.file_size)}, "
                f"over the limit of {_mb(limits.max_shared_strings_bytes)} "
                "(files.xlsx_max_shared_strings_mb)"
            )


def _is_shared_strings(name: str) -> bool:
    return name.lower().rsplit("/", 1)[-1] == "sharedstrings.xml"


def _mb(size: float) -> str:
    return f"{size / MIB:,.1f} MB" if size >= MIB / 10 else f"{size / 1024:,.0f} kB"


class _Scan:
    """The byte scan of one XML part (see the module docstring)."""

    def __init__(self, name: str, limits: XlsxLimits, cells: bool, measure: bool) -> None:
        self.name, self.limits, self.count_cells, self.measure = name, limits, cells, measure
        self.run = 0  # bytes since the last '<'
        self.cells = 0  # cells since the last row began
        self.row_no = 0  # rows begun
        self.row: bytes | None = None  # b"<row" (with the sheet's prefix) once known
        self.markers: tuple[bytes, ...] = ()
        self.carry = b""
        self.max_row = 0  # the largest row number a reference names
        self.max_column = b""  # the largest column letters a reference names
        self.max_cells = 0  # the most cells counted in one row
        self.row_ref: re.Pattern[bytes] | None = None

    @property
    def extent(self) -> int:
        """Rows × columns the sheet spans (references, or counts where they are missing)."""
        columns = max(column_number(self.max_column), self.max_cells, NARROW)
        return max(self.max_row, self.row_no) * columns

    def feed(self, chunk: bytes, final: bool = False) -> None:
        buf = self.carry + chunk
        cut = len(buf) if final else buf.rfind(b"<", max(0, len(buf) - CARRY))
        if cut <= 0:
            cut = len(buf)  # no unfinished tag near the end: keep nothing back
        data, self.carry = buf[:cut], buf[cut:]
        if not data:
            return
        for marker in _DTD:
            if marker in data:
                raise UnsafeWorkbook(
                    f"its part {self.name} declares a DTD ({marker.decode()}): entity "
                    "expansion or external entities; a spreadsheet program never writes one"
                )
        self._runs(data)
        if self.count_cells:
            self._rows(data)
            if self.measure:
                self._references(data)

    def _references(self, data: bytes) -> None:
        """The largest row and column the cells' and rows' `r` attributes name."""
        if self.row is None:
            return  # still the prolog
        if self.row_ref is None:  # the row tag with the sheet's prefix, searched as a literal
            self.row_ref = re.compile(re.escape(self.row) + rb"\s[^>]{0,1000}?\br=\"([0-9]{1,9})\"")
        rows = self.row_ref.findall(data)
        if rows:
            self.max_row = max(self.max_row, *map(int, rows))
        odd = any(space in data for space in _ODD_SPACES)
        columns = (_CELL_REF_ANY if odd else _CELL_REF).findall(data)
        if columns:
            longest = max(map(len, columns))
            top = max(c for c in columns if len(c) == longest)
            if (longest, top) > (len(self.max_column), self.max_column):
                self.max_column = top

    def _runs(self, data: bytes) -> None:
        first = data.find(b"<")
        if first < 0:
            self.run += len(data)
        else:
            self.run += first
            self._check_run()
            self.run = len(data) - data.rfind(b"<") - 1
        self._check_run()

    def _check_run(self) -> None:
        if self.run > self.limits.max_run_bytes:
            raise UnsafeWorkbook(
                f"its part {self.name} holds a cell (or tag) over {self.limits.max_run_bytes:,} "
                f"bytes long: over the limit of {self.limits.max_cell_chars:,} characters "
                "in a cell (files.xlsx_max_cell_chars)"
            )

    def _rows(self, data: bytes) -> None:
        if self.row is None:
            root = _ROOT.search(data)
            if root is None:
                return  # still the prolog
            prefix = root.group(1) + b":" if root.group(1) else b""
            self.row = b"<" + prefix + b"row"
            self.markers = tuple(
                b"<" + prefix + b"c" + end for end in (b" ", b">", b"/", b"\n", b"\r", b"\t")
            )
        first = data.find(self.row)
        if first < 0:
            self.cells += self._count(data, 0, len(data))
        else:
            self.cells += self._count(data, 0, first)
            self._check_cells()
            last = data.rfind(self.row)
            self.row_no += data.count(self.row)
            # rows between `first` and `last` lie inside this chunk, which is too short
            # to hold more cells than allowed (a cell takes at least 4 bytes: <c/>)
            self.cells = self._count(data, last, len(data))
        self._check_cells()

    def _count(self, data: bytes, start: int, end: int) -> int:
        return sum(data.count(marker, start, end) for marker in self.markers)

    def _check_cells(self) -> None:
        self.max_cells = max(self.max_cells, self.cells)
        if self.cells > self.limits.max_cells_per_row:
            raise UnsafeWorkbook(
                f"row {self.row_no:,} of its part {self.name} has over "
                f"{self.limits.max_cells_per_row:,} cells (files.xlsx_max_cells_per_row)"
            )


def chunk_size(limits: XlsxLimits) -> int:
    """Short enough that no run or row inside one chunk can break a limit.

    A chunk is scanned with up to `CARRY` bytes held back from the one before it.
    """
    return max(CARRY, min(CHUNK, limits.max_run_bytes, 4 * limits.max_cells_per_row) - CARRY)


def _scan_part(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: XlsxLimits, measure: bool
) -> int:
    name = info.filename
    lower = name.lower()
    sheet = lower.startswith("xl/worksheets/") and lower.endswith(".xml")
    scan = _Scan(name, limits, cells=sheet, measure=measure)
    size = chunk_size(limits)
    try:
        with archive.open(info) as part:
            while chunk := part.read(size):
                scan.feed(chunk)
            scan.feed(b"", final=True)
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, zlib.error) as exc:
        raise UnsafeWorkbook(f"its part {name} cannot be unpacked ({exc})") from None
    return scan.extent if sheet else 0


def column_number(letters: bytes) -> int:
    """`A` → 1, `Z` → 26, `AA` → 27, `XFD` → 16384."""
    number = 0
    for letter in letters:
        number = number * 26 + letter - 64
    return number
