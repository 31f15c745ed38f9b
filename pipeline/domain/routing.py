"""Scope (修复对象) and routing of a record to the department that owns it.

A record is in scope when the entity is registered in the district (USCC area code)
and the authority is located there (its USCC area code, or it belongs to a configured
department). Routing is by authority USCC first, then by authority name; a record no
department claims goes to the bureau, flagged, so nobody's case falls through.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from pipeline.config import Department, DepartmentsConfig, JurisdictionSettings


def authority_key(name: str) -> str:
    """Compare authority names ignoring width, spaces and bracket style."""
    text = unicodedata.normalize("NFKC", name)
    return "".join(text.split())


@dataclass(frozen=True)
class Route:
    department_code: str
    note: str | None
    """Set when no department or more than one claimed the authority."""
    configured: bool
    """True when a department (not the fallback) claimed the authority."""


class Router:
    def __init__(self, departments: DepartmentsConfig, jurisdiction: JurisdictionSettings) -> None:
        self._bureau = departments.bureau
        self._by_uscc: dict[str, list[Department]] = {}
        self._by_name: dict[str, list[Department]] = {}
        for dep in departments.departments:
            for ref in dep.authorities:
                self._by_name.setdefault(authority_key(ref.name), []).append(dep)
                if ref.uscc:
                    self._by_uscc.setdefault(ref.uscc.upper(), []).append(dep)
        self._entity_areas = frozenset(jurisdiction.area_codes)
        self._authority_areas = frozenset(jurisdiction.authority_codes())
        self._cache: dict[tuple[str, str], Route] = {}

    def route(self, authority: str, authority_uscc: str | None) -> Route:
        key = (authority, authority_uscc or "")
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._route(authority, authority_uscc or "")
        return found

    def _route(self, authority: str, authority_uscc: str) -> Route:
        matches = self._by_uscc.get(authority_uscc) or self._by_name.get(
            authority_key(authority), []
        )
        codes = list(dict.fromkeys(d.code for d in matches))
        if not codes:
            note = (
                f"authority {authority!r} belongs to no configured department; routed to the bureau"
            )
            return Route(self._bureau.code, note, configured=False)
        if len(codes) > 1:
            note = f"authority {authority!r} matches departments {', '.join(codes)}; routed to {codes[0]}"
            return Route(codes[0], note, configured=True)
        return Route(codes[0], None, configured=True)

    def in_scope(self, uscc: str | None, authority_uscc: str | None, route: Route) -> bool:
        return self.scope_reason(uscc, authority_uscc, route) is None

    def scope_reason(
        self, uscc: str | None, authority_uscc: str | None, route: Route
    ) -> str | None:
        """Why a record is out of scope (`OUT_OF_SCOPE`), or None when it is in scope."""
        if not uscc:
            return "no_uscc"
        return self.area_scope_reason(uscc[2:8], authority_uscc, route)

    def area_scope_reason(self, area: str, authority_uscc: str | None, route: Route) -> str | None:
        """`scope_reason` of a record whose USCC has this area code (characters 3–8): what
        it depends on, so that many rows can share one answer."""
        if area not in self._entity_areas:
            return "entity_elsewhere"
        located = authority_uscc is not None and authority_uscc[2:8] in self._authority_areas
        return None if located or route.configured else "authority_elsewhere"


OUT_OF_SCOPE: dict[str, str] = {
    "natural_person": "自然人 (a natural person, not a market entity)",
    "no_uscc": "无统一社会信用代码 (no USCC: none, or another code)",
    "entity_elsewhere": "主体不在辖区 (registered outside the district)",
    "authority_elsewhere": "处罚机关不在辖区 (the authority is outside the district)",
}
"""Why a row is out of scope (`sync --json` `out_of_scope_reasons`)."""
