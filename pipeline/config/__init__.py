"""Configuration: YAML files in one folder, validated with pydantic.

Files and the sections they hold:

- ``settings.yaml``: timezone, database, jurisdiction, sources, sync, notices, email,
  sms, outbox, logging, paths
- ``departments.yaml``: departments (the bureau and each penalising department)
- ``rules.yaml``: rule sets, severity classification, eligibility flags
- ``holidays.yaml``: working-day overrides per year
- ``schedule.yaml``: the scheduled jobs

Three layers, later wins: the YAML, ``${VAR}`` / ``${VAR:-default}`` interpolation
inside YAML strings, then environment overrides ``CREDIT_REPAIR_<SECTION>__<KEY>``
(nested keys joined by ``__``; ``CREDIT_REPAIR_DATABASE_URL`` is short for
``CREDIT_REPAIR_DATABASE__URL``). Any key ``X_file`` is a secret read from that file
into ``X``, so secrets never sit in the YAML. Every error names the file (or the
environment variable) and the key path, and stops the program at start.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.errors import ConfigError

M = TypeVar("M", bound="BaseModel")
ENV_PREFIX = "CREDIT_REPAIR_"
ENV_CONFIG_DIR = "CREDIT_REPAIR_CONFIG"


class Strict(BaseModel):
    """Unknown keys are errors: a typo in the YAML must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(Strict):
    url: str = "sqlite:///var/credit-repair.db"
    """SQLAlchemy URL. SQLite paths are relative to the working directory."""


class JurisdictionSettings(Strict):
    name: str = "宝山区"
    area_codes: list[str] = Field(default_factory=lambda: ["230506"])
    """GB/T 2260 codes of the district: USCC characters 3–8 of in-scope entities."""
    authority_area_codes: list[str] | None = None
    """Area codes of authorities located in the district; default: `area_codes`."""

    @field_validator("area_codes", "authority_area_codes")
    @classmethod
    def _six_digits(cls, codes: list[str] | None) -> list[str] | None:
        for code in codes or []:
            if not re.fullmatch(r"\d{6}", code):
                raise ValueError(f"{code!r} is not a 6-digit GB/T 2260 area code")
        return codes

    def authority_codes(self) -> list[str]:
        return self.authority_area_codes or self.area_codes


class SourceSettings(Strict):
    name: str
    kind: Literal["file", "http"] = "file"
    records: Literal["penalties", "severe-list"] = "penalties"
    """What the snapshot holds."""
    path: str | None = None
    url: str | None = None
    format: Literal["auto", "csv", "xlsx", "json"] = "auto"
    encoding: str = "auto"
    """`auto` detects UTF-8 (with or without BOM) or GB18030."""
    field_map: dict[str, str] = Field(default_factory=dict)
    """Extra header → field-code mappings, e.g. {"处罚单位": "CF_CFJG"}."""
    auth_header: str | None = None
    """A full header line value, e.g. 'Bearer xyz' (use auth_header_file for secrets)."""
    auth_header_name: str = "Authorization"
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0
    page_param: str | None = None
    """For paged JSON: the query parameter that carries the page number."""
    page_size_param: str | None = None
    page_size: int = 500
    records_key: str | None = None
    """For JSON objects: the key holding the list of records (e.g. "data")."""
    enabled: bool = True


class SyncSettings(Strict):
    max_vanish_share: float = Field(0.20, ge=0, le=1)
    """Refuse a snapshot that would vanish more than this share of current records."""
    batch_size: int = Field(5000, ge=100)


class Person(Strict):
    name: str = ""
    phone: str = ""
    email: str = ""


class AuthorityRef(Strict):
    name: str
    uscc: str = ""


class Department(Strict):
    code: str
    name: str
    bureau: bool = False
    """The district bureau (区营商环境局): receives unrouted records and escalations."""
    market_regulation: bool = False
    """Penalties of this department follow the market-regulation rule set (45号令)."""
    authorities: list[AuthorityRef] = Field(default_factory=list)
    contact: Person = Field(default_factory=Person)
    head: Person = Field(default_factory=Person)


class DepartmentsConfig(Strict):
    departments: list[Department]

    @field_validator("departments")
    @classmethod
    def _one_bureau(cls, deps: list[Department]) -> list[Department]:
        codes = [d.code for d in deps]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"duplicate department code(s): {', '.join(dupes)}")
        if sum(d.bureau for d in deps) != 1:
            raise ValueError("exactly one department must have `bureau: true`")
        return deps

    @property
    def bureau(self) -> Department:
        return next(d for d in self.departments if d.bureau)


class GreenChannelSettings(Strict):
    """绿色通道 / 容缺受理: records listed first and eligible for "承诺即修复"."""

    industries: list[str] = Field(default_factory=list)
    """Matched against the record's industry (行业) column."""
    keywords: list[str] = Field(default_factory=list)
    """Matched in the entity name, violation type and facts."""
    entities: list[str] = Field(default_factory=list)
    """USCCs of entities always in the green channel."""
    follow_up_days: int = Field(30, ge=1)
    """Default follow-up for a commitment (承诺) whose documents are to follow."""


class EmailSettings(Strict):
    """SMTP through yagmail. Active when `host` is set."""

    host: str | None = None
    port: int = 465
    ssl: bool = True
    """Implicit TLS (SMTPS, usually port 465)."""
    starttls: bool = False
    """Upgrade a plain connection (usually port 587); only with ssl: false."""
    user: str | None = None
    password: str | None = None
    """Use password_file or CREDIT_REPAIR_EMAIL__PASSWORD; never write it here."""
    sender: str | None = None
    """From address; default `user`."""
    sender_name: str = "宝山区营商环境局"
    timeout: float = 30.0
    verify_certificate: bool = True
    rate_per_minute: int = Field(120, ge=1)


class SmsTemplate(Strict):
    """A provider-approved template: its id and how our parameters map onto it."""

    id: str
    """Aliyun TemplateCode (SMS_123456789) or Tencent TemplateId; webhook: any label."""
    params: list[str] = Field(default_factory=list)
    """Parameter names (Aliyun: named; Tencent: this order is the positional order)."""


class SmsSettings(Strict):
    """An SMS gateway. Active when `provider` is set."""

    provider: Literal["webhook", "aliyun", "tencent"] | None = None
    url: str | None = None
    """Endpoint; default the provider's public endpoint."""
    secret: str | None = None
    """webhook: HMAC-SHA256 key for the X-Signature header."""
    access_key_id: str | None = None
    access_key_secret: str | None = None
    secret_id: str | None = None
    secret_key: str | None = None
    sdk_app_id: str | None = None
    region: str = "ap-guangzhou"
    sign_name: str = "宝山区营商环境局"
    templates: dict[str, SmsTemplate] = Field(default_factory=dict)
    timeout: float = 10.0
    quiet_hours: tuple[str, str] = ("21:00", "08:00")
    """No SMS from the first time until the second (Asia/Shanghai or the configured zone)."""
    rate_per_minute: int = Field(60, ge=1)
    daily_cap_per_number: int = Field(5, ge=1)

    @field_validator("quiet_hours")
    @classmethod
    def _hours(cls, value: tuple[str, str]) -> tuple[str, str]:
        for text in value:
            if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", text):
                raise ValueError(f"{text!r} is not a time of day HH:MM")
        return value


class PathSettings(Strict):
    var_dir: str = "var"
    outbox_dir: str = "var/outbox"
    reports_dir: str = "var/reports"
    templates_dir: str | None = None
    """A folder whose templates override the bundled ones, file by file."""


class LoggingSettings(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Settings(Strict):
    """settings.yaml."""

    timezone: str = "Asia/Shanghai"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    jurisdiction: JurisdictionSettings = Field(default_factory=JurisdictionSettings)
    sources: list[SourceSettings] = Field(default_factory=list)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    green_channel: GreenChannelSettings = Field(default_factory=GreenChannelSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    contacts_path: str | None = None
    """A contacts file (CSV/XLSX) the daily sync job imports; with sample data: sample/contacts.csv."""
    sample_data: str | None = "sample"
    """Folder of bundled sample data used by the `sync` job when no source is configured."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("sources")
    @classmethod
    def _sources(cls, sources: list[SourceSettings]) -> list[SourceSettings]:
        names = [s.name for s in sources]
        for s in sources:
            if names.count(s.name) > 1:
                raise ValueError(f"duplicate source name {s.name!r}")
            if s.kind == "file" and not s.path:
                raise ValueError(f"source {s.name!r}: kind file needs `path`")
            if s.kind == "http" and not s.url:
                raise ValueError(f"source {s.name!r}: kind http needs `url`")
        return sources

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def source(self, name: str) -> SourceSettings:
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources) or "none configured"
        raise ConfigError(f"settings.yaml: sources: no source named {name!r} (known: {known})")


class Config(BaseModel):
    """Everything loaded from one config folder."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    directory: Path
    settings: Settings
    departments: DepartmentsConfig
    raw: dict[str, dict[str, Any]]
    """The interpolated YAML of every file, for stages that validate their own section."""
    env_origins: dict[str, str] = {}
    """Dotted keys set by environment variables → the variable, for error messages."""

    def department(self, code: str) -> Department | None:
        return next((d for d in self.departments.departments if d.code == code), None)


# --------------------------------------------------------------------------- loading

_FILES: dict[str, list[str]] = {
    "settings.yaml": list(Settings.model_fields),
    "departments.yaml": ["departments"],
}
OPTIONAL_FILES = ("rules.yaml", "holidays.yaml", "schedule.yaml", "notices.yaml")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def config_dir(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get(ENV_CONFIG_DIR) or "config")


def load_config(
    directory: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Load and validate the config folder; raise ConfigError naming file and key."""
    env = os.environ if env is None else env
    folder = config_dir(str(directory) if directory else None)
    if not folder.is_dir():
        raise ConfigError(
            f"config folder {folder} does not exist (set --config or {ENV_CONFIG_DIR})"
        )
    raw = {name: _read_yaml(folder / name, env) for name in (*_FILES, *OPTIONAL_FILES)}
    origins = _apply_env_overrides(raw, env)
    settings = _validate(Settings, raw["settings.yaml"], "settings.yaml", origins)
    departments = _validate(DepartmentsConfig, raw["departments.yaml"], "departments.yaml", origins)
    return Config(
        directory=folder, settings=settings, departments=departments, raw=raw, env_origins=origins
    )


def _read_yaml(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: an impossible date literal
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    resolved = _resolve(data, env, path.name, ())
    assert isinstance(resolved, dict)
    return resolved


def _resolve(node: Any, env: Mapping[str, str], file: str, path: tuple[str, ...]) -> Any:
    """Interpolate ${VAR} and read X_file secrets, recursively."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            key = str(key)
            value = _resolve(value, env, file, (*path, key))
            if key.endswith("_file") and isinstance(value, str) and key != "_file":
                out[key[:-5]] = _read_secret(value, file, (*path, key))
            else:
                out[key] = value
        return out
    if isinstance(node, list):
        return [_resolve(v, env, file, (*path, str(i))) for i, v in enumerate(node)]
    if isinstance(node, str):
        return _interpolate(node, env, file, path)
    return node


def _interpolate(text: str, env: Mapping[str, str], file: str, path: tuple[str, ...]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{file}: {'.'.join(path)}: environment variable {name} is not set "
            f"(give it, or write ${{{name}:-default}})"
        )

    return _VAR.sub(replace, text)


def _read_secret(filename: str, file: str, path: tuple[str, ...]) -> str:
    try:
        return Path(filename).read_text(encoding="utf-8").strip()
    except OSError as exc:
        where = f"{file}: {'.'.join(path)}" if path else file
        raise ConfigError(f"{where}: cannot read secret file {filename}: {exc.strerror}") from None


def _apply_env_overrides(raw: dict[str, dict[str, Any]], env: Mapping[str, str]) -> dict[str, str]:
    """Apply CREDIT_REPAIR_<SECTION>__<KEY> variables; return {dotted key: variable name}."""
    origins: dict[str, str] = {}
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_DIR:
            continue
        rest = name[len(ENV_PREFIX) :]
        short = {"DATABASE_URL": ["database", "url"], "DATABASE_URL_FILE": ["database", "url_file"]}
        keys = short.get(rest) or rest.lower().split("__")
        file = _file_of(keys[0])
        if file is None or not all(keys):
            continue  # not a config override (e.g. CREDIT_REPAIR_TEST_PG_URL)
        if keys[-1].endswith("_file"):  # CREDIT_REPAIR_EMAIL__PASSWORD_FILE: a secret from a file
            keys[-1] = keys[-1].removesuffix("_file")
            parsed: Any = _read_secret(value, f"environment {name}", ())
        else:
            parsed = _scalar(value)
        _set_nested(raw[file], keys, parsed, name)
        origins[".".join(keys)] = name
    return origins


def _file_of(section: str) -> str | None:
    for file, sections in _sections().items():
        if section in sections:
            return file
    return None


def _sections() -> dict[str, list[str]]:
    """Top-level keys of every file, so `CREDIT_REPAIR_<SECTION>__...` finds its file."""
    # Imported here: those modules import this one.
    from pipeline.domain.calendar import HolidaysConfig
    from pipeline.config.notices import NoticesConfig
    from pipeline.domain.rules import RulesConfig
    from pipeline.scheduler.schedule import ScheduleConfig

    return {**_FILES, "rules.yaml": list(RulesConfig.model_fields), "holidays.yaml": list(HolidaysConfig.model_fields),
            "schedule.yaml": list(ScheduleConfig.model_fields), "notices.yaml": list(NoticesConfig.model_fields)}  # fmt: skip


def _set_nested(target: dict[str, Any], keys: list[str], value: Any, var: str) -> None:
    for key in keys[:-1]:
        child = target.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"environment {var}: {key} is not a mapping and cannot take sub-keys")
        target = child
    target[keys[-1]] = value


def _scalar(value: str) -> Any:
    """Environment values are YAML scalars: `true`, `5`, `0.3` become bool/int/float."""
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return parsed if isinstance(parsed, (bool, int, float)) else value


def _validate(model: type[M], data: dict[str, Any], file: str, origins: dict[str, str]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file, origins)) from None


def _describe(exc: ValidationError, file: str, origins: dict[str, str]) -> str:
    parts = []
    for err in exc.errors():
        key = key_path(err["loc"])
        where = f"environment {origins[key]}" if key in origins else file
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (a typo?)"
        parts.append(f"{where}: {key}: {message}")
    return "; ".join(parts)


def key_path(loc: tuple[int | str, ...]) -> str:
    """('departments', 1, 'name') -> 'departments[1].name'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate_section(config: Config, file: str, model: type[M], section: str | None = None) -> M:
    """Validate one file's section with a later stage's model; errors name file and key."""
    data = config.raw.get(file, {})
    if section is not None:
        data = data.get(section) or {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        prefix = f"{section}." if section else ""
        msgs = []
        for e in exc.errors():
            key = prefix + key_path(e["loc"])
            where = f"environment {config.env_origins[key]}" if key in config.env_origins else file
            message = (
                "unknown key (a typo?)"
                if e["type"] == "extra_forbidden"
                else e["msg"].removeprefix("Value error, ")
            )
            msgs.append(f"{where}: {key}: {message}")
        raise ConfigError("; ".join(msgs)) from None
