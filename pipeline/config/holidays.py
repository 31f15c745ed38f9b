"""holidays.yaml: working-day overrides per year (the State Council's schedule)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field, field_validator

from pipeline.config.base import Strict


class YearOverride(Strict):
    """One year of holidays.yaml: the State Council's schedule for that year."""

    holidays: list[dt.date] = Field(default_factory=list)
    """Statutory holidays (including weekend days inside a holiday block)."""
    workdays: list[dt.date] = Field(default_factory=list)
    """Make-up working days (调休), usually Saturdays or Sundays."""
    complete: bool = False
    """True: the file fully describes the year (no need for chinesecalendar to know it)."""


class HolidaysConfig(Strict):
    """holidays.yaml: ``years: {2027: {holidays: [...], workdays: [...], complete: true}}``."""

    years: dict[int, YearOverride] = Field(default_factory=dict)

    @field_validator("years", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        # `years:` with every block commented out loads as None
        return {} if value is None else value

    @field_validator("years")
    @classmethod
    def _dates_in_their_year(cls, years: dict[int, YearOverride]) -> dict[int, YearOverride]:
        # a field validator, so a ConfigError names the key `years`
        for year, block in years.items():
            for day in (*block.holidays, *block.workdays):
                if day.year != year:
                    raise ValueError(f"{year}: {day} is not in {year}")
            both = sorted(set(block.holidays) & set(block.workdays))
            if both:
                raise ValueError(f"{year}: {both[0]} is both a holiday and a workday")
        return years
