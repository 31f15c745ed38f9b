"""Load the config folder into one typed `Config`, validated once: YAML files in one folder, validated with pydantic.

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
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from pipeline.config.base import validate
from pipeline.config.holidays import HolidaysConfig
from pipeline.config.notices import NoticesConfig
from pipeline.config.rules import RulesConfig
from pipeline.config.schedule import ScheduleConfig
from pipeline.config.settings import Department, DepartmentsConfig, Settings
from pipeline.errors import ConfigError

ENV_PREFIX = "CREDIT_REPAIR_"
ENV_CONFIG_DIR = "CREDIT_REPAIR_CONFIG"


class Config(BaseModel):
    """Everything loaded from one config folder, every file validated."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    directory: Path
    settings: Settings
    departments: DepartmentsConfig
    rules: RulesConfig = RulesConfig()
    holidays: HolidaysConfig = HolidaysConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    notices: NoticesConfig = NoticesConfig()
    env_origins: dict[str, str] = {}
    """Dotted keys set by environment variables → the variable, for error messages."""

    def department(self, code: str) -> Department | None:
        return next((d for d in self.departments.departments if d.code == code), None)


# --------------------------------------------------------------------------- loading

# Each file and the model of its content, in the order they are validated (so the first
# error reported is the same whatever else is wrong).
FILES: dict[str, type[BaseModel]] = {
    "settings.yaml": Settings,
    "departments.yaml": DepartmentsConfig,
    "rules.yaml": RulesConfig,
    "holidays.yaml": HolidaysConfig,
    "notices.yaml": NoticesConfig,
    "schedule.yaml": ScheduleConfig,
}
FIELDS = {
    "settings.yaml": "settings",
    "departments.yaml": "departments",
    "rules.yaml": "rules",
    "holidays.yaml": "holidays",
    "notices.yaml": "notices",
    "schedule.yaml": "schedule",
}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_BOOL = "tag:yaml.org,2002:bool"


class _Loader(yaml.SafeLoader):
    """YAML as operators mean it: only true/false are booleans (YAML 1.2).

    YAML 1.1 also reads yes/no/on/off as booleans, so `code: NO` or `name: off` would
    arrive as False where a name is meant; here they stay the text written. A boolean
    key still takes them (the models accept yes/no/on/off as booleans).
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse_yaml(text: str) -> Any:
    """One config file's text (true/false the only booleans: see `_Loader`)."""
    return yaml.load(text, Loader=_Loader)


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
    raw = {name: _read_yaml(folder / name, env) for name in FILES}
    origins = _apply_env_overrides(raw, env)
    sections = {
        FIELDS[name]: validate(model, raw[name], name, origins) for name, model in FILES.items()
    }
    return Config(directory=folder, env_origins=origins, **sections)


def _read_yaml(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
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
    """The file whose top-level keys include `section` (`CREDIT_REPAIR_<SECTION>__...`)."""
    return next((file for file, model in FILES.items() if section in model.model_fields), None)


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
        parsed = parse_yaml(value)
    except yaml.YAMLError:
        return value
    return parsed if isinstance(parsed, (bool, int, float)) else value
