"""The application context a command runs in: config, business clock, database.

Built once at the edge (`pipeline.cli`) and passed down; nothing below reads the
environment or the wall clock itself.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy import Engine

from pipeline.clock import Clock, SystemClock, parse_now
from pipeline.config import Config, load_config
from pipeline.db.engine import make_engine
from pipeline.db.migrate import current_revision, head_revision, upgrade
from pipeline.domain.calendar import WorkingCalendar


@dataclass
class App:
    config: Config
    clock: Clock
    _engine: Engine | None = field(default=None, repr=False)

    @classmethod
    def load(cls, config_dir: str | None, now: str | None) -> App:
        config = load_config(config_dir)
        tz = config.settings.tz
        clock: Clock = parse_now(now, tz) if now else SystemClock(tz)
        return cls(config, clock)

    @cached_property
    def calendar(self) -> WorkingCalendar:
        """The working-day calendar of holidays.yaml (one per run: it caches every answer)."""
        return WorkingCalendar(self.config.holidays)

    @property
    def engine(self) -> Engine:
        """The database, migrated to the current schema on first use."""
        engine = self.unmigrated_engine()
        if current_revision(engine) != head_revision(engine):
            upgrade(engine)
        return engine

    def unmigrated_engine(self) -> Engine:
        """The database as it is (for `health`, which must only look, never change it)."""
        if self._engine is None:
            database = self.config.settings.database
            self._engine = make_engine(database.url, busy_timeout=database.busy_timeout)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def print_json(obj: Any) -> None:
    """`--json` output: one object per line on stdout, Chinese kept readable."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
