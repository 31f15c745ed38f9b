"""Validate many snapshot rows at once, column by column.

`RowValidator.validate` decides one row. `ColumnPlan.run` decides a batch of rows with
exactly the same outcome, but does the work of the common row once per *column*: a
column's cells joined and checked in one C call (printable, no stray whitespace, ASCII),
converters looked up per distinct cell text, USCC check characters computed by `int` in
the right base, the content hash built by `map` over whole columns. A row these checks
cannot vouch for (a cell that does not convert, a control character, a USCC with a
warning, a text longer than its column …) is *deferred*: validated by
`RowValidator.validate` itself, which therefore still decides every message. Deferring is
always safe: the checks here only accept rows the row-by-row path accepts, with the same
values; rows out of scope are set aside with the reason it would give.

Why: a first sync validates every row of a million-row export, and per-row Python
(calls, dicts, a `repr` and a hash object per field) cost several times what reading the
file and inserting it do (issue 13).
"""

from __future__ import annotations

import hashlib
import importlib
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import compress, repeat
from operator import attrgetter, is_, is_not, itemgetter, methodcaller
from typing import Any, cast

from pipeline.db.models import SNAPSHOT_FIELDS
from pipeline.domain.routing import Route
from pipeline.domain.uscc import ALPHABET
from pipeline.office.text import has_controls
from pipeline.sync.normalize import _BLANK_LETTERS, _OTHER_BRACKETS, key_of_text
from pipeline.sync.rows import (
    _AMOUNTS,
    _CONTROL,
    _LENGTHS,
    _MEMO_LIMIT,
    _REQUIRED,
    _TEXT_FIELDS,
    RowOutcome,
    RowValidator,
    _jsonable,
    _text,
    _types,
)
from pipeline.sync.sources.base import RawRow
from pipeline.sync.sources.fields import JOINED_FIELD, _join

OUTPUT_FIELDS = (
    "row_no",
    "authority",
    "decision_no",
    "decision_key",
    *SNAPSHOT_FIELDS,
    "content_hash",
)
"""The columns `Columns.values` holds for the accepted rows."""


class _Bad:
    """A cell the column checks cannot vouch for: its row is deferred."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<deferred>"


_BAD: Any = _Bad()
_SEP = "|"
"""Joins a column's cells for the checks made on the whole column. Any character would
do: a check that fails because of it only sends the column to the per-cell checks."""
_LIMITS = dict(_LENGTHS)
_BOUNDS = dict(_AMOUNTS)
_ROW_NO = attrgetter("row_no")
_VALUES = attrgetter("values")
_PROBLEM = attrgetter("problem")
_HEX = methodcaller("hexdigest")


def _md5_maker() -> Callable[[bytes], Any]:
    """CPython's own MD5 (the same digest) where built in: an object costs a third less
    than OpenSSL's, and `content_hash` makes one per row."""
    try:
        return importlib.import_module("_md5").md5  # type: ignore[no-any-return]
    except ImportError:  # pragma: no cover - a Python built without it
        return partial(hashlib.md5, usedforsecurity=False)


_MD5 = _md5_maker()
_QUOTED = "'{}'".format

# USCC check characters without a Python loop per code (see `_uscc_faults`)
_BASE34 = str.maketrans(
    {c: "0123456789ABCDEFGHIJKLMNOPQRSTUVWX"[i] for i, c in enumerate(ALPHABET)}
)
"""A USCC character → the base-34 digit of its value (J, value 18, is I …)."""
_NEG_CHECK = "".join(ALPHABET[-m % 31] for m in range(31))
"""Σ mod 31 → the check character (−Σ mod 31, as `check_char`)."""
_ORG_CHECK = "".join("0123456789X0"[11 - r] for r in range(11))
"""The organisation code's Σ mod 11 → its check character: 11 − r, 10 → X, 11 → 0."""
_USCC_BYTES = (ALPHABET + _SEP).encode("ascii")
_FIRST17_REVERSED = itemgetter(slice(16, None, -1))
_ORG_BODY = itemgetter(slice(8, 16))
_HEAD8 = itemgetter(slice(0, 8))
_PLACEHOLDERS = frozenset(c * 8 for c in ALPHABET)
"""The first 8 characters of a placeholder code: one character repeated."""
_AREA = itemgetter(slice(2, 8))
_ZERO_SERIAL = re.compile(r"[^0-9]0[0-9]+号")
"""A serial number with a leading zero (`〔2026〕03号`), which `key_of_text` drops."""


def _fits(name: str) -> Callable[[Any], bool]:
    """Whether a converted value is one its record column takes (as `column_issues`)."""
    limit, bound = _LIMITS.get(name), _BOUNDS.get(name)

    def fits(value: Any) -> bool:
        if type(value) is str:
            return (limit is None or len(value) <= limit) and _CONTROL.search(value) is None
        if bound is not None and value is not None:
            return bool(abs(value) < bound)
        return True

    return fits


class _CheckedMemo(dict[object, Any]):
    """A converter's results by cell text, for whole columns (bounded, as `_Memo`).

    A cell that does not convert, or converts to a value its column would not hold, gives
    `_BAD` (counted in `bad`, never remembered): a lookup never raises ValueError.
    """

    __slots__ = ("bad", "convert", "fits")

    def __init__(self, convert: Callable[[object], Any], fits: Callable[[Any], bool]) -> None:
        super().__init__()
        self.convert = convert
        self.fits = fits
        self.bad = 0

    def __missing__(self, key: object) -> Any:
        value = _converted(self.convert, self.fits, key)
        if value is _BAD:
            self.bad += 1
        elif type(key) is str and len(self) < _MEMO_LIMIT:
            self[key] = value
        return value


class _ReprMemo(dict[object, str]):
    """`repr` of the values of a column of texts or dates that repeat. Not for numbers:
    equal Decimals (0.2, 0.20) have different reprs."""

    __slots__ = ()

    def __missing__(self, key: object) -> str:
        text = repr(key)
        if len(self) < _MEMO_LIMIT:
            self[key] = text
        return text


class _RouteMemo(dict[tuple[str, Any, Any], tuple[Route, Any]]):
    """(entity area, authority, authority USCC) → (route, why out of scope or None);
    `_BAD` when the route's note is not one the record column takes."""

    __slots__ = ("router",)

    def __init__(self, validator: RowValidator) -> None:
        super().__init__()
        self.router = validator.router

    def __missing__(self, key: tuple[str, Any, Any]) -> tuple[Route, Any]:
        area, authority, code = key
        route = self.router.route(authority, code)
        reason: Any = self.router.area_scope_reason(area, code, route)
        if reason is None and not _fits("route_note")(route.note):
            reason = _BAD
        found = (route, reason)
        if len(self) < _MEMO_LIMIT:
            self[key] = found
        return found


@dataclass
class Columns:
    """The outcome of a batch: the accepted rows as columns, the others as outcomes."""

    accepted: list[int] = field(default_factory=list)
    """Positions (in the batch) of the rows accepted here, ascending."""
    values: dict[str, Sequence[Any]] = field(default_factory=dict)
    """`OUTPUT_FIELDS` of the accepted rows, each aligned to `accepted`."""
    outcomes: list[tuple[int, RowOutcome]] = field(default_factory=list)
    """(position, outcome) of every other row, ascending: validated one by one, or set
    aside here as out of scope."""


class _Work:
    """The rows still accepted, as columns. Steps mark rows to defer (`defer`) or to set
    aside as out of scope (`scoped`); `flush` takes them out of every column at once,
    at the few points where a step needs clean columns."""

    def __init__(self, positions: list[int], cells: list[Sequence[object]]) -> None:
        self.positions = positions
        self.cells = cells
        """The raw columns, one per header column."""
        self.values: dict[str, Sequence[Any]] = {}
        self.constants: dict[str, Any] = {}
        """Fields with one value in every row (absent from the file): not in `values`."""
        self.pending: set[int] = set()
        """Indexes (into the current columns) of rows to take out at the next `flush`."""
        self.deferred: list[int] = []
        """Positions of the rows to validate one by one."""
        self.scoped: list[tuple[int, str]] = []
        """(position, reason) of the rows out of scope."""
        self.quotable: set[str] = set()
        """Text fields whose every value's repr is the value in quotes (`_clean_texts`)."""

    def __len__(self) -> int:
        return len(self.positions)

    def assign(self, name: str, column: Sequence[Any]) -> None:
        self.constants.pop(name, None)
        self.values[name] = column

    def column(self, name: str) -> Sequence[Any]:
        if name in self.constants:
            return [self.constants[name]] * len(self.positions)
        return self.values[name]

    def keep_cells(self, indexes: set[int]) -> None:
        """Forget the raw columns no later step reads (`flush` need not filter them)."""
        self.cells = [c if i in indexes else () for i, c in enumerate(self.cells)]

    def defer(self, rows: Sequence[int]) -> None:
        """Validate these rows one by one (unless already taken out by an earlier step)."""
        rows = sorted(set(rows).difference(self.pending))
        self.pending.update(rows)
        self.deferred += [self.positions[i] for i in rows]

    def set_aside(self, rows: Sequence[int], reasons: Sequence[str]) -> None:
        """These rows are out of scope, for these reasons (indexed like the columns)."""
        rows = sorted(set(rows).difference(self.pending))
        self.pending.update(rows)
        self.scoped += [(self.positions[i], reasons[i]) for i in rows]

    def flush(self) -> None:
        if not self.pending:
            return
        gone = self.pending
        keep = [i not in gone for i in range(len(self.positions))]
        self.positions = list(compress(self.positions, keep))
        self.cells = [list(compress(c, keep)) if c else c for c in self.cells]
        self.values = {k: list(compress(v, keep)) for k, v in self.values.items()}
        self.pending = set()


class ColumnPlan:
    """`RowValidator.validate` over a batch of rows, column by column (see the module)."""

    def __init__(self, validator: RowValidator) -> None:
        fast = validator._fast
        self.validator = validator
        self.width = fast.width
        self.uscc = fast.uscc
        self.absent = fast.absent
        self.extras = fast.extras
        self.joined = fast.joined
        self.text = list(zip(fast.text_names, fast.text_columns, strict=True))
        self.memos = [
            (n, i, _CheckedMemo(validator.converters[n], _fits(n)))
            for n, i in zip(fast.memo_names, fast.memo_columns, strict=True)
        ]
        self.other = [(n, i, convert, _fits(n)) for n, i, convert in fast.other]
        self.routes = _RouteMemo(validator)
        self.cells_read_later = {
            *([] if fast.uscc is None else [fast.uscc]),
            *validator._amount_columns,
            *(i for i, _ in fast.extras),
        }
        """The raw columns read after the conversions: USCC, amounts, raw extras."""
        self.derived: dict[tuple[object, ...], tuple[Any, Any]] = {}
        self.reprs = {name: _ReprMemo() for name in SNAPSHOT_FIELDS}
        self.checked_lengths = [
            (n, limit)
            for n, limit in _LENGTHS
            if n not in fast.memo_names and n not in ("uscc", "authority_uscc", "route_note")
        ]
        """Lengths `_memos`, `_usccs` and `_scope` have not checked already."""

    # ------------------------------------------------------------------ the batch
    def run(self, rows: Sequence[RawRow]) -> Columns:
        cells: list[list[object]] = list(map(_VALUES, rows))
        fitting: list[int] = list(range(len(rows)))
        unfit: list[int] = []
        if any(map(_PROBLEM, rows)) or set(map(len, cells)) != {self.width}:
            fitting = [
                i for i, r in enumerate(rows) if r.problem is None and len(r.values) == self.width
            ]
            unfit = sorted(set(range(len(rows))).difference(fitting))
            cells = [cells[i] for i in fitting]
        work = _Work(fitting, list(zip(*cells, strict=True)) if cells else [])
        work.deferred = unfit
        if work and self.uscc is None:  # no USCC column: the general path decides
            work.defer(list(range(len(work))))
            work.flush()
        if work:
            work.values["row_no"] = [rows[i].row_no for i in fitting]
            self._validate(work)
        return self._outcome(rows, work)

    def _validate(self, work: _Work) -> None:
        """Each step mirrors a part of `RowValidator.validate` (`_FastPlan.values`,
        `_derive_amounts`, `_finish_values`, `column_issues`, `content_hash`), in order;
        rows are taken out of the columns (`flush`) before a step that needs them clean."""
        for steps in (
            (self._texts, self._memos, self._others, self._required),
            (self._printable, self._keys, self._plain_usccs),
            (self._clean_usccs, self._amounts, self._scope, self._raw, self._lengths),
        ):
            for step in steps:
                step(work)
            if step == self._required:
                work.keep_cells(self.cells_read_later)
            work.flush()
            if not work:
                return
        self._hash(work)

    def _outcome(self, rows: Sequence[RawRow], work: _Work) -> Columns:
        out = Columns(accepted=work.positions)
        if work.positions:
            out.values = {name: work.column(name) for name in OUTPUT_FIELDS}
        validate = self.validator.validate
        outcomes = [(p, validate(rows[p])) for p in work.deferred]
        outcomes += [
            (p, RowOutcome(rows[p].row_no, out_of_scope=True, scope_reason=reason))
            for p, reason in work.scoped
        ]
        out.outcomes = sorted(outcomes, key=itemgetter(0))
        return out

    # ------------------------------------------------------------------ the steps
    def _texts(self, work: _Work) -> None:
        """Free text: whitespace runs collapsed, empty as None; no control character."""
        for name, index in self.text:
            texts, bad, quotable = _clean_texts(work.cells[index])
            work.values[name] = texts
            if quotable:
                work.quotable.add(name)
            work.defer(bad)
        work.constants.update(self.absent)

    def _memos(self, work: _Work) -> None:
        """Dates, amounts, codes, authorities, penalty types: converted once per text."""
        for name, index, memo in self.memos:
            column = work.cells[index]
            memo.bad = 0
            try:
                values = list(map(memo.__getitem__, column))
            except TypeError:  # an unhashable cell (a JSON list or object)
                values = [_lookup(memo, cell) for cell in column]
                memo.bad = 1
            work.values[name] = values
            if memo.bad:
                work.defer([i for i, v in enumerate(values) if v is _BAD])

    def _others(self, work: _Work) -> None:
        """Other converters, and penalty types joined from several columns: cell by cell."""
        for name, index, convert, fits in self.other:
            values = [_converted(convert, fits, cell) for cell in work.cells[index]]
            work.values[name] = values
            work.defer([i for i, v in enumerate(values) if v is _BAD])
        if self.joined:
            fits = _fits(JOINED_FIELD)
            columns = [work.cells[i] for i in self.joined]
            values = [_converted(_types, fits, _join(row)) for row in zip(*columns, strict=True)]
            work.values[JOINED_FIELD] = values
            work.defer([i for i, v in enumerate(values) if v is _BAD])

    def _required(self, work: _Work) -> None:
        """`_REQUIRED` all given (as `_FastPlan.values`)."""
        for name in _REQUIRED:
            column = work.column(name)
            if not all(column):  # None: empty text is None, never ""; dates are true
                work.defer([i for i, v in enumerate(column) if v is None])

    def _printable(self, work: _Work) -> None:
        """The decision number printable (as `_FastPlan.values`)."""
        numbers = work.values["decision_no"]
        if not _SEP.join(numbers).isprintable():
            work.defer([i for i, v in enumerate(numbers) if not v.isprintable()])

    def _keys(self, work: _Work) -> None:
        """`key_of_text` of each decision number: the number itself when the column holds
        nothing the key changes (checked on the whole column), else row by row."""
        numbers: Sequence[str] = work.values["decision_no"]
        joined = _SEP + _SEP.join(numbers)
        if (
            unicodedata.is_normalized("NFKC", joined)
            and " " not in joined
            and not any(ch in joined for ch in _BLANK_LETTERS)
            and _OTHER_BRACKETS.search(joined) is None
            and "第" not in joined
            and _ZERO_SERIAL.search(joined) is None
        ):
            work.values["decision_key"] = numbers
            return
        fits = _fits("decision_key")
        keys = [_converted(key_of_text, fits, number) for number in numbers]
        work.values["decision_key"] = keys
        work.defer([i for i, k in enumerate(keys) if k is _BAD])

    def _plain_usccs(self, work: _Work) -> None:
        """A plain USCC as given (as `_FastPlan.values`): 18 characters of `ALPHABET`,
        nothing to strip or upper-case; anything else (empty, spaced, lower case, another
        code) is deferred."""
        assert self.uscc is not None
        codes = work.cells[self.uscc]
        try:
            joined = _SEP.join(codes)  # type: ignore[arg-type]
        except TypeError:
            joined = "\x00"
        plain = (
            joined.isascii()
            and joined.isprintable()  # ASCII: no controls, no whitespace but spaces
            and " " not in joined
            and joined.upper() == joined
            and set(map(len, cast("list[str]", codes))) == {18}
            and not joined.encode("ascii").translate(None, _USCC_BYTES)
        )
        if not plain:
            work.defer([i for i, c in enumerate(codes) if not _plain_uscc(c)])

    def _clean_usccs(self, work: _Work) -> None:
        """The check characters right and no placeholder (as `is_clean` and the fast plan)."""
        assert self.uscc is not None
        codes: Any = work.cells[self.uscc]
        work.values["uscc"] = codes
        work.defer(_uscc_faults(codes))

    def _amounts(self, work: _Work) -> None:
        """`RowValidator._derive_amounts` for the rows that need it (no fine; or no
        confiscation and 没收 mentioned), remembered by what it reads."""
        fines = list(work.column("fine_amount"))
        confiscations = list(work.column("confiscated_amount"))
        contents = work.column("penalty_content")
        columns = [work.cells[i] for i in self.validator._amount_columns]
        rows = {i for i, f in enumerate(fines) if f is None} if has_none(fines) else set()
        if has_none(confiscations):
            rows.update(i for i in _mentions(contents, columns) if confiscations[i] is None)
        if not rows:
            return
        fits_fine, fits_confiscated = _fits("fine_amount"), _fits("confiscated_amount")
        bad = []
        for i in sorted(rows):
            raw = [c[i] for c in columns]
            fine, confiscated = self._derived(fines[i], confiscations[i], contents[i], raw)
            fines[i], confiscations[i] = fine, confiscated
            if not (fits_fine(fine) and fits_confiscated(confiscated)):
                bad.append(i)
        work.assign("fine_amount", fines)
        work.assign("confiscated_amount", confiscations)
        work.defer(bad)

    def _derived(self, fine: Any, confiscated: Any, content: Any, raw: list[object]) -> Any:
        """`_derive_amounts` on what it reads (the amounts, the content, the amount cells)."""
        key = (fine, confiscated, content, *raw)
        try:
            found = self.derived.get(key)
        except TypeError:  # an unhashable cell
            found, key = None, ()
        if found is None:
            cells: list[object] = [None] * self.width
            for index, cell in zip(self.validator._amount_columns, raw, strict=True):
                cells[index] = cell
            values = {
                "fine_amount": fine,
                "confiscated_amount": confiscated,
                "penalty_content": content,
            }
            self.validator._derive_amounts(values, cells)
            found = (values["fine_amount"], values["confiscated_amount"])
            if key and len(self.derived) < _MEMO_LIMIT:
                self.derived[key] = found
        return found

    def _scope(self, work: _Work) -> None:
        """Route each row (`Router.route`) and set aside those out of scope with their
        reason, as `_finish_values` does; a route note too long for its column defers."""
        values = work.values
        keys = zip(
            map(_AREA, values["uscc"]),
            values["authority"],
            work.column("authority_uscc"),
            strict=True,
        )
        values["route"] = list(map(self.routes.__getitem__, keys))
        reasons = list(map(itemgetter(1), values["route"]))
        if any(reasons):  # `_BAD` is true too
            work.set_aside([i for i, r in enumerate(reasons) if r and r is not _BAD], reasons)
            work.defer([i for i, r in enumerate(reasons) if r is _BAD])
        routes = list(map(itemgetter(0), work.values.pop("route")))
        work.values["department_code"] = list(map(attrgetter("department_code"), routes))
        work.values["route_note"] = list(map(attrgetter("note"), routes))
        if "severity" in work.constants:
            work.constants["severity_given"] = work.constants["severity"]
        else:
            work.values["severity_given"] = work.values["severity"]
        work.constants["uscc_warning"] = None

    def _raw(self, work: _Work) -> None:
        """Unmapped columns as the record's `raw` extras (as `_FastPlan.raw`), checked as
        `column_issues` checks them."""
        count = len(work)
        filled = [
            (key, work.cells[i])
            for i, key in self.extras
            if work.cells[i].count(None) + work.cells[i].count("") != count
        ]
        if not filled:
            work.constants["raw"] = None
            return
        raws: list[dict[str, Any] | None] = [None] * count
        bad = []
        for key, column in filled:
            for i, value in enumerate(column):
                if value in (None, ""):
                    continue
                value = _jsonable(value)
                if (isinstance(value, str) and _CONTROL.search(value)) or (
                    isinstance(value, float) and not math.isfinite(value)
                ):
                    bad.append(i)
                entry = raws[i]
                if entry is None:
                    entry = raws[i] = {}
                entry[key] = value
        work.values["raw"] = raws
        work.defer(bad)

    def _lengths(self, work: _Work) -> None:
        """Texts within their column's length (`column_issues`), those not checked yet."""
        for name, limit in self.checked_lengths:
            if name in work.constants:
                continue
            column = work.values[name]
            if max(map(len, filter(None, column)), default=0) > limit:
                work.defer([i for i, v in enumerate(column) if v is not None and len(v) > limit])

    def _hash(self, work: _Work) -> None:
        """`content_hash` of every row, without a `repr` call per text: each row's text is
        one `"".join` of its cells between constant pieces (the quotes of a column of
        plain texts, the reprs of a column that is None throughout), then md5."""
        values = work.values
        pieces: list[Any] = []
        constant = ""
        for i, name in enumerate(SNAPSHOT_FIELDS):
            constant += "\x1f" if i else ""
            if name in work.constants:
                constant += repr(work.constants[name])
                continue
            column = values[name]
            if name == "uscc" or name in work.quotable:
                pieces += [repeat(constant + "'"), column]
                constant = "'"
                continue
            if all_none(column):
                constant += "None"
                continue
            if name in _TEXT_FIELDS:
                reprs: Sequence[str] = _reprs_of_texts(column)
            elif name == "raw" or name in _BOUNDS:  # dicts; Decimals: 0.2 == 0.20
                reprs = list(map(repr, column))
            else:
                reprs = list(map(self.reprs[name].__getitem__, column))
            pieces += [repeat(constant), reprs]
            constant = ""
        pieces.append(repeat(constant))
        texts = map("".join, zip(*pieces, strict=False))  # the constants repeat
        values["content_hash"] = list(map(_HEX, map(_MD5, map(str.encode, texts))))


# --------------------------------------------------------------------------- helpers


def _clean_texts(column: Sequence[object]) -> tuple[Sequence[str | None], list[int], bool]:
    """(`" ".join(v.split()) or None` of each cell, indexes to defer, whether every text's
    repr is itself in quotes), as `_FastPlan.values` cleans free text: checked on the whole
    column (printable, no doubled, leading or trailing space: nothing to collapse), cell by
    cell only when that fails. A cell with a control character defers its row
    (`_FastPlan` or `column_issues` would)."""
    try:
        joined = _SEP.join(column)  # type: ignore[arg-type]
    except TypeError:
        joined = None
    if joined is not None and joined.isprintable() and _spaced_plainly(joined):
        texts: Sequence[Any] = column
        if all(texts):
            return texts, [], "'" not in joined and "\\" not in joined
        return [v or None for v in texts], [], False
    out: list[str | None] = []
    bad: list[int] = []
    for i, value in enumerate(column):
        if value is None:
            text = None
        elif type(value) is str:
            text = " ".join(value.split()) or None
            if (
                text is not None
                and not text.isprintable()
                and (has_controls(text) or _CONTROL.search(text))
            ):
                bad.append(i)
        else:  # a number or a date cell: `_text`, as the fast plan does for such a row
            text = _text(value)
            if text is not None and _CONTROL.search(text):
                bad.append(i)
        out.append(text)
    return out, bad, False


def _spaced_plainly(joined: str) -> bool:
    """No cell with a leading, trailing or doubled space (the separator shows the edges)."""
    if " " not in joined:
        return True
    return not (
        "  " in joined
        or f" {_SEP}" in joined
        or f"{_SEP} " in joined
        or joined.startswith(" ")
        or joined.endswith(" ")
    )


def has_none(column: Sequence[Any]) -> bool:
    """`None in column` by identity: `==` would ask each Decimal whether None is a number
    (an ABC instance check), some 20 times slower."""
    return any(map(is_, column, repeat(None)))


def all_none(column: Sequence[Any]) -> bool:
    """Every value is None (`any` stops at the first true value, the common answer)."""
    return not any(column) and not any(map(is_not, column, repeat(None)))


def _reprs_of_texts(column: Sequence[Any]) -> Sequence[str]:
    """`repr` of each value of a column of texts (or None): `'text'` built by formatting
    when no value needs escaping (printable, no quote, no backslash), as repr writes it."""
    texts = list(filter(None, column))
    try:
        joined = _SEP.join(texts)
    except TypeError:
        return list(map(repr, column))
    if not (joined.isprintable() and "'" not in joined and "\\" not in joined):
        return list(map(repr, column))
    if len(texts) == len(column):
        return list(map(_QUOTED, column))
    return [_QUOTED(v) if v else repr(v) for v in column]


def _mentions(contents: Sequence[Any], columns: Sequence[Sequence[object]]) -> set[int]:
    """Indexes of the rows whose content text or an amount cell mentions 没收 (as
    `RowValidator._mentions_confiscation`): first looked for in each whole column."""
    found: set[int] = set()
    if "没收" in _SEP.join(filter(None, contents)):
        found.update(i for i, text in enumerate(contents) if text and "没收" in text)
    for column in columns:
        try:
            joined = _SEP.join(column)  # type: ignore[arg-type]
        except TypeError:  # numbers or dates among the cells
            joined = "没收"
        if "没收" in joined:
            found.update(i for i, c in enumerate(column) if type(c) is str and "没收" in c)
    return found


def _lookup(memo: _CheckedMemo, cell: object) -> Any:
    try:
        return memo[cell]
    except TypeError:
        return _BAD


def _converted(convert: Callable[[Any], Any], fits: Callable[[Any], bool], cell: object) -> Any:
    """`convert(cell)` if it converts to a value its column takes, else `_BAD`."""
    try:
        value = convert(cell)
    except (ValueError, TypeError):
        return _BAD
    return value if fits(value) else _BAD


def _plain_uscc(cell: object) -> bool:
    """The per-cell form of the whole-column check of `ColumnPlan._usccs`."""
    if type(cell) is not str or not cell.isascii() or len(cell) != 18:
        return False
    code = "".join(cell.split()).upper()
    return cell == code and not code.encode("ascii").translate(None, _USCC_BYTES)


def _uscc_faults(codes: Sequence[str]) -> list[int]:
    """Indexes of the codes (18 characters of `ALPHABET` each) that `is_clean` refuses or
    that are placeholders (the first character 8 times).

    `is_clean` in bulk: the weights of the check character are 3ⁱ mod 31, so Σ vᵢ·wᵢ mod 31
    is the value of the first 17 characters, reversed, in base 34 (34 ≡ 3 mod 31); the
    organisation code's weights are 2⁸⁻ʲ mod 11, so its Σ is 2 × the value of its 8
    characters in base 35 (35 ≡ 2 mod 11), whose digits value letters A=10 … Y=34 as GB
    11714 does. `int` does the sums in C.
    """
    if not codes:
        return []
    translated = _SEP.join(codes).translate(_BASE34).split(_SEP)
    sums = map(int, map(_FIRST17_REVERSED, translated), repeat(34))
    expected = list(map(_NEG_CHECK.__getitem__, map((31).__rmod__, sums)))
    given = list(map(itemgetter(17), codes))
    org_sums = map((2).__mul__, map(int, map(_ORG_BODY, codes), repeat(35)))
    org_expected = list(map(_ORG_CHECK.__getitem__, map((11).__rmod__, org_sums)))
    org_given = list(map(itemgetter(16), codes))
    heads = list(map(_HEAD8, codes))
    repeated = list(map(str.__mul__, map(itemgetter(0), codes), repeat(8)))
    if (
        expected == given
        and org_expected == org_given
        and not any(map(str.__eq__, heads, repeated))
    ):
        return []
    return [
        i
        for i in range(len(codes))
        if expected[i] != given[i] or org_expected[i] != org_given[i] or heads[i] == repeated[i]
    ]
