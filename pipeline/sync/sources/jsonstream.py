"""JSON snapshots read as a stream (ijson), never parsed whole.

`json.load` of a 200 MB export builds ~1 GB of Python objects before the first row is
validated. Here the file is read three times, each in bounded memory:

1. the top level, token by token, to find the list of records: the document itself, the
   value under `records_key`, or the first list in the object (as `pick_records` does);
2. that list, record by record, for the headers (the union of the keys, in first-seen
   order) — to its end, so that a syntax error anywhere fails here, before any row;
3. that list again, record by record, as rows.

ijson reads UTF-8 bytes; a file in another encoding (GB18030, UTF-16, or UTF-8 with a BOM)
is decoded and re-encoded as it is read. Numbers come as floats and ints, as from `json`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import TracebackType
from typing import IO, Any, Protocol

import ijson

from pipeline.errors import InputError, SourceError
from pipeline.sync.sources.base import RawRow, Snapshot, record_headers, record_rows


class Source(Protocol):
    """What ijson reads: a binary file, or a `Utf8Reader`."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


Opener = Callable[[], Source]
"""Opens the JSON document afresh, as UTF-8 bytes, at its start."""
_TYPES = {
    "null": "NoneType",
    "boolean": "bool",
    "integer": "int",
    "double": "float",
    "number": "float",
    "string": "str",
}


class Utf8Reader:
    """A text stream read as UTF-8 bytes (what ijson needs), whatever its encoding."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if size == 0:
            return b""
        text = self.stream.read(size if size < 0 else max(size // 4, 1))
        return text.encode("utf-8", "surrogatepass")

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> Utf8Reader:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def json_snapshot(
    name: str,
    open_utf8: Opener,
    records_key: str | None,
    where: str,
    error: type[InputError | SourceError] = InputError,
    invalid: Callable[[str], str] | None = None,
) -> Snapshot:
    """The records of a JSON document as a streaming `Snapshot` (see the module docstring).

    `where` starts every message; `error` is what a bad document raises; `invalid` words
    a syntax error from the parser's reason (default: "<where>: not valid JSON: <reason>").
    Decoding errors (UnicodeDecodeError) are left to the caller.
    """
    bad = _Bad(error, invalid or (lambda why: f"{where}: not valid JSON: {why}"))
    prefix = _records_prefix(open_utf8, records_key, where, bad)
    stream = open_utf8()
    try:
        headers = record_headers(_items(stream, prefix, bad))
    finally:
        stream.close()
    stream = open_utf8()
    snapshot = Snapshot(name, headers, _rows(stream, prefix, headers, bad))
    snapshot.on_close(stream.close)
    return snapshot


class _Bad:
    """How a syntax error is raised: the error class and the wording."""

    def __init__(
        self, error: type[InputError | SourceError], invalid: Callable[[str], str]
    ) -> None:
        self.error, self.invalid = error, invalid

    def __call__(self, exc: Exception) -> InputError | SourceError:
        return self.error(self.invalid(_first_line(exc)))


def _rows(stream: Source, prefix: str, headers: list[str], bad: _Bad) -> Iterator[RawRow]:
    yield from record_rows(_items(stream, prefix, bad), headers)


def _items(stream: Source, prefix: str, bad: _Bad) -> Iterator[Any]:
    try:
        yield from ijson.items(stream, prefix, use_float=True)
    except ijson.JSONError as exc:
        raise bad(exc) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _records_prefix(open_utf8: Opener, records_key: str | None, where: str, bad: _Bad) -> str:
    """The ijson prefix of the list of records (`pick_records`' rules, streaming)."""
    stream = open_utf8()
    try:
        events = ijson.basic_parse(stream, use_float=True)
        return _find_list(events, records_key, where, bad.error)
    except ijson.JSONError as exc:
        raise bad(exc) from None
    except StopIteration:
        raise bad(ValueError("the document ends too early")) from None
    finally:
        stream.close()


def _find_list(
    events: Iterator[tuple[str, Any]],
    records_key: str | None,
    where: str,
    error: type[InputError | SourceError],
) -> str:
    kind, _ = next(events)
    if kind == "start_array":
        return "item"
    if kind != "start_map":
        raise error(f"{where}: expected a JSON list or object, got {_TYPES.get(kind, kind)}")
    keys: list[str] = []
    while True:
        kind, key = next(events)
        if kind == "end_map":
            break
        keys.append(key)
        kind, _ = next(events)
        wanted = records_key is None or key == records_key
        if kind == "start_array" and wanted:
            if "." in key:  # ijson joins a path with dots: such a key cannot be addressed
                raise error(f"{where}: the key {key!r} holding the records contains a dot")
            return f"{key}.item"
        _skip(kind, events)
    if records_key is not None:
        raise error(
            f"{where}: no list under key {records_key!r} (keys: {', '.join(keys) or 'none'})"
        )
    raise error(f"{where}: the JSON object holds no list of records (set records_key)")


def _skip(kind: str, events: Iterator[tuple[str, Any]]) -> None:
    """Consume the rest of a value whose first event was `kind`."""
    depth = 1 if kind in ("start_map", "start_array") else 0
    while depth:
        kind, _ = next(events)
        if kind in ("start_map", "start_array"):
            depth += 1
        elif kind in ("end_map", "end_array"):
            depth -= 1
