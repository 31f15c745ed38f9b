"""The base of every config section: strict models and error messages naming file and key.

Section modules (settings, rules, holidays, schedule, notices) import only this module,
never `Config`: the loader (`pipeline.config.load`) imports them, not the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.errors import ConfigError

M = TypeVar("M", bound="BaseModel")


class Strict(BaseModel):
    """Unknown keys are errors: a typo in the YAML must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def key_path(loc: tuple[int | str, ...]) -> str:
    """('departments', 1, 'name') -> 'departments[1].name'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def validate(model: type[M], data: Mapping[str, Any], file: str, origins: Mapping[str, str]) -> M:
    """`model` from one file's data; a ConfigError names the file (or variable) and key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe(exc, file, origins)) from None


def describe(exc: ValidationError, file: str, origins: Mapping[str, str]) -> str:
    parts = []
    for err in exc.errors():
        key = key_path(err["loc"])
        where = f"environment {origins[key]}" if key in origins else file
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (a typo?)"
        elif err["type"] == "string_type" and isinstance(err.get("input"), bool):
            message = (
                f"YAML reads {str(err['input']).lower()} as a boolean where text is "
                f'expected: quote it ("{str(err["input"]).lower()}")'
            )
        parts.append(f"{where}: {key}: {message}")
    return "; ".join(parts)
