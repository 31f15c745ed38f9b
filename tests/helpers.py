"""Test helpers: snapshot rows and files, and an in-process CLI runner."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
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
        CF_WSH=f"宝税罚〔2026〕{n}号", CF_XDR_MC=f"双鸭山市测试{n}有限公司", CF_XDR_LB="法人及非法人组织",
        CF_XDR_SHXYM=uscc(n), CF_WFXW="未按期办理纳税申报", CF_CFLB="罚款", CF_NR="罚款人民币2000元",
        CF_NR_FK="0.2", CF_JDRQ="2026-09-28", CF_CFJG=TAX, CF_CFJGDM=TAX_USCC,
    )  # fmt: skip
    row.update(overrides)
    return row


def write_rows(path: Path, rows: list[dict[str, str]], encoding: str = "utf-8-sig",
               headers: list[str] | None = None) -> Path:  # fmt: skip
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

    def __call__(self, *args: str, now: str | None = "2026-11-27T09:00") -> Result:
        argv = ["--config", str(self.config_dir)]
        if now:
            argv += ["--now", now]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([*argv, *args])
            except SystemExit as exc:  # argparse usage errors
                code = int(exc.code or 0)
        return Result(code, out.getvalue(), err.getvalue())


__all__ = ["CliRunner", "entity_uscc", "missing_tool", "penalty", "uscc", "write_rows"]


def missing_tool(reason: str) -> NoReturn:
    """Skip a test that needs an outside tool — but fail in CI, where .ci/run installs it."""
    if os.environ.get("CI", "").lower() in ("true", "1", "yes") or os.environ.get("CREDIT_REPAIR_REQUIRE_TOOLS") == "1":
        pytest.fail(f"required in CI: {reason}", pytrace=False)
    pytest.skip(reason)
