"""Test helpers: snapshot rows and files, an in-process CLI runner, and dispatch scenarios
(a copy of the shipped config pointed at loopback SMTP / SMS servers, notices loaded through
the CLI)."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from pipeline.cli import main
from pipeline.domain.uscc import make_uscc
from pipeline.sync.samplegen import PENALTY_HEADERS, entity_uscc, org_code

TAX = "国家税务总局双鸭山市宝山区税务局"
TAX_USCC = "112305060000000193"
EMERGENCY = "宝山区应急管理局"
EMERGENCY_USCC = "11230506000000027X"


def uscc(n: int, area: str = "230506") -> str:
    """A valid USCC for test entity number n."""
    return make_uscc("91" + area + org_code(f"{n:08d}"))


def penalty(n: int, **overrides: str) -> dict[str, str]:
    """A valid, in-scope penalty row (tax bureau, general fine) for entity n."""
    row = dict.fromkeys(PENALTY_HEADERS, "")
    row.update(
        CF_WSH=f"宝税罚〔2026〕{n}号",
        CF_XDR_MC=f"双鸭山市测试{n}有限公司",
        CF_XDR_LB="法人及非法人组织",
        CF_XDR_SHXYM=uscc(n),
        CF_WFXW="未按期办理纳税申报",
        CF_CFLB="罚款",
        CF_NR="罚款人民币2000元",
        CF_NR_FK="0.2",
        CF_JDRQ="2026-09-28",
        CF_CFJG=TAX,
        CF_CFJGDM=TAX_USCC,
    )
    row.update(overrides)
    return row


def write_rows(
    path: Path,
    rows: list[dict[str, str]],
    encoding: str = "utf-8-sig",
    headers: list[str] | None = None,
) -> Path:
    if headers is None:
        headers = list(dict.fromkeys(k for row in rows for k in row)) if rows else PENALTY_HEADERS
    with path.open("w", encoding=encoding, newline="") as out:
        writer = csv.DictWriter(out, fieldnames=headers, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@dataclass
class CliRunner:
    config_dir: Path

    def __call__(
        self, *args: str, now: str | None = "2026-11-27T09:00", commit: bool = True
    ) -> Result:
        """`credit-repair --config … --now NOW [--commit] ARGS`: a test's --now writes whatever
        the real clock says, unless `commit=False` (the what-if of a --now in the future)."""
        argv = ["--config", str(self.config_dir)]
        if now:
            argv += ["--now", now]
            if commit:
                argv.append("--commit")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([*argv, *args])
            except SystemExit as exc:  # argparse usage errors
                code = int(exc.code or 0)
        return Result(code, out.getvalue(), err.getvalue())


Build = Callable[[str, Path], None]
"""Fills an empty database (its URL), with a folder for any files it needs (also its working
folder); it must dispose of its engines when done."""
DbCopy = Callable[[str, Build], str]
"""The `db_copy` fixture: `db_copy(name, build)` is the URL of a fresh copy of the template
database `name`, which `build` fills the first time it is asked for (once per backend)."""


@contextlib.contextmanager
def cli_at(db_url: str, cwd: Path, config_dir: Path) -> Iterator[CliRunner]:
    """A `CliRunner` on `db_url` working in `cwd` (what the `cli` fixture sets up), for a
    `Build` that fills a template database through the CLI."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CREDIT_REPAIR_DATABASE_URL", db_url)
        patch.chdir(cwd)
        yield CliRunner(config_dir)


__all__ = [
    "CONTACT_HEADERS",
    "DISPATCH_NOW",
    "RULE_CASES",
    "UNLIMITED_EMAIL_RATE",
    "Build",
    "CliRunner",
    "DbCopy",
    "DispatchSetup",
    "boundary_days",
    "cli_at",
    "db_dump",
    "dispatch_config",
    "entity_uscc",
    "load_notices",
    "missing_tool",
    "outbox_states",
    "penalty",
    "uscc",
    "write_rows",
]


def missing_tool(reason: str) -> NoReturn:
    """Skip a test that needs an outside tool — but fail in CI, where .ci/run installs it."""
    if (
        os.environ.get("CI", "").lower() in ("true", "1", "yes")
        or os.environ.get("CREDIT_REPAIR_REQUIRE_TOOLS") == "1"
    ):
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------- dispatch scenarios

CONTACT_HEADERS = ["统一社会信用代码", "联系人", "联系电话", "电子邮箱"]
DISPATCH_NOW = "2026-11-27T09:00"
UNLIMITED_EMAIL_RATE = "  rate_per_minute: 1000000\n"  # the business clock stands still under --now


@dataclass
class DispatchSetup:
    cli: CliRunner
    cfg: Path
    tmp: Path


def dispatch_config(
    tmp: Path, config_dir: Path, smtp_port: int, sms_url: str, extra_email: str = ""
) -> Path:
    """A copy of `config_dir` in tmp/cfg sending e-mail to `smtp_port` and SMS to the webhook
    at `sms_url`, files under tmp/var, and no department digests."""
    cfg = tmp / "cfg"
    shutil.copytree(config_dir, cfg)
    settings = (cfg / "settings.yaml").read_text(encoding="utf-8")
    settings = settings.replace(
        "logging:",
        f"""email:
  host: 127.0.0.1
  port: {smtp_port}
  ssl: false
  starttls: false
  sender: notice@example.gov.cn
  timeout: 2
{extra_email}
sms:
  provider: webhook
  url: {sms_url}
  secret: test-secret
  timeout: 0.5
  templates:
    repair_notice: {{id: T1}}
    eligibility_reminder: {{id: T2}}
    follow_up: {{id: T3}}
    list_notice: {{id: T4}}
    department_digest: {{id: T5}}

paths:
  var_dir: {tmp}/var
  outbox_dir: {tmp}/var/outbox
  reports_dir: {tmp}/var/reports

logging:""",
        1,
    ).replace(
        "paths:\n  var_dir: var\n  outbox_dir: var/outbox\n  reports_dir: var/reports\n", "", 1
    )
    (cfg / "settings.yaml").write_text(settings, encoding="utf-8")
    notices = (cfg / "notices.yaml").read_text(encoding="utf-8")
    (cfg / "notices.yaml").write_text(
        notices.replace(
            "  department_digest:      # 每个部门联系人每天一封：新增与到期案件\n    enabled: true",
            "  department_digest:\n    enabled: false",
        ),
        encoding="utf-8",
    )
    return cfg


def load_notices(
    s: DispatchSetup, n: int, email: bool = True, phone: bool = False, name: str = "王经理"
) -> None:
    """n penalties with contacts through sync, contacts import, eligibility and notices plan."""
    now = DISPATCH_NOW
    rows = [penalty(i) for i in range(1, n + 1)]
    contacts = [
        {
            "统一社会信用代码": uscc(i),
            "联系人": name,
            "联系电话": f"139{i:08d}" if phone else "",
            "电子邮箱": f"c{i}@example.com" if email else "",
        }
        for i in range(1, n + 1)
    ]
    assert (
        s.cli("sync", "--file", str(write_rows(s.tmp / "p.csv", rows)), "--force", now=now).code
        == 0
    )
    assert (
        s.cli(
            "contacts",
            "import",
            str(write_rows(s.tmp / "c.csv", contacts, headers=CONTACT_HEADERS)),
            now=now,
        ).code
        == 0
    )
    assert s.cli("eligibility", now=now).code == 0
    assert s.cli("notices", "plan", now=now).code == 0


def outbox_states(s: DispatchSetup, now: str = DISPATCH_NOW) -> dict[str, int]:
    """How many outbox rows are in each state, read through `credit-repair outbox`."""
    states: dict[str, int] = {}
    for row in s.cli("outbox", "--json", now=now).json_lines():
        states[row["state"]] = states.get(row["state"], 0) + 1
    return states


# --------------------------------------------------------------------------- eligibility cases

D = dt.date
DAY = dt.timedelta(days=1)

# Every rule set and severity with its periods, as the rules engine must compute them.
# (case id, decision date, snapshot severity, rule set, severity, min_end, max_end)
RULE_CASES = [
    (
        "527-general",
        D(2022, 5, 9),
        "一般",
        "ndrc-2019-527",
        "general",
        D(2022, 8, 9),
        D(2023, 5, 9),
    ),
    (
        "527-minor-as-general",
        D(2022, 5, 9),
        "轻微",
        "ndrc-2019-527",
        "general",
        D(2022, 8, 9),
        D(2023, 5, 9),
    ),
    (
        "527-serious",
        D(2022, 5, 9),
        "严重",
        "ndrc-2019-527",
        "serious",
        D(2022, 11, 9),
        D(2025, 5, 9),
    ),
    (
        "527-special",
        D(2022, 5, 9),
        "特定严重",
        "ndrc-2019-527",
        "special_serious",
        None,
        D(2025, 5, 9),
    ),
    (
        "527-last-day",
        D(2023, 4, 30),
        "一般",
        "ndrc-2019-527",
        "general",
        D(2023, 7, 30),
        D(2024, 4, 30),
    ),
    (
        "58-first-day",
        D(2023, 5, 1),
        "一般",
        "ndrc-2023-58",
        "general",
        D(2023, 8, 1),
        D(2026, 5, 1),
    ),
    (
        "58-general-month-end",
        D(2024, 1, 31),
        "一般",
        "ndrc-2023-58",
        "general",
        D(2024, 4, 30),
        D(2027, 1, 31),
    ),
    (
        "58-minor-as-general",
        D(2024, 1, 31),
        "轻微",
        "ndrc-2023-58",
        "general",
        D(2024, 4, 30),
        D(2027, 1, 31),
    ),
    (
        "58-serious-leap-day",
        D(2024, 2, 29),
        "严重",
        "ndrc-2023-58",
        "serious",
        D(2024, 5, 29),
        D(2027, 2, 28),
    ),
    (
        "58-special",
        D(2024, 2, 29),
        "特定严重",
        "ndrc-2023-58",
        "special_serious",
        None,
        D(2027, 2, 28),
    ),
    (
        "58-last-day",
        D(2026, 3, 31),
        "一般",
        "ndrc-2023-58",
        "general",
        D(2026, 6, 30),
        D(2029, 3, 31),
    ),
    (
        "36-first-day",
        D(2026, 4, 1),
        "一般",
        "ndrc-2025-36",
        "general",
        D(2026, 7, 1),
        D(2027, 4, 1),
    ),
    (
        "36-general",
        D(2026, 9, 28),
        "一般",
        "ndrc-2025-36",
        "general",
        D(2026, 12, 28),
        D(2027, 9, 28),
    ),
    (
        "36-serious",
        D(2026, 9, 28),
        "严重",
        "ndrc-2025-36",
        "serious",
        D(2027, 9, 28),
        D(2029, 9, 28),
    ),
    (
        "36-special",
        D(2026, 9, 28),
        "特定严重",
        "ndrc-2025-36",
        "special_serious",
        None,
        D(2029, 9, 28),
    ),
]


def boundary_days(
    decision: dt.date, min_end: dt.date | None, max_end: dt.date
) -> list[tuple[dt.date, str]]:
    """The day before, of and after repairable_from and removal_on, with the status due."""
    removal = max_end + DAY
    before = "non_repairable" if min_end is None else "repairable"
    days = [(removal - DAY, before), (removal, "expired"), (removal + DAY, "expired")]
    if min_end is not None:
        start = min_end + DAY
        days += [(start - DAY, "in_min_period"), (start, "repairable"), (start + DAY, "repairable")]
    else:
        days += [(decision, "non_repairable")]
    return [(day, status) for day, status in days if day >= decision]


# --------------------------------------------------------------------------- database dumps


def db_dump(url: str) -> list[str]:
    """Every row of every table as text, in a fixed order: equal dumps, equal databases.

    SQLite: `iterdump` of the file (schema and rows). PostgreSQL: each table (by name) as
    its rows' text form, sorted.
    """
    from sqlalchemy import inspect, text

    from pipeline.db.engine import make_engine

    if url.startswith("sqlite:///"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return list(conn.iterdump())
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            lines: list[str] = []
            for table in sorted(inspect(conn).get_table_names()):
                lines.append(f"-- {table}")
                lines += conn.execute(text(f'SELECT t::text FROM "{table}" t ORDER BY 1')).scalars()
            return lines
    finally:
        engine.dispose()
