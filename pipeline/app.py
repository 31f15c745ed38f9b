"""The application context a command runs in: config, business clock, database.

Built once at the edge (`pipeline.cli`) and passed down; nothing below reads the
environment or the wall clock itself.

**What-if.** A command whose `--now` is later than the real clock, or one given `--dry-run`
where it offers it, runs in a *sandbox* (`discard_writes`): it computes and prints as usual,
but the database it sees is a throw-away copy (SQLite) or one transaction rolled back at the
end (PostgreSQL), no message leaves the machine (every channel is a fake one), and the files
it would write go to a temporary folder. `--commit` makes a future `--now` write for real
(test databases). A `--now` in the past replays on the database as it is, as today: use a
copy of the database for that.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pipeline.clock import Clock, SystemClock, parse_now
from pipeline.config import Config, load_config
from pipeline.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from pipeline.db.sandbox import Sandbox
    from pipeline.domain.calendar import WorkingCalendar

FUTURE = "future"
"""`App.what_if` when `--now` is later than the real clock."""
DRY_RUN = "dry-run"
"""`App.what_if` when the command was given `--dry-run`."""


@dataclass
class App:
    config: Config
    clock: Clock
    what_if: str | None = None
    """Why nothing this run writes is kept (FUTURE, DRY_RUN), or None: a real run."""
    _engine: Engine | None = field(default=None, repr=False)
    _sandbox: Sandbox | None = field(default=None, repr=False)
    _scratch: Path | None = field(default=None, repr=False)
    _migrated: bool = field(default=False, repr=False)

    @classmethod
    def load(cls, config_dir: str | None, now: str | None, commit: bool = False) -> App:
        config = load_config(config_dir)
        tz = config.settings.tz
        clock: Clock = parse_now(now, tz) if now else SystemClock(tz)
        app = cls(config, clock)
        if now and not commit and clock.now() > SystemClock(tz).now():
            app.discard_writes(FUTURE)
        return app

    def discard_writes(self, why: str) -> None:
        """Run this command as a what-if: compute and print, keep nothing (see the module)."""
        if self._sandbox is not None:
            raise RuntimeError("discard_writes after the database was opened")
        if self.what_if is None:
            self.what_if = why
            self._scratch = Path(tempfile.mkdtemp(prefix="credit-repair-whatif-files-"))
            paths = self.config.settings.paths.model_copy(
                update={
                    "var_dir": str(self._scratch / "var"),
                    "outbox_dir": str(self._scratch / "outbox"),
                    "reports_dir": str(self._scratch / "reports"),
                }
            )
            settings = self.config.settings.model_copy(update={"paths": paths})
            self.config = self.config.model_copy(update={"settings": settings})

    @cached_property
    def calendar(self) -> WorkingCalendar:
        """The working-day calendar of holidays.yaml (one per run: it caches every answer)."""
        from pipeline.domain.calendar import WorkingCalendar

        return WorkingCalendar(self.config.holidays)

    @property
    def engine(self) -> Engine:
        """The database, migrated to the current schema on first use (a what-if: its sandbox)."""
        from pipeline.db.migrate import current_revision, head_revision, upgrade

        if self._sandbox is not None:
            return cast("Engine", self._sandbox.engine)
        engine = self.unmigrated_engine()
        # once per process: Alembic's script check costs milliseconds (the answer page asks
        # for the engine on every request)
        if not self._migrated and current_revision(engine) != head_revision(engine):
            if self.what_if:
                raise UsageError(
                    "数据库尚未初始化或不是当前版本，模拟运行不会升级它：请先运行 credit-repair init / "
                    "the database is not at the current schema and a what-if never migrates it: "
                    "run `credit-repair init` first"
                )
            upgrade(engine)
        self._migrated = True
        if self.what_if:
            from pipeline.db.engine import make_engine
            from pipeline.db.sandbox import open_sandbox

            self._sandbox = open_sandbox(engine, make_engine)
            return cast("Engine", self._sandbox.engine)
        return engine

    def unmigrated_engine(self) -> Engine:
        """The real database as it is (for `health` and `init`, which look before they change)."""
        from pipeline.db.engine import make_engine

        if self._engine is None:
            database = self.config.settings.database
            self._engine = make_engine(database.url, busy_timeout=database.busy_timeout)
        return self._engine

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
        if self._engine is not None:
            self._engine.dispose()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


def print_json(obj: Any) -> None:
    """`--json` output: one object per line on stdout, Chinese kept readable."""
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
