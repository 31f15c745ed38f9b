"""Shared helpers for the benchmarks in bench/.

- `generate_penalties`: a GB18030 penalty export from `pipeline.sync.samplegen`, optionally
  with a share of rows changed and a share dropped (the "next day's export").
- `postgres`: a throwaway PostgreSQL server (tests/pg.py: a private cluster, or the
  server named by CREDIT_REPAIR_TEST_PG_URL), stopped on exit.
- `run_child`: run one measurement in a fresh Python process and return its JSON
  report with the child's own peak RSS (from wait4), so each figure is per measurement.
- `baseline_load`: the reference every benchmark compares to: csv.reader over the file
  and a plain DB-API executemany of every column as text into an empty table.
- `emit`: print one JSON line per measurement.

Benchmarks run from the repository root or via `make bench`; `REPO` is put on sys.path
by the benchmark script before it imports this module.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.sync.samplegen import PENALTY_HEADERS, penalties, write_csv
from pipeline.sync.snapshot import _SQLITE_CACHE_KIB

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "out"
"""Generated files and databases (git-ignored)."""
ENCODING = "gb18030"


# --------------------------------------------------------------------------- data


def _edited(
    rows: Iterable[dict[str, str]], change_every: int, drop_every: int
) -> Iterator[dict[str, str]]:
    """Every `change_every`-th row gets another fine amount; every `drop_every`-th is dropped.

    Row 0 (the real record of the domain notes) is always kept unchanged. Offsets are
    chosen so the two sets never overlap (a row is changed or dropped, not both).
    """
    for i, row in enumerate(rows):
        if drop_every and i % drop_every == drop_every - 1:
            continue
        if change_every and i % change_every == change_every // 2:
            # never equal to a generated amount (those are 0.05 … 20)
            row = {**row, "CF_NR_FK": f"{100 + i % 97}.5"}
        yield row


def generate_penalties(
    path: Path,
    rows: int,
    *,
    seed: int = 7,
    changed_share: float = 0.0,
    dropped_share: float = 0.0,
    encoding: str = ENCODING,
    reuse: bool = True,
) -> Path:
    """Write (or reuse) a penalty export of `rows` generated rows, minus the dropped ones.

    Streamed from the generator: memory stays flat whatever `rows` is.
    """
    if reuse and path.exists() and path.stat().st_size > 0:
        return path
    change_every = round(1 / changed_share) if changed_share else 0
    drop_every = round(1 / dropped_share) if dropped_share else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    write_csv(
        tmp,
        PENALTY_HEADERS,
        _edited(penalties(rows, seed), change_every, drop_every),
        encoding,
    )
    tmp.replace(path)
    return path


def count_data_rows(path: Path, encoding: str = ENCODING) -> int:
    with path.open(encoding=encoding, newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


# --------------------------------------------------------------------------- PostgreSQL


@contextlib.contextmanager
def postgres() -> Iterator[Any]:
    """A `tests.pg.PgServer` (create_database → (name, url)); stopped afterwards."""
    from tests.pg import server_from_environment

    server = server_from_environment()
    try:
        yield server
    finally:
        server.stop()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


# --------------------------------------------------------------------------- child processes


@dataclass(frozen=True)
class ChildResult:
    report: dict[str, Any]
    """The last JSON line the child printed on stdout."""
    peak_rss_mb: float
    """ru_maxrss of that child alone (wait4), in MiB."""


def run_child(argv: Sequence[str], env: dict[str, str] | None = None) -> ChildResult:
    """Run `python argv…` in a fresh process; stderr passes through, stdout is the report."""
    cmd = [sys.executable, *argv]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, cwd=REPO, env=env or dict(os.environ)
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)} printed no JSON report:\n{out}")
    return ChildResult(json.loads(lines[-1]), usage.ru_maxrss / 1024)  # KiB on Linux


def report(**values: Any) -> None:
    """A child's report to its parent: one JSON line on stdout."""
    print(json.dumps(values, default=str), flush=True)


def timed(step: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = step()
    return time.perf_counter() - start, value


# --------------------------------------------------------------------------- baseline

BASELINE_DESCRIPTION = (
    "baseline = csv.reader over the same {encoding} file + DB-API executemany of every "
    "column as text into an empty table ({batch} rows per batch, one transaction, "
    "no validation), on the same database, in its own process"
)


def baseline_load(url: str, path: Path, batch_size: int, encoding: str = ENCODING) -> int:
    """Read the CSV and bulk-insert every row as text; returns the rows inserted.

    A plain, fair implementation: the driver's executemany, no ORM, no conversion.
    """
    with path.open(encoding=encoding, newline="") as f:
        reader = csv.reader(f)
        headers = next(reader)
        columns = ", ".join(f"c{i} TEXT" for i in range(len(headers)))
        if url.startswith("sqlite"):
            return _baseline_sqlite(
                url.removeprefix("sqlite:///"), reader, columns, len(headers), batch_size
            )
        return _baseline_postgres(url, reader, columns, len(headers), batch_size)


def _batches(reader: Iterator[list[str]], size: int) -> Iterator[list[list[str]]]:
    batch: list[list[str]] = []
    for row in reader:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _baseline_sqlite(
    path: str, reader: Iterator[list[str]], columns: str, width: int, batch_size: int
) -> int:
    conn = sqlite3.connect(path)
    try:
        # the application's own connection settings (pipeline.db.engine)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        # the same page cache the sync gives itself for its bulk transaction: fair
        conn.execute(f"PRAGMA cache_size = {_SQLITE_CACHE_KIB['main']}")
        conn.execute(f"CREATE TABLE baseline (id INTEGER PRIMARY KEY, {columns})")
        insert = f"INSERT INTO baseline VALUES (NULL, {', '.join('?' * width)})"
        count = 0
        with conn:
            for batch in _batches(reader, batch_size):
                conn.executemany(insert, batch)
                count += len(batch)
        return count
    finally:
        conn.close()


def _baseline_postgres(
    url: str, reader: Iterator[list[str]], columns: str, width: int, batch_size: int
) -> int:
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE baseline (id SERIAL PRIMARY KEY, {columns})")
        insert = f"INSERT INTO baseline VALUES (DEFAULT, {', '.join(['%s'] * width)})"
        count = 0
        for batch in _batches(reader, batch_size):
            cur.executemany(insert, batch)
            count += len(batch)
        conn.commit()
        return count


# --------------------------------------------------------------------------- output


def emit(
    name: str,
    rows: int,
    seconds: float,
    baseline_seconds: float,
    peak_rss_mb: float,
    db: str,
    **extra: Any,
) -> dict[str, Any]:
    """Print one measurement as a JSON line (the keys every benchmark shares, then extras)."""
    line: dict[str, Any] = {
        "name": name,
        "rows": rows,
        "seconds": round(seconds, 3),
        "baseline_seconds": round(baseline_seconds, 3),
        "ratio": round(seconds / baseline_seconds, 2) if baseline_seconds else None,
        "peak_rss_mb": round(peak_rss_mb, 1),
        "db": db,
        "rows_per_s": round(rows / seconds) if seconds else None,
        **extra,
    }
    print(json.dumps(line, ensure_ascii=False), flush=True)
    return line


def note(message: str) -> None:
    """Human-readable progress and context: stderr, so stdout stays JSON lines only."""
    print(message, file=sys.stderr, flush=True)


class SmtpCounter:
    """An aiosmtpd handler that only counts connections (EHLOs) and messages."""

    def __init__(self) -> None:
        self.connections = 0
        self.messages = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        return "250 OK"


def start_smtp_sink() -> tuple[Any, SmtpCounter, int]:
    """A counting SMTP server on a free loopback port: (controller, counter, port)."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    counter = SmtpCounter()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, counter, port
