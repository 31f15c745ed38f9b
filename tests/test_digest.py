"""A department's daily digest: every case counted, each section's list bounded."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from pipeline.config.notices import NoticesConfig
from pipeline.db.models import OutboxMessage, table_of
from pipeline.notices.digest import Section, listing_order
from tests.helpers import CliRunner, penalty, write_rows

LIMIT = "    max_cases: 100 "


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_a_section_keeps_what_one_sort_of_every_case_would(limit: int) -> None:
    rng = random.Random(limit)
    cases = [
        {
            "id": i,
            "green_channel": rng.random() < 0.2,
            "decision_no": f"罚〔2026〕{rng.randrange(9)}号",
        }
        for i in range(257)
    ]
    section = Section(limit)
    for case in cases:
        section.add(case)
    assert section.total == 257
    # ties (same green flag and number) keep their order of arrival, as a stable sort does
    assert section.listed() == sorted(cases, key=listing_order)[:limit]


def test_max_cases_belongs_to_the_digest_alone() -> None:
    with pytest.raises(ValueError, match=r"repair_notice\.max_cases: only department_digest"):
        NoticesConfig.model_validate({"kinds": {"repair_notice": {"max_cases": 5}}})
    with pytest.raises(ValueError, match="max_cases"):
        NoticesConfig.model_validate({"kinds": {"department_digest": {"max_cases": 0}}})


def _digest_payload(db_url: str) -> dict[str, Any]:
    c = table_of(OutboxMessage).c
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            query = select(c.payload).where(c.kind == "department_digest")
            payloads = list(conn.execute(query).scalars())
    finally:
        engine.dispose()
    assert len(payloads) == 1
    return dict(payloads[0])


def test_a_digest_lists_the_first_cases_and_counts_the_rest(
    cli: CliRunner, db_url: str, config_dir: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "cfg"
    shutil.copytree(config_dir, cfg)
    notices = (cfg / "notices.yaml").read_text(encoding="utf-8")
    assert LIMIT in notices
    (cfg / "notices.yaml").write_text(notices.replace(LIMIT, "    max_cases: 3 "), encoding="utf-8")
    small = CliRunner(cfg)
    rows = [penalty(n) for n in range(1, 9)]
    now = "2026-11-27T10:00"
    path = write_rows(tmp_path / "p.csv", rows)
    assert small("sync", "--file", str(path), "--force", now=now).code == 0
    assert small("eligibility", now=now).code == 0
    plan = small("notices", "plan", "--json", now=now).json()
    assert plan["by_kind"]["department_digest"] == 1

    payload = _digest_payload(db_url)
    text = payload["text"]
    assert "新增案件（8件" in text and "新增8件" in payload["subject"]
    listed = [f"双鸭山市测试{n}有限公司" for n in range(1, 9) if f"双鸭山市测试{n}有限公司" in text]
    assert len(listed) == 3
    assert "……另有5件未列出，完整名单见本部门信用修复子台账（附件3/附件4）。" in text
    assert "另有 5 件未列出" in payload["html"]
    assert payload["sms_params"]["count"] == "8"


def test_a_digest_within_its_limit_says_nothing_of_unlisted_cases(
    cli: CliRunner, db_url: str, tmp_path: Path
) -> None:
    now = "2026-11-27T10:00"
    path = write_rows(tmp_path / "p.csv", [penalty(n) for n in range(1, 4)])
    assert cli("sync", "--file", str(path), "--force", now=now).code == 0
    assert cli("eligibility", now=now).code == 0
    assert cli("notices", "plan", "--json", now=now).code == 0
    payload = _digest_payload(db_url)
    assert "新增案件（3件" in payload["text"] and "未列出" not in payload["text"]
    assert all(f"双鸭山市测试{n}有限公司" in payload["text"] for n in (1, 2, 3))
