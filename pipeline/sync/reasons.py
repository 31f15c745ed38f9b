"""Quarantine reasons grouped: 2,000 rows with one kind of fault are one line, with a count
and examples, not 2,000 lines (`quarantine --summary`, the sync's own summary).

A reason quotes the bad value and names rows (`'2019-13-01' is not a date …`, `duplicate of
row 17 (…)`); its *kind* is the reason with those taken out (`reason_kind`). Pure, light.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as _list
from typing import Any

_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_LEADING_CODE = re.compile(r"^[0-9A-Za-z-]{5,}: ")
_DUPLICATE = re.compile(r"^duplicate of row \d+ \(.*\)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
EXAMPLE_ROWS = 5
EXAMPLE_REASONS = 3


def reason_kind(reason: str) -> str:
    """A reason without the values it quotes: `'…' is not a date (expected e.g. N-N-N …)`."""
    text = _DUPLICATE.sub("duplicate of an earlier row (…)", reason)
    text = _LEADING_CODE.sub("…: ", _QUOTED.sub("'…'", text))
    return _NUMBER.sub("N", text)


@dataclass
class ReasonGroup:
    """Rows quarantined for one kind of reason, in one field, by one sync."""

    sync_id: int | None
    source: str | None
    level: str
    field: str | None
    reason: str
    count: int = 0
    rows: list[int] = _list(default_factory=list)
    examples: list[str] = _list(default_factory=list)

    def add(self, row: int, reason: str) -> None:
        self.count += 1
        if len(self.rows) < EXAMPLE_ROWS:
            self.rows.append(row)
        if len(self.examples) < EXAMPLE_REASONS and reason not in self.examples:
            self.examples.append(reason)

    def as_json(self) -> dict[str, Any]:
        return {
            "sync_id": self.sync_id,
            "source": self.source,
            "level": self.level,
            "field": self.field,
            "reason": self.reason,
            "count": self.count,
            "rows": self.rows,
            "examples": self.examples,
        }


def group_reasons(rows: Iterable[Mapping[str, Any]]) -> list[ReasonGroup]:
    """Rows (`sync_id, source, row_no | row, field, level, reason`) grouped by sync, level,
    field and `reason_kind`, the largest group first."""
    groups: dict[tuple[Any, ...], ReasonGroup] = {}
    for row in rows:
        level = row.get("level") or "error"
        kind = reason_kind(row["reason"])
        key = (row.get("sync_id"), row.get("source"), level, row["field"], kind)
        group = groups.get(key)
        if group is None:
            group = groups[key] = ReasonGroup(*key)
        group.add(row["row_no"] if "row_no" in row else row["row"], row["reason"])
    return sorted(groups.values(), key=lambda g: (-g.count, g.sync_id or 0, g.rows[0]))
