"""Row types shared by the file and HTTP adapters.

A `Snapshot` is a streaming iterator of `RawRow`s with the header names known up front.
Rows that do not fit the header still come through, carrying a `problem`, so the caller
can quarantine them with their row number instead of losing them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from types import TracebackType
from typing import NamedTuple

from pipeline.errors import InputError, SourceError


class RawRow(NamedTuple):
    """One row as read. A tuple, so that a reader can make a batch of them in C
    (`tuple.__new__(RawRow, …)` over `map`): a million-row file makes a million."""

    row_no: int
    """What a person sees: the spreadsheet row (header = 1), or the 1-based JSON index."""
    values: list[object]
    """Aligned to `Snapshot.headers`; short rows are padded with None."""
    problem: str | None = None
    """Why the row does not fit, e.g. "has 5 fields, the header has 20 (truncated row?)"."""


class RowBatch:
    """Rows of a snapshot taken together, perhaps not parsed yet.

    A CSV reader gives each row's bytes as read (`records`, with `encoding`): rows known
    unchanged by their bytes need never be decoded and split (`rows` of the others
    only). Other readers give parsed rows (`records` is None).
    """

    def __init__(
        self,
        row_nos: list[int],
        parse: Callable[[list[int] | None], list[RawRow]],
        records: list[bytes] | None = None,
        encoding: str | None = None,
    ) -> None:
        self.row_nos = row_nos
        self.records = records
        self.encoding = encoding
        self._parse = parse

    def __len__(self) -> int:
        return len(self.row_nos)

    def rows(self, positions: list[int] | None = None) -> list[RawRow]:
        """The rows at these positions (all by default), in order."""
        return self._parse(positions)

    @classmethod
    def of_rows(cls, rows: list[RawRow]) -> RowBatch:
        def parse(positions: list[int] | None) -> list[RawRow]:
            return rows if positions is None else [rows[p] for p in positions]

        return cls([row.row_no for row in rows], parse)


class Snapshot:
    """Headers plus a one-pass row iterator; close it (or use `with`) to free the file."""

    def __init__(
        self,
        name: str,
        headers: list[str],
        rows: Iterator[RawRow],
        batches: Callable[[int], Iterator[RowBatch]] | None = None,
    ) -> None:
        self.name = name
        """The file or URL, for messages."""
        self.headers = headers
        self._rows = rows
        self._batches = batches
        """The reader's own `row_batches`, reading the same rows as `rows` (CSV)."""
        self._cleanups: list[Callable[[], None]] = []

    def __iter__(self) -> Iterator[RawRow]:
        return self

    def __next__(self) -> RawRow:
        return next(self._rows)

    def batches(self, size: int) -> Iterator[list[RawRow]]:
        """The rows (the rest of them) in lists of up to `size` (none empty)."""
        for batch in self.row_batches(size):
            if rows := batch.rows():
                yield rows

    def row_batches(self, size: int) -> Iterator[RowBatch]:
        """The rows (the rest of them) in batches of up to `size` (none empty), parsed
        only when asked (`RowBatch.rows`) where the reader can (CSV)."""
        if self._batches is not None:
            yield from self._batches(size)
            return
        while batch := list(islice(self._rows, size)):
            yield RowBatch.of_rows(batch)

    def on_close(self, cleanup: Callable[[], None]) -> None:
        self._cleanups.append(cleanup)

    def close(self) -> None:
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()
        while self._cleanups:
            self._cleanups.pop()()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def fit_row(row_no: int, values: list[object], width: int) -> RawRow:
    """Pad or flag a row whose field count differs from the header's."""
    count = len(values)
    if count == width:
        return RawRow(row_no, values)
    while count > width and values[count - 1] in (None, ""):
        count -= 1  # trailing empty fields (a trailing comma) are harmless
    if count == width:
        return RawRow(row_no, values[:width])
    problem = f"has {count} fields, the header has {width}"
    if count < width:
        values = values + [None] * (width - len(values))
        problem += " (truncated row?)"
    return RawRow(row_no, values, problem)


# --------------------------------------------------------------------------- JSON records


def pick_records(
    data: object,
    records_key: str | None,
    where: str,
    error: type[InputError | SourceError] = InputError,
) -> list[object]:
    """The list of records in parsed JSON: the value itself, `records_key`, or the first list.

    `error` is what a wrong shape raises: InputError for a file, SourceError for a reply.
    """
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        raise error(f"{where}: expected a JSON list or object, got {type(data).__name__}")
    if records_key is not None:
        if not isinstance(data.get(records_key), list):
            keys = ", ".join(map(str, data)) or "none"
            raise error(f"{where}: no list under key {records_key!r} (keys: {keys})")
        return list(data[records_key])
    first = next((v for v in data.values() if isinstance(v, list)), None)
    if first is None:
        raise error(f"{where}: the JSON object holds no list of records (set records_key)")
    return first


def record_headers(records: Iterable[object], headers: dict[str, None] | None = None) -> list[str]:
    """The union of the records' keys, in first-seen order (extending `headers` if given)."""
    seen: dict[str, None] = {} if headers is None else headers
    for record in records:
        if isinstance(record, dict):
            seen.update(dict.fromkeys(map(str, record)))
    return list(seen)


def record_rows(records: Iterable[object], headers: list[str], start: int = 1) -> Iterator[RawRow]:
    """Records as rows aligned to `headers`; numbered from `start` (1-based index)."""
    for row_no, record in enumerate(records, start):
        if isinstance(record, dict):
            yield RawRow(row_no, [record.get(h) for h in headers])
        else:
            problem = f"is a JSON {type(record).__name__}, not an object"
            yield RawRow(row_no, [None] * len(headers), problem)
