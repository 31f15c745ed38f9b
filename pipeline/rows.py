"""Validate and normalise one snapshot row into the columns of a record.

Pure: a raw row in, a `RowOutcome` out. Every problem names the field; an error
quarantines the row, a warning keeps it. Time and I/O stay in `pipeline.sync`.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeline.db.models import SNAPSHOT_FIELDS
from pipeline.normalize import clean_text, parse_amount_wan, parse_date, split_penalty_types
from pipeline.routing import Router
from pipeline.sources.base import RawRow
from pipeline.sources.fields import HeaderMapping
from pipeline.uscc import check_uscc, normalise_code

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

    @property
    def rejected(self) -> bool:
        return any(i.level == "error" for i in self.issues)


def code_text(value: object) -> str:
    """Codes and numbers: full-width to ASCII (NFKC) and no whitespace at all."""
    return "".join(unicodedata.normalize("NFKC", clean_text(value)).split())


def _text(value: object) -> str | None:
    return clean_text(value) or None


def _types(value: object) -> str | None:
    return ";".join(split_penalty_types(clean_text(value))) or None


# field -> converter; a converter raises ValueError with a short reason.
_CONVERTERS: dict[str, Callable[[object], Any]] = {
    "decision_no": lambda v: code_text(v) or None,
    "authority": _text,
    "entity_name": _text,
    "entity_type": _text,
    "legal_rep": _text,
    "violation_type": _text,
    "facts": _text,
    "basis": _text,
    "penalty_types": _types,
    "penalty_content": _text,
    "fine_amount": parse_amount_wan,
    "confiscated_amount": parse_amount_wan,
    "license_info": _text,
    "decision_date": parse_date,
    "publication_date": parse_date,
    "valid_until": parse_date,
    "publish_until": parse_date,
    "authority_uscc": lambda v: normalise_code(clean_text(v)) or None,
    "data_source": _text,
    "data_source_uscc": lambda v: normalise_code(clean_text(v)) or None,
    "severity": _text,
    "industry": _text,
    "list_name": _text,
    "list_reason": _text,
}
_REQUIRED = ("decision_no", "entity_name", "decision_date", "authority")


class RowValidator:
    def __init__(self, kind: Kind, mapping: HeaderMapping, router: Router) -> None:
        self.kind = kind
        self.mapping = mapping
        self.router = router

    def validate(self, raw: RawRow) -> RowOutcome:
        out = RowOutcome(raw.row_no)
        if raw.problem:
            out.issues.append(Issue(raw.row_no, None, raw.problem))
            return out
        fields, extras = self.mapping.apply(raw.values)
        values = self._convert(raw.row_no, fields, out.issues)
        self._check_uscc(raw.row_no, fields.get("uscc"), values, out.issues)
        if out.rejected:
            return out
        self._finish(values, extras, out)
        return out

    def _convert(self, row: int, fields: dict[str, object], issues: list[Issue]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, convert in _CONVERTERS.items():
            try:
                values[name] = convert(fields.get(name))
            except ValueError as exc:
                issues.append(Issue(row, name, str(exc)))
        for name in _REQUIRED:
            if name in values and values[name] is None:
                issues.append(Issue(row, name, "required value is empty"))
        return values

    def _check_uscc(
        self, row: int, given: object, values: dict[str, Any], issues: list[Issue]
    ) -> None:
        code = normalise_code(clean_text(given))
        values["uscc"] = code or None  # empty is allowed: natural persons have none
        if not code:
            return
        result = check_uscc(code)
        if result.error:
            issues.append(Issue(row, "uscc", f"{code}: {result.error}"))
        elif result.warning:
            issues.append(Issue(row, "uscc", f"{code}: {result.warning}", "warning"))
            values["uscc_warning"] = result.warning

    def _finish(self, values: dict[str, Any], extras: dict[str, object], out: RowOutcome) -> None:
        route = self.router.route(values["authority"], values["authority_uscc"])
        if not self.router.in_scope(values["uscc"], values["authority_uscc"], route):
            out.out_of_scope = True
            return
        values["severity_given"] = values.pop("severity")
        values["department_code"] = route.department_code
        values["route_note"] = route.note
        values.setdefault("uscc_warning", None)
        values["raw"] = {k: _jsonable(v) for k, v in extras.items() if v not in (None, "")} or None
        values["content_hash"] = content_hash(values)
        values["row_no"] = out.row_no
        out.values = values


def _jsonable(value: object) -> Any:
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def content_hash(values: dict[str, Any]) -> str:
    """A digest of every snapshot field: equal hashes mean an unchanged record."""
    text = "\x1f".join(repr(values.get(name)) for name in SNAPSHOT_FIELDS)
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()
