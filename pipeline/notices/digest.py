"""What a department's daily digest lists: its cases, collected while the planner reads
the ledger, each section bounded.

Every case is counted; only the first `max_cases` of a section (green channel first, then
by decision number: the order the digest prints them) are kept. A digest is read by a
person: the day after a first sync of a large snapshot, a section may hold hundreds of
thousands of cases (every 超期仍公示 of the backlog), which no one reads in an e-mail, no
mail server takes, and which the planner held in memory (~1.7 kB a case: 1 GB at a
province's million records). The full list is the ledger export's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pipeline.ledger.state import VERIFY_REASONS
from pipeline.notices.context import record_view

SECTIONS = ("new_cases", "due_cases", "to_confirm", "overdue_display", "help_requests")
RECENT = dt.timedelta(days=7)
PUBLISHED_OPEN = ("in_min_period", "repairable", "non_repairable")
"""Statuses of a penalty still shown and open: the ones notices and digests concern."""


def listing_order(case: dict[str, Any]) -> tuple[bool, str]:
    """Green channel first, then by decision number."""
    return (not case["green_channel"], case["decision_no"])


class Section:
    """One section of a digest: every case counted, the first `limit` in listing order kept.

    Trimmed whenever it holds twice the limit: a stable sort of what is kept (already in
    order, and earlier) followed by what came since gives what one sort of everything
    would, so the kept cases are the same as a full list's first `limit`.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self.cases: list[dict[str, Any]] = []

    def add(self, case: dict[str, Any]) -> None:
        self.total += 1
        self.cases.append(case)
        if len(self.cases) >= 2 * self.limit:
            self._trim()

    def listed(self) -> list[dict[str, Any]]:
        """The cases to print, in listing order."""
        self._trim()
        return self.cases

    def _trim(self) -> None:
        self.cases.sort(key=listing_order)
        del self.cases[self.limit :]


class Digest:
    """Each department's sections, filled one ledger row at a time (`collect`). A
    department appears once a case is filed for it: one with none gets no digest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.departments: dict[str, dict[str, Section]] = {}

    def sections(self, code: str) -> dict[str, Section]:
        """A department's sections, made empty when it has none yet."""
        found = self.departments.get(code)
        if found is None:
            found = self.departments[code] = {name: Section(self.limit) for name in SECTIONS}
        return found

    def add(self, row: dict[str, Any], section: str, view: dict[str, Any]) -> None:
        self.sections(row["department_code"])[section].add(view)

    def collect(self, row: dict[str, Any], today: dt.date) -> None:
        """File `row` under its department's sections, if any concerns it today."""
        self._help_request(row, today)
        if self._attention(row, today):
            return
        if row["kind"] == "penalty" and row["status"] not in PUBLISHED_OPEN:
            return
        view = record_view(row)
        if row["first_seen_on"] == today:
            self.add(row, "new_cases", view)
        start = row["repairable_from"]
        soon = today + dt.timedelta(days=7)
        if start is not None and row["progress"] < 3 and today <= start <= soon:
            self.add(row, "due_cases", view)

    def _attention(self, row: dict[str, Any], today: dt.date) -> bool:
        """待核实 and 超期仍公示 entries of the last week go to the digest (True: listed there).

        Recent ones only: the digest is daily, and the monthly ledger export and report list
        every open one.
        """
        vanished, shown = row["vanished_on"], row["overdue_display_since"]
        if row["verify_reason"] and vanished is not None and today - vanished < RECENT:
            self.add(row, "to_confirm", _attention_view(row))
            return True
        if shown is not None and today - shown < RECENT:
            self.add(row, "overdue_display", _attention_view(row))
        return bool(row["verify_reason"])

    def _help_request(self, row: dict[str, Any], today: dt.date) -> None:
        """A company that asked for help on its page this week: the department calls it back."""
        at = row.get("company_answer_at")
        if row.get("company_answer") != "help" or at is None or row["closed_on"] is not None:
            return
        if (today - at.date()).days < RECENT.days:
            view = record_view(row)
            view["help_phone"] = row["help_phone"]
            self.add(row, "help_requests", view)


def _attention_view(row: dict[str, Any]) -> dict[str, Any]:
    view = record_view(row)
    view.update(
        vanished_on=row["vanished_on"],
        verify_text=VERIFY_REASONS.get(row["verify_reason"] or "", ""),
    )
    return view
