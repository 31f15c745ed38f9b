"""The benchmarks that write the tables themselves still run against today's schema.

`make bench` runs every script on small inputs; most load their data through the
application, but these two insert rows straight into the tables (the report's seeded
ledger, the province day's handled backlog), so a new NOT NULL column breaks them first
(as `records.decision_key` once did). A tiny run of each, on SQLite, keeps them honest.
Figures are not checked here: benchmarks print them, tests do not time anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("script", "args", "first"),
    [
        ("bench_report.py", ["--rows", "200", "--db", "sqlite"], "monthly_report"),
        ("bench_province_day.py", ["--sizes", "200", "--db", "sqlite"], "province_day_sync"),
    ],
)
def test_a_benchmark_that_writes_tables_runs_on_a_tiny_input(
    script: str, args: list[str], first: str
) -> None:
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines and lines[0]["name"] == first
    assert all(line["seconds"] >= 0 and line["db"] == "sqlite" for line in lines)
