"""Progress of long work (sync of a large snapshot, recompute, report, dispatch).

On a terminal: a bar (or, with no total known, a running count) on stderr, redrawn at most
ten times a second. Off a terminal (a container, cron, a pipe): a `progress` log line every
`every` seconds instead, so an unattended run still shows it is alive.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

BAR = 24


class Progress:
    def __init__(
        self,
        label: str,
        unit: str = "items",
        stream: TextIO | None = None,
        total: int | None = None,
        every: float = 10.0,
    ) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream or sys.stderr
        self.total = total
        self.every = every
        self.terminal = self.stream.isatty()
        self.started = self.drawn = self.logged = time.monotonic()
        self.shown = False
        self.done = 0

    @property
    def enabled(self) -> bool:
        return self.terminal

    def update(self, done: int) -> None:
        """`done` so far (cumulative)."""
        self.done = done
        now = time.monotonic()
        if self.terminal:
            if now - self.drawn >= 0.1 or (self.total and done >= self.total):
                self.drawn = now
                self.stream.write("\r" + self.line(now))
                self.stream.flush()
                self.shown = True
        elif now - self.logged >= self.every:
            self.logged = now
            from pipeline.logs import get_logger

            get_logger("progress").info(
                "progress", task=self.label, done=done, total=self.total, unit=self.unit
            )

    def step(self, n: int = 1) -> None:
        self.update(self.done + n)

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.started, 1e-6)
        rate = f"{self.done / elapsed:,.0f}/s"
        if self.total:
            share = min(self.done / self.total, 1.0)
            filled = int(share * BAR)
            bar = "█" * filled + "·" * (BAR - filled)
            return f"{self.label} [{bar}] {share:4.0%} {self.done:,}/{self.total:,} {self.unit} ({rate})"
        return f"{self.label}: {self.done:,} {self.unit} ({rate})"

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.shown:
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()
