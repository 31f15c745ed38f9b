"""rules.yaml: the shipped file, validation, and severity classification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.config import load_config
from pipeline.config.rules import RulesConfig
from pipeline.domain.rules import classify
from pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def config_with_rules(folder: Path, rules: str | None) -> Path:
    (folder / "settings.yaml").write_text("{}\n", encoding="utf-8")
    (folder / "departments.yaml").write_text(
        "departments:\n  - {code: yshj, name: 区营商环境局, bureau: true}\n", encoding="utf-8"
    )
    if rules is not None:
        (folder / "rules.yaml").write_text(rules, encoding="utf-8")
    return folder


def shipped() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "config" / "rules.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_shipped_rules_yaml_equals_the_built_in_defaults(tmp_path: Path) -> None:
    text = (REPO / "config" / "rules.yaml").read_text(encoding="utf-8")
    loaded = load_config(config_with_rules(tmp_path, text), env={}).rules
    assert loaded.model_dump() == RulesConfig().model_dump()


def test_without_rules_yaml_the_defaults_apply(tmp_path: Path) -> None:
    loaded = load_config(config_with_rules(tmp_path, None), env={}).rules
    assert loaded.model_dump() == RulesConfig().model_dump()


def test_the_default_rule_sets_follow_domain_md() -> None:
    sets = RulesConfig().rule_sets
    assert set(sets) == {"ndrc-2019-527", "ndrc-2023-58", "ndrc-2025-36"}
    p527, p58, p36 = (sets[k].periods for k in ("ndrc-2019-527", "ndrc-2023-58", "ndrc-2025-36"))
    assert (p527.general.min_months, p527.general.max_months) == (3, 12)
    assert (p527.serious.min_months, p527.serious.max_months) == (6, 36)
    assert (p58.general.min_months, p58.general.max_months) == (3, 36)
    assert (p58.serious.min_months, p58.serious.max_months) == (3, 36)
    assert p36.minor is not None and (p36.minor.min_months, p36.minor.max_months) == (0, 3)
    assert (p36.serious.min_months, p36.serious.max_months) == (12, 36)
    for p in (p527, p58, p36):
        assert (p.special_serious.min_months, p.special_serious.max_months) == (None, 36)


def test_an_unknown_key_is_a_config_error_naming_file_and_key(tmp_path: Path) -> None:
    folder = config_with_rules(tmp_path, "publish_minr: true\n")
    with pytest.raises(ConfigError, match=r"rules\.yaml: publish_minr"):
        load_config(folder, env={})


def test_overlapping_rule_sets_are_refused() -> None:
    data = shipped()
    data["rule_sets"]["ndrc-2023-58"]["effective_from"] = "2023-04-01"
    with pytest.raises(ValueError, match="ndrc-2019-527 and ndrc-2023-58 overlap"):
        RulesConfig.model_validate(data)


def test_a_minimum_above_the_maximum_is_refused(tmp_path: Path) -> None:
    text = (
        (REPO / "config" / "rules.yaml")
        .read_text(encoding="utf-8")
        .replace(
            "general:         {min_months: 3, max_months: 12}",
            "general: {min_months: 13, max_months: 12}",
        )
    )
    with pytest.raises(
        ConfigError, match=r"rules\.yaml: rule_sets\.ndrc-2019-527\.periods\.general"
    ):
        load_config(config_with_rules(tmp_path, text), env={})


def test_a_rule_set_without_minor_needs_minor_as() -> None:
    data = shipped()
    data["rule_sets"]["ndrc-2023-58"]["minor_as"] = None
    with pytest.raises(ValueError, match=r"periods\.minor or minor_as"):
        RulesConfig.model_validate(data)


# --------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("text", "severity"),
    [
        ("轻微", "minor"),
        ("一般", "general"),
        ("严重", "serious"),
        ("特定严重", "special_serious"),
        ("一般失信", "general"),
        ("严重失信", "serious"),
        ("特定严重失信", "special_serious"),
        (" 严重 ", "serious"),
        ("Minor", "minor"),
        ("GENERAL", "general"),
        ("special serious", "special_serious"),
        ("special_serious", "special_serious"),
        ("Special-Serious", "special_serious"),
    ],
)
def test_snapshot_severity_text_wins_over_the_rules(text: str, severity: str) -> None:
    assert classify(text, ("吊销营业执照",), "") == (severity, "snapshot")


def test_unknown_snapshot_severity_text_raises_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="很严重"):
        classify("很严重", ("罚款",), "")


def test_blank_snapshot_severity_falls_back_to_the_rules() -> None:
    assert classify("  ", ("罚款",), "") == ("general", "rule:default")


@pytest.mark.parametrize(
    ("types", "content", "expected"),
    [
        (("警告",), "", ("minor", "rule:only-warning")),
        (("警告", "通报批评"), "", ("minor", "rule:only-warning")),
        (("通报批评",), "", ("minor", "rule:only-warning")),
        (("警告", "罚款"), "", ("general", "rule:default")),
        (("罚款",), "罚款2000元", ("general", "rule:default")),
        (("吊销许可证件",), "", ("serious", "rule:revocation-or-closure")),
        (("罚款", "责令停产停业"), "", ("serious", "rule:revocation-or-closure")),
        (("限制从业",), "", ("serious", "rule:revocation-or-closure")),
        (("降低资质等级",), "", ("serious", "rule:revocation-or-closure")),
        (("罚款",), "罚款5万元，责令关闭", ("serious", "rule:revocation-or-closure")),
        ((), "", ("general", "rule:default")),
        ((" 警告 ", ""), "", ("minor", "rule:only-warning")),
    ],
)
def test_without_a_snapshot_severity_the_first_matching_rule_decides(
    types: tuple[str, ...], content: str, expected: tuple[str, str]
) -> None:
    assert classify(None, types, content) == expected


def test_classification_rules_are_configurable() -> None:
    rules = RulesConfig.model_validate(
        {
            "severity_rules": [
                {
                    "name": "big-fine",
                    "severity": "serious",
                    "any_keywords": ["万元"],
                    "fields": ["penalty_content"],
                },
            ],
            "default_severity": "minor",
        }
    )
    assert classify(None, ("罚款",), "罚款10万元", rules) == ("serious", "rule:big-fine")
    assert classify(None, ("吊销许可证件",), "", rules) == ("minor", "rule:default")


def test_a_severity_rule_needs_exactly_one_test() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        RulesConfig.model_validate({"severity_rules": [{"name": "x", "severity": "minor"}]})
