"""The one shape every result shares: typed fields, and `as_json()` for the outside.

A stage (`pipeline.stages`) returns a dataclass: commands read its attributes and print
``as_json()`` with ``--json``; jobs return it and the runner records ``as_json()`` as the
run's ``counts``. The results of the library (`SyncResult`, `PlanResult`,
`DispatchResult`, `EscalationResult`, `CheckReport`, ...) satisfy `Result` as they are;
where a job records less than the command prints, it returns `Counts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Result(Protocol):
    def as_json(self) -> dict[str, Any]:
        """The result as one JSON object (plain dicts, lists, strings, numbers)."""
        ...


@dataclass(frozen=True)
class Counts:
    """What a scheduled run records of a stage's result (``job_runs.counts``, ``job.end``)."""

    values: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return dict(self.values)
