"""Configuration: validation names the file and key; ${VAR}, *_file secrets, env overrides."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.app import App
from pipeline.config import load_config
from pipeline.errors import ConfigError
from tests.helpers import CliRunner


@pytest.fixture
def cfg(tmp_path: Path, config_dir: Path) -> Path:
    folder = tmp_path / "cfg"
    shutil.copytree(config_dir, folder)
    return folder


def _edit(folder: Path, file: str, old: str, new: str) -> None:
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_shipped_config_is_valid_and_describes_the_seed_district(config_dir: Path) -> None:
    config = load_config(config_dir, env={})
    assert config.settings.timezone == "Asia/Shanghai"
    assert config.settings.jurisdiction.area_codes == ["230506"]
    assert config.departments.bureau.name == "宝山区营商环境局"
    names = {d.name for d in config.departments.departments}
    assert {"国家税务总局双鸭山市宝山区税务局", "宝山区应急管理局"} <= names
    App.load(str(config_dir), None)  # every other file validates too


def test_a_wrong_type_names_the_file_and_the_key_path(cfg: Path) -> None:
    _edit(cfg, "settings.yaml", "max_vanish_share: 0.20", "max_vanish_share: lots")
    with pytest.raises(ConfigError, match=r"settings\.yaml: sync\.max_vanish_share"):
        load_config(cfg, env={})


def test_an_unknown_key_is_an_error_not_ignored(cfg: Path) -> None:
    _edit(cfg, "departments.yaml", "    bureau: true", "    bureau: true\n    buerau: false")
    with pytest.raises(
        ConfigError, match=r"departments\.yaml: departments\[0\]\.buerau: unknown key"
    ):
        load_config(cfg, env={})


def test_a_bad_later_file_stops_every_command_at_start(cfg: Path) -> None:
    _edit(cfg, "notices.yaml", "  max_attempts: 5", "  max_attempts: -1")
    result = CliRunner(cfg)("sync", "--json")
    assert result.code == 2 and "notices.yaml: outbox.max_attempts" in result.err


def test_invalid_yaml_names_the_file(cfg: Path) -> None:
    (cfg / "rules.yaml").write_text("rule_sets: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rules\.yaml"):
        App.load(str(cfg), None)


def test_variables_are_interpolated_with_defaults_and_a_missing_one_is_named(cfg: Path) -> None:
    _edit(
        cfg,
        "settings.yaml",
        "url: sqlite:///var/credit-repair.db",
        "url: ${DB_URL:-sqlite:///fallback.db}",
    )
    assert load_config(cfg, env={}).settings.database.url == "sqlite:///fallback.db"
    assert (
        load_config(cfg, env={"DB_URL": "postgresql://x/y"}).settings.database.url
        == "postgresql://x/y"
    )
    _edit(cfg, "settings.yaml", "${DB_URL:-sqlite:///fallback.db}", "${DB_URL}")
    with pytest.raises(
        ConfigError, match=r"settings\.yaml: database\.url: environment variable DB_URL is not set"
    ):
        load_config(cfg, env={})


def test_a_file_key_reads_the_secret_from_that_file(cfg: Path, tmp_path: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cr3t\n", encoding="utf-8")
    _edit(
        cfg,
        "settings.yaml",
        "logging:",
        f"email:\n  host: smtp.example.org\n  password_file: {secret}\n\nlogging:",
    )
    assert load_config(cfg, env={}).settings.email.password == "s3cr3t"
    secret.unlink()
    with pytest.raises(ConfigError, match=r"email\.password_file: cannot read secret file"):
        load_config(cfg, env={})


def test_environment_variables_override_any_setting(cfg: Path) -> None:
    env = {
        "CREDIT_REPAIR_SYNC__MAX_VANISH_SHARE": "0.5",
        "CREDIT_REPAIR_DATABASE_URL": "sqlite:///other.db",
        "CREDIT_REPAIR_EMAIL__HOST": "mail.example.org",
        "CREDIT_REPAIR_EMAIL__SSL": "false",
    }
    settings = load_config(cfg, env=env).settings
    assert settings.sync.max_vanish_share == 0.5
    assert settings.database.url == "sqlite:///other.db"
    assert (settings.email.host, settings.email.ssl) == ("mail.example.org", False)


def test_a_bad_environment_override_names_the_variable(cfg: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"environment CREDIT_REPAIR_SYNC__MAX_VANISH_SHARE: sync\.max_vanish_share",
    ):
        load_config(cfg, env={"CREDIT_REPAIR_SYNC__MAX_VANISH_SHARE": "2"})


def test_the_config_folder_comes_from_the_environment(
    cfg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDIT_REPAIR_CONFIG", str(cfg))
    assert load_config().directory == cfg
    monkeypatch.setenv("CREDIT_REPAIR_CONFIG", str(cfg / "nope"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config()


def test_check_config_reports_calendar_coverage(cli: CliRunner) -> None:
    result = cli("check-config", "--json", now="2026-11-27")
    assert result.code == 0, result.err
    body = result.json()
    assert body["ok"] is True
    assert any("2026-12-31" in w and "2027" in w for w in body["warnings"])


def test_check_config_fails_30_days_before_the_working_day_data_runs_out(cli: CliRunner) -> None:
    result = cli("check-config", "--json", now="2026-12-02")
    assert result.code == 2
    body = result.json()
    assert body["ok"] is False
    assert any("2026-12-31" in e and "29 days" in e and "2027" in e for e in body["errors"])


def test_a_secret_file_can_be_named_by_an_environment_variable(cfg: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n", encoding="utf-8")
    env = {
        "CREDIT_REPAIR_EMAIL__PASSWORD_FILE": str(secret),
        "CREDIT_REPAIR_DATABASE_URL_FILE": str(secret),
    }
    settings = load_config(cfg, env=env).settings
    assert (settings.email.password, settings.database.url) == ("from-a-file", "from-a-file")
    with pytest.raises(
        ConfigError, match="environment CREDIT_REPAIR_EMAIL__PASSWORD_FILE: cannot read secret file"
    ):
        load_config(cfg, env={"CREDIT_REPAIR_EMAIL__PASSWORD_FILE": str(tmp_path / "missing")})


def test_check_config_warns_about_example_contacts_while_nothing_is_sent(cli: CliRunner) -> None:
    body = cli("check-config", "--json", now="2026-11-01").json()
    assert any(
        "departments[0].contact.phone: '13800000001' is an example" in w for w in body["warnings"]
    )
    assert any(
        "departments[0].contact.email: 'credit-bureau@example.org' is an example" in w
        for w in body["warnings"]
    )
    assert body["ok"] is True


def test_check_config_fails_on_example_contacts_once_a_channel_is_configured(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDIT_REPAIR_EMAIL__HOST", "smtp.example.gov.cn")
    result = cli("check-config", "--json", now="2026-11-01")
    assert result.code == 2
    assert any(
        "departments[1].head.email: 'tax-head@example.org' is an example" in e
        for e in result.json()["errors"]
    )


def _check(cli: CliRunner) -> tuple[int, list[str]]:
    result = cli("check-config", "--json", now="2026-11-01")
    return result.code, result.json()["errors"]


def test_check_config_needs_an_sms_template_for_every_kind_sent_by_sms(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDIT_REPAIR_SMS__PROVIDER", "webhook")
    monkeypatch.setenv("CREDIT_REPAIR_SMS__URL", "https://sms.example.gov.cn/send")
    code, errors = _check(cli)
    assert code == 2
    missing = [e for e in errors if "sms.templates." in e]
    assert {e.split("sms.templates.")[1].split(":")[0] for e in missing} == {
        "repair_notice",
        "eligibility_reminder",
        "follow_up",
        "list_notice",
    }
    assert all(e.startswith("settings.yaml: ") and "notices.yaml kinds." in e for e in missing)


def test_check_config_catches_sources_that_cannot_work(
    cfg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreadable = tmp_path / "locked.csv"
    unreadable.write_text("x\n", encoding="utf-8")
    unreadable.chmod(0)
    good = tmp_path / "good.csv"
    good.write_text("x\n", encoding="utf-8")
    _edit(
        cfg,
        "settings.yaml",
        "logging:",
        f"""sources:
  - {{name: missing, kind: file, path: {tmp_path}/nope.csv}}
  - {{name: folder, kind: file, path: {tmp_path}}}
  - {{name: locked, kind: file, path: {unreadable}}}
  - {{name: ftp, kind: http, url: "ftp://data.example.gov.cn/x.csv"}}
  - name: reversed
    path: {good}
    field_map: {{CF_CFJG: 处罚单位}}
  - name: unknown
    path: {good}
    field_map: {{处罚单位: CF_NOPE}}
  - name: right
    path: {good}
    field_map: {{处罚单位: CF_CFJG, 机关: authority}}

logging:""",
    )
    monkeypatch.setenv("CREDIT_REPAIR_DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite")
    monkeypatch.chdir(tmp_path)
    code, errors = _check(CliRunner(cfg))
    assert code == 2
    text = "\n".join(errors)
    assert f"sources.missing.path: {tmp_path}/nope.csv does not exist" in text
    assert "sources.folder.path:" in text and "is not a file" in text
    import os

    if os.geteuid() != 0:  # root reads any file
        assert "sources.locked.path:" in text and "cannot be read" in text
    assert "sources.ftp.url: 'ftp://data.example.gov.cn/x.csv' is not an http(s) URL" in text
    assert "sources.reversed.field_map: 'CF_CFJG': '处罚单位': written the wrong way round" in text
    assert (
        "sources.unknown.field_map: '处罚单位': 'CF_NOPE': 'CF_NOPE' is not a penalties field"
        in text
    )
    assert "sources.right" not in text
    assert all(e.startswith("settings.yaml: sources.") for e in errors if "sources." in e)


def test_yes_no_on_off_stay_the_names_written_where_text_is_expected(cfg: Path) -> None:
    """YAML 1.1 reads NO, yes, on, off as booleans: `code: NO` arrived as False."""
    _edit(cfg, "departments.yaml", "  - code: YSHJ", "  - code: NO")
    _edit(
        cfg, "settings.yaml", "keywords: [医药, 医疗器械, 防疫]", "keywords: [医药, on, off, yes]"
    )
    config = load_config(cfg, env={})
    assert config.departments.departments[0].code == "NO"
    assert config.settings.green_channel.keywords == ["医药", "on", "off", "yes"]


def test_yes_no_on_off_are_still_booleans_where_a_boolean_is_expected(cfg: Path) -> None:
    _edit(cfg, "settings.yaml", "sync:", "ledger:\n  overdue_display: off\n\nsync:")
    assert load_config(cfg, env={}).settings.ledger.overdue_display is False


def test_true_or_false_where_text_is_expected_says_quote_it(cfg: Path) -> None:
    _edit(cfg, "departments.yaml", "  - code: YSHJ", "  - code: true")
    with pytest.raises(ConfigError) as caught:
        load_config(cfg, env={})
    message = str(caught.value)
    assert "departments.yaml: departments[0].code" in message
    assert 'quote it ("true")' in message


def test_check_config_warns_when_answer_links_are_on_and_an_sms_template_lacks_the_code(
    cfg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _edit(
        cfg,
        "settings.yaml",
        "web:\n",
        "sms:\n  provider: webhook\n  url: https://sms.example.gov.cn/send\n  templates:\n"
        "    repair_notice: {id: T1, params: [name, no, code]}\n"
        "    eligibility_reminder: {id: T2, params: [name, date]}\n"
        "    follow_up: {id: T3, params: [name, code]}\n"
        "    list_notice: {id: T4, params: [name, code]}\n"
        "web:\n",
    )
    cli = CliRunner(cfg)
    warnings = cli("check-config", "--json", now="2026-11-01").json()["warnings"]
    assert not [w for w in warnings if "不含 code" in w]  # links off: nothing to carry

    monkeypatch.setenv("CREDIT_REPAIR_WEB__PUBLIC_BASE_URL", "https://xyxf.example.gov.cn")
    warnings = cli("check-config", "--json", now="2026-11-01").json()["warnings"]
    lacking = [w for w in warnings if "不含 code" in w]
    assert len(lacking) == 1 and "sms.templates.eligibility_reminder.params" in lacking[0]
