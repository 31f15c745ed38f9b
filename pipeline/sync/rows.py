"""Validate and normalise one snapshot row into the columns of a record.

Pure: a raw row in, a `RowOutcome` out. Every problem names the field; an error
quarantines the row, a warning keeps it. Time and I/O stay in `pipeline.sync.snapshot`.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from itertools import repeat
from operator import itemgetter, methodcaller
from typing import Any, Literal

from sqlalchemy import Numeric, String

from pipeline import __version__
from pipeline.db.models import SNAPSHOT_FIELDS, Record, table_of
from pipeline.domain.routing import Router
from pipeline.domain.uscc import (
    Identity,
    check_uscc,
    identify,
    is_clean,
    normalise_code,
)
from pipeline.office.text import has_controls
from pipeline.sync.normalize import (
    EMPTY_MARKERS,
    DateOrder,
    clean_text,
    decision_key,
    decision_text,
    key_of_text,
    money_amounts,
    parse_amount_wan,
    parse_confiscated_wan,
    parse_date,
    split_penalty_types,
    strip_invisible,
)
from pipeline.sync.sources.base import RawRow
from pipeline.sync.sources.fields import JOINED_FIELD, HeaderMapping, _join

Kind = Literal["penalty", "list"]


@dataclass(frozen=True, slots=True)
class Issue:
    row: int
    field: str | None
    reason: str
    level: Literal["error", "warning"] = "error"

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "reason": self.reason}


@dataclass(slots=True)
class RowOutcome:
    row_no: int
    values: dict[str, Any] | None = None
    """The record columns (key, snapshot fields, content_hash); None when rejected."""
    issues: list[Issue] = field(default_factory=list)
    out_of_scope: bool = False
    key: tuple[str, str] | None = None
    """(authority, decision key) of a rejected row whose key could be read: a record with
    that key is kept as it was rather than vanished (`pipeline.sync.snapshot`)."""
    scope_reason: str | None = None
    """Why the row is out of scope (`pipeline.domain.routing.OUT_OF_SCOPE`)."""
    identity: str | None = None
    """What the USCC column held when not a plain USCC (`pipeline.domain.uscc.CODE_KINDS`)."""

    @property
    def rejected(self) -> bool:
        return any(i.level == "error" for i in self.issues)


def _text(value: object) -> str | None:
    return clean_text(value) or None


def _types(value: object) -> str | None:
    return ";".join(split_penalty_types(clean_text(value))) or None


def _authority(value: object) -> str | None:
    """Half of a record's key: as published, without invisible characters."""
    return strip_invisible(clean_text(value)) or None


def _code(value: object) -> str | None:
    text = clean_text(value)
    return None if text in EMPTY_MARKERS else normalise_code(text) or None


# field -> converter; a converter raises ValueError with a short reason.
_CONVERTERS: dict[str, Callable[[object], Any]] = {
    "decision_no": decision_text,
    "authority": _authority,
    "entity_name": _text,
    "entity_type": _text,
    "legal_rep": _text,
    "violation_type": _text,
    "facts": _text,
    "basis": _text,
    "penalty_types": _types,
    "penalty_content": _text,
    "fine_amount": parse_amount_wan,
    "confiscated_amount": parse_confiscated_wan,
    "license_info": _text,
    "decision_date": parse_date,
    "publication_date": parse_date,
    "valid_until": parse_date,
    "publish_until": parse_date,
    "authority_uscc": _code,
    "data_source": _text,
    "data_source_uscc": _code,
    "severity": _text,
    "industry": _text,
    "list_name": _text,
    "list_reason": _text,
}
_REQUIRED = ("decision_no", "entity_name", "decision_date", "authority")
_DATE_FIELDS = ("decision_date", "publication_date", "valid_until", "publish_until")
_AMOUNT_PARSERS = {"fine_amount": parse_amount_wan, "confiscated_amount": parse_confiscated_wan}


def converters(mapping: HeaderMapping, date_order: DateOrder = "ymd") -> dict[str, Any]:
    """The converters of a file: year-last dates read in the source's `date_order`, amounts
    of a column whose header says 元 in 元."""
    out: dict[str, Callable[[object], Any]] = dict(_CONVERTERS)
    if date_order != "ymd":
        out.update({name: partial(parse_date, order=date_order) for name in _DATE_FIELDS})
    for name, unit in mapping.amount_units.items():
        if unit == "yuan":
            out[name] = partial(_AMOUNT_PARSERS[name], unit="yuan")
    return out


# Fast path (see `_FastPlan`): converters that are pure functions of a text cell whose
# columns repeat a lot in real exports (authorities, codes, dates, amounts, types), so
# their results are memoised per column; free text is cheap to clean inline instead.
_TEXT_FIELDS = frozenset(
    name for name, convert in _CONVERTERS.items() if convert in (_text, decision_text)
)
"""Cleaned inline in the fast path (`decision_text` is `_text` without invisible
characters: a decision number with one goes the general way)."""
_MEMO_FIELDS = frozenset(
    {
        "authority",
        "penalty_types",
        "fine_amount",
        "confiscated_amount",
        "decision_date",
        "publication_date",
        "valid_until",
        "publish_until",
        "authority_uscc",
        "data_source_uscc",
    }
)
_MEMO_LIMIT = 8192
"""Distinct values remembered per column; beyond that values are converted each time."""


class _Slow(Exception):
    """The fast path cannot decide this row: validate it the general way."""


class _Memo(dict[object, Any]):
    """A converter's results by cell text (bounded); a miss converts, and may raise."""

    __slots__ = ("convert",)

    def __init__(self, convert: Callable[[object], Any]) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, key: object) -> Any:
        value = self.convert(key)
        # only text is remembered: 1, 1.0 and True are equal keys but convert differently
        if type(key) is str and len(self) < _MEMO_LIMIT:
            self[key] = value
        return value


def _cells(indices: Sequence[int]) -> Callable[[Sequence[object]], tuple[object, ...]]:
    """A getter of the cells at `indices`, always as a tuple."""
    if not indices:
        return lambda cells: ()
    if len(indices) == 1:
        index = indices[0]
        return lambda cells: (cells[index],)
    return itemgetter(*indices)


class _FastPlan:
    """`RowValidator.validate` for the common row, with the same result.

    Handles only rows whose cells convert without error and carry no warning; anything
    else raises `_Slow` (or the converter's ValueError) and goes through the general
    path, which therefore decides every message. Precomputed per header: where each
    field's column is, which fields are absent (always None), per-column memo tables.
    """

    def __init__(self, mapping: HeaderMapping, convert_all: dict[str, Any]) -> None:
        singles = mapping.single_columns
        joined = mapping.joined_columns
        self.width = len(mapping.headers)
        self.absent: dict[str, Any] = {}
        text: list[tuple[str, int]] = []
        memo: list[tuple[str, int, _Memo]] = []
        self.other: list[tuple[str, int, Callable[[object], Any]]] = []
        self.joined: tuple[int, ...] = ()
        for name, convert in convert_all.items():
            if name == JOINED_FIELD and len(joined) > 1:
                self.joined = joined
                continue
            index = joined[0] if name == JOINED_FIELD and joined else singles.get(name)
            if index is None:
                self.absent[name] = convert(None)  # None for every converter
            elif name in _TEXT_FIELDS:
                text.append((name, index))
            elif name in _MEMO_FIELDS:
                memo.append((name, index, _Memo(convert)))
            else:
                self.other.append((name, index, convert))
        self.text_names = [name for name, _ in text]
        self.text_columns = [index for _, index in text]
        self.text_cells = _cells(self.text_columns)
        self.memo_names = [name for name, _, _ in memo]
        self.memo_columns = [index for _, index, _ in memo]
        self.memo_cells = _cells(self.memo_columns)
        self.memos = [m for _, _, m in memo]
        self.required = itemgetter(*_REQUIRED)
        self.uscc = singles.get("uscc")
        self.extras = mapping.extra_columns

    def values(self, cells: Sequence[object]) -> dict[str, Any]:
        """The converted fields (and uscc) of a row; raises `_Slow` or ValueError."""
        if len(cells) < self.width:
            cells = [*cells, *[None] * (self.width - len(cells))]
        values = dict(self.absent)
        try:
            texts = [" ".join(v.split()) or None for v in self.text_cells(cells)]  # type: ignore[attr-defined]
        except (AttributeError, TypeError):  # a cell that is not text (XLSX, JSON)
            texts = [_text(v) for v in self.text_cells(cells)]
        if has_controls("".join(filter(None, texts))):
            raise _Slow  # control characters: `clean_text` removes them
        values.update(zip(self.text_names, texts, strict=True))
        try:
            converted = [
                memo[v] for memo, v in zip(self.memos, self.memo_cells(cells), strict=True)
            ]
        except TypeError:  # an unhashable cell (a JSON list or object)
            raise _Slow from None
        values.update(zip(self.memo_names, converted, strict=True))
        for name, index, convert in self.other:
            values[name] = convert(cells[index])
        if self.joined:
            values[JOINED_FIELD] = _types(_join(cells[i] for i in self.joined))
        if None in self.required(values):
            raise _Slow
        number = values["decision_no"]
        if not number.isprintable():
            raise _Slow  # an invisible character: `decision_text` drops it
        values["decision_key"] = key_of_text(number)
        given = None if self.uscc is None else cells[self.uscc]
        if type(given) is str and given.isascii():
            code = "".join(given.split()).upper()
            # a placeholder may pass the checks (all zeros does): one character repeated
            if given.strip() != code or not is_clean(code) or code[1:8] == code[0] * 7:
                raise _Slow  # empty, an error, a warning, another code: the general path
            values["uscc"] = code
        else:
            raise _Slow  # no USCC: a natural person? another code? the general path
        return values

    def raw(self, cells: Sequence[object]) -> dict[str, Any] | None:
        out = {}
        for index, key in self.extras:
            value = cells[index] if index < len(cells) else None
            if value not in (None, ""):
                out[key] = _jsonable(value)
        return out or None


class RowValidator:
    def __init__(
        self, kind: Kind, mapping: HeaderMapping, router: Router, date_order: DateOrder = "ymd"
    ) -> None:
        self.kind = kind
        self.mapping = mapping
        self.router = router
        self.converters = converters(mapping, date_order)
        self._fast = _FastPlan(mapping, self.converters)
        singles = mapping.single_columns
        self._amount_cells = _cells(
            [singles.get("fine_amount", -1), singles.get("confiscated_amount", -1)]
        )
        self._amount_columns = [
            singles[name] for name in ("fine_amount", "confiscated_amount") if name in singles
        ]
        self._has_amount_columns = bool(self._amount_columns)

    def validate(self, raw: RawRow) -> RowOutcome:
        if raw.problem is None:
            try:
                values = self._fast.values(raw.values)
            except (_Slow, ValueError):
                pass
            else:
                out = RowOutcome(raw.row_no)
                self._derive_amounts(values, raw.values)
                self._finish_values(values, self._fast.raw(raw.values), out)
                return out
        return self._validate(raw)

    def _validate(self, raw: RawRow) -> RowOutcome:
        """The general path: every check, every message."""
        out = RowOutcome(raw.row_no)
        if raw.problem:
            out.issues.append(Issue(raw.row_no, None, raw.problem))
            return out
        fields, extras = self.mapping.apply(raw.values)
        identity = identify(clean_text(fields.get("uscc")))
        if identity.kind not in ("empty", "uscc", "malformed"):
            out.identity = identity.kind
        if natural_person(fields, identity):
            out.out_of_scope, out.scope_reason = True, "natural_person"
            return out  # nothing of a person is checked, kept or shown
        values = self._convert(raw.row_no, fields, out.issues)
        self._check_uscc(raw.row_no, identity, values, out.issues)
        if out.rejected:
            out.key = stored_key(values)
            return out
        self._derive_amounts(values, raw.values)
        self._finish(values, extras, out)
        return out

    def _convert(self, row: int, fields: dict[str, object], issues: list[Issue]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, convert in self.converters.items():
            try:
                values[name] = convert(fields.get(name))
            except ValueError as exc:
                issues.append(Issue(row, name, str(exc)))
        for name in _REQUIRED:
            if name in values and values[name] is None:
                issues.append(Issue(row, name, "required value is empty"))
        try:
            values["decision_key"] = decision_key(values.get("decision_no"))
        except ValueError as exc:
            issues.append(Issue(row, "decision_no", str(exc)))
        return values

    def _derive_amounts(self, values: dict[str, Any], cells: Sequence[object]) -> None:
        """An amount left empty, from the row's texts: a fine or confiscation column's words
        (`没收违法所得13.07万元，罚款53.07万元`), then 处罚内容 (`罚款人民币二十万元`).

        A text whose one amount is the other column's (`罚款、没收非法财物人民币5000元` beside
        a fine of 0.5 万元) gives nothing: that amount is already the other one's.
        """
        given = values["fine_amount"], values["confiscated_amount"]
        fine, confiscated = given
        if fine is not None and (
            confiscated is not None
            or not self._mentions_confiscation(values["penalty_content"], cells)
        ):
            return  # the common row: nothing to derive (run for every row: kept cheap)
        texts = [values["penalty_content"]]
        if self._has_amount_columns:
            cells = [*cells, None]  # index -1: an absent column
            texts[:0] = self._amount_cells(cells)
        for text in texts:
            if type(text) is not str or ("元" not in text and "万" not in text):
                continue
            if fine is None or "没收" in text:
                found = money_amounts(text)
                if fine is None and not (found.confiscated is None and found.fine == given[1]):
                    fine = found.fine
                if confiscated is None and not (
                    found.fine is None and found.confiscated == given[0]
                ):
                    confiscated = found.confiscated
        values["fine_amount"], values["confiscated_amount"] = fine, confiscated

    def _mentions_confiscation(self, content: object, cells: Sequence[object]) -> bool:
        if type(content) is str and "没收" in content:
            return True
        for index in self._amount_columns:
            cell = cells[index] if index < len(cells) else None
            if type(cell) is str and "没收" in cell:
                return True
        return False

    def _check_uscc(
        self, row: int, identity: Identity, values: dict[str, Any], issues: list[Issue]
    ) -> None:
        code = identity.uscc
        values["uscc"] = code  # empty is allowed: another code, or none
        if identity.kind == "malformed":
            values["uscc"] = None
            result = check_uscc(identity.code)
            issues.append(Issue(row, "uscc", f"{identity.code}: {result.error}"))
            return
        if not code:
            return
        result = check_uscc(code)
        if result.error:
            issues.append(Issue(row, "uscc", f"{code}: {result.error}"))
        elif result.warning:
            issues.append(Issue(row, "uscc", f"{code}: {result.warning}", "warning"))
            values["uscc_warning"] = result.warning

    def _finish(self, values: dict[str, Any], extras: dict[str, object], out: RowOutcome) -> None:
        raw = {k: _jsonable(v) for k, v in extras.items() if v not in (None, "")} or None
        self._finish_values(values, raw, out)

    def _finish_values(
        self, values: dict[str, Any], raw: dict[str, Any] | None, out: RowOutcome
    ) -> None:
        route = self.router.route(values["authority"], values["authority_uscc"])
        if not self.router.in_scope(values["uscc"], values["authority_uscc"], route):
            out.out_of_scope = True
            out.scope_reason = self.router.scope_reason(
                values["uscc"], values["authority_uscc"], route
            )
            return
        values["severity_given"] = values.pop("severity")
        values["department_code"] = route.department_code
        values["route_note"] = route.note
        values.setdefault("uscc_warning", None)
        values["raw"] = raw
        problems = column_issues(out.row_no, values)
        if problems:
            out.issues.extend(problems)
            out.key = stored_key(values)
            return
        values["content_hash"] = content_hash(values)
        values["row_no"] = out.row_no
        out.values = values


# --------------------------------------------------------------------------- what a column holds

_records = table_of(Record)
_STORED = (
    *(n for n in _CONVERTERS if n != "severity"),
    "severity_given",
    "uscc",
    "route_note",
    "decision_key",
)
"""The record columns a validated row writes (`severity` is stored as `severity_given`)."""
_LENGTHS = tuple(
    (c.name, int(c.type.length))
    for c in _records.c
    if isinstance(c.type, String) and c.type.length and c.name in _STORED
)
"""(field, characters) of every snapshot text column with a length limit."""
_KEY_LENGTH = min(
    length for name, length in _LENGTHS if name in ("authority", "decision_no", "decision_key")
)
_AMOUNTS = tuple(
    (c.name, Decimal(10) ** (int(c.type.precision or 0) - int(c.type.scale or 0)))
    for c in _records.c
    if isinstance(c.type, Numeric) and c.name in _CONVERTERS
)
"""(field, bound): Numeric(18, 6) holds less than 10**12."""
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""C0 and C1 control characters and lone surrogates: no database column takes them as
text (PostgreSQL refuses NUL; a lone surrogate cannot be encoded)."""


def column_issues(row: int, values: dict[str, Any]) -> list[Issue]:
    """What the database would refuse in a validated row, as issues (empty: it fits).

    Checked the same way on SQLite (which would store anything) and PostgreSQL (which
    would abort the whole sync on the first such value): text without control
    characters, within its column's length; amounts within the column's range; raw
    extras that JSON and PostgreSQL can hold.
    """
    issues: list[Issue] = []
    texts = [(n, v) for n in _STORED if type(v := values.get(n)) is str]
    if not "".join(v for _, v in texts).isprintable():  # rare: look closer
        issues += [_control_issue(row, n, v) for n, v in texts if _CONTROL.search(v)]
    for name, limit in _LENGTHS:
        value = values.get(name)
        if value is not None and len(value) > limit:
            issues.append(
                Issue(row, name, f"is {len(value)} characters long; the column holds {limit}")
            )
    for name, bound in _AMOUNTS:
        amount = values.get(name)
        if amount is not None and abs(amount) >= bound:
            issues.append(Issue(row, name, f"amount {amount} 万元 is out of range (under {bound})"))
    for key, value in (values.get("raw") or {}).items():
        if isinstance(value, str) and _CONTROL.search(value):
            issues.append(_control_issue(row, str(key), value))
        elif isinstance(value, float) and not math.isfinite(value):
            issues.append(Issue(row, str(key), f"{value!r} is not a number JSON can hold"))
    return issues


def stored_key(values: dict[str, Any]) -> tuple[str, str] | None:
    """(authority, decision key) if both were read and a record could hold them, else None."""
    authority, number = values.get("authority"), values.get("decision_key")
    if not authority or not number or _CONTROL.search(authority + number):
        return None
    if len(authority) > _KEY_LENGTH or len(number) > _KEY_LENGTH:
        return None
    return authority, number


def _control_issue(row: int, name: str, value: str) -> Issue:
    match = _CONTROL.search(value)
    assert match is not None
    return Issue(
        row, name, f"holds the control character U+{ord(match.group()):04X}; it cannot be stored"
    )


class RawDigest:
    """A fingerprint of a raw row as read, for skipping rows that did not change.

    16 bytes (blake2b) over the cells' text, keyed by `fingerprint`: everything else
    that decides what a row validates to (kind, headers and their mapping, field_map,
    departments, jurisdiction, this code). Equal digests under equal fingerprints mean
    the row would validate to the same values. CSV rows (all text, no separator inside)
    are hashed as joined text; anything else (XLSX, JSON cells) by `repr`, in its own
    domain, so 1 and "1" differ.
    """

    __slots__ = ("_record_key", "_repr", "_text", "_text_key")

    def __init__(self, fingerprint: str) -> None:
        key = fingerprint.encode("utf-8")
        self._record_key = key + b"\x00record\x00"
        self._text_key = key + b"\x00text"
        self._text = hashlib.blake2b(self._text_key, digest_size=16)
        self._repr = hashlib.blake2b(key + b"\x00repr", digest_size=16)

    def of_records(self, records: Sequence[bytes], encoding: str) -> list[str]:
        """The hex fingerprints of CSV records by their bytes as read (and the encoding
        they are read in): equal bytes under the same headers and configuration are
        the same cells, so a row can be known unchanged before it is decoded."""
        key = self._record_key + encoding.encode("ascii") + b"\x00"
        return list(map(_HEXDIGEST, map(_BLAKE16, map(key.__add__, records))))

    def many(self, rows: Sequence[Sequence[object]]) -> list[str]:
        """`self(cells).hex()` of each row, the per-row work done by `map` (C loops):
        hashing the key and the text at once is what copying the keyed hash and adding
        the text does. Rows with a cell that is not text, or holds the separator, go one
        by one."""
        try:
            texts = list(map("\x1f".join, rows))  # type: ignore[arg-type]
        except TypeError:
            return list(map(bytes.hex, map(self, rows)))
        separators = sum(map(str.count, texts, repeat("\x1f")))
        if separators != sum(map(len, rows)) - len(rows) or not all(rows):
            # a cell holds the separator (or a row is empty)
            return list(map(bytes.hex, map(self, rows)))
        data = map(str.encode, texts, repeat("utf-8"), repeat("surrogatepass"))
        return list(map(_HEXDIGEST, map(_BLAKE16, map(self._text_key.__add__, data))))

    def __call__(self, cells: Sequence[object]) -> bytes:
        try:
            text = "\x1f".join(cells)  # type: ignore[arg-type]
        except TypeError:  # a cell that is not text
            text = None
        if text is not None and text.count("\x1f") == len(cells) - 1:
            digest = self._text.copy()
        else:
            text = "\x1f".join(map(repr, cells))  # repr escapes \x1f inside text
            digest = self._repr.copy()
        digest.update(text.encode("utf-8", "surrogatepass"))
        return digest.digest()


_BLAKE16 = partial(hashlib.blake2b, digest_size=16)
_HEXDIGEST = methodcaller("hexdigest")


def raw_fingerprint(kind: Kind, mapping: HeaderMapping, *config: str) -> str:
    """What, besides a row's cells, decides its validated values: see `RawDigest`.

    `config` is the configuration the router reads (departments, jurisdiction). The
    package version and RAW_DIGEST_VERSION are included too, so an upgrade (which may
    change how rows are read) makes the next sync validate every row once again.
    """
    parts = [
        RAW_DIGEST_VERSION,
        __version__,
        kind,
        repr(mapping.headers),
        repr(mapping.fields),
        *config,
    ]
    return hashlib.sha256("\x1e".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


RAW_DIGEST_VERSION = "4"
"""Bump with any change to validation, normalisation or routing between releases."""


def _jsonable(value: object) -> Any:
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def content_hash(values: dict[str, Any]) -> str:
    """A digest of every snapshot field: equal hashes mean an unchanged record."""
    text = "\x1f".join(map(repr, map(values.get, SNAPSHOT_FIELDS)))
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


PERSON_TYPES = ("自然人",)
"""行政相对人类别 texts that say the record is about a natural person."""


def natural_person(fields: dict[str, object], identity: Identity) -> bool:
    """Whether a row is about a natural person (自然人), not a market entity.

    An organisation's USCC (an individual business's, 92…, too) says it is not. Else: the
    category says 自然人, the code column holds an identity card number, an identity card
    column is filled, or a person's name is given with no organisation name.
    """
    if identity.uscc is not None:
        return False
    category = clean_text(fields.get("entity_type"))
    if any(word in category for word in PERSON_TYPES) or identity.kind == "person_id":
        return True
    if "个体" in category:
        return False
    return _filled(fields.get("person_id")) or (
        _filled(fields.get("person_name")) and not _filled(fields.get("entity_name"))
    )


def _filled(value: object) -> bool:
    text = clean_text(value)
    return bool(text) and text not in EMPTY_MARKERS
