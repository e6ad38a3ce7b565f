"""Loading settings: defaults, then a YAML file, then ``NEXY_`` environment overrides.

Env names nest with ``__``: ``NEXY_LLM__PROVIDER=scripted`` sets ``llm.provider``. Unknown keys,
wrong types and out-of-range values are errors that name the key and its variable. Secrets are
masked wherever settings are printed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_origin

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from nexy.config import Settings

ENV_PREFIX = "NEXY_"
ENV_CONFIG_PATH = "NEXY_CONFIG"
MASK = "**********"


class ConfigError(ValueError):
    """Invalid configuration; the message names every offending key."""


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from defaults < YAML file < env < explicit overrides (CLI flags)."""
    env = os.environ if env is None else env
    path = path or env.get(ENV_CONFIG_PATH) or None
    data: dict[str, Any] = _read_yaml(Path(path)) if path else {}
    for dotted, value in _env_overrides(env).items():
        _set_dotted(data, dotted, value)
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, value)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return dict(loaded)


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_CONFIG_PATH:
            continue
        dotted = ".".join(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        found[dotted] = _parse_env_value(dotted, raw)
    return found


def _parse_env_value(dotted: str, raw: str) -> Any:
    # Lists and mappings arrive as JSON (NEXY_LLM__FALLBACKS='["openai","local"]'); a string
    # field keeps its text even when it looks like JSON (NEXY_LLM__SCRIPTED__REPLY='{"text":…}').
    if not _is_structured(dotted):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw  # validation then names the key


def _is_structured(dotted: str) -> bool:
    model: type[BaseModel] = Settings
    for part in dotted.split("."):
        field = model.model_fields.get(part)
        if field is None:
            return False  # unknown key: validation reports it
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
            continue
        return get_origin(annotation) in (list, dict, tuple)
    return True  # a whole section given as a JSON object


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{dotted}: {part} is not a section")
        node = child
    node[leaf] = value


def env_name(dotted: str) -> str:
    """The variable that sets a key: ``llm.gemini.api_key`` → ``NEXY_LLM__GEMINI__API_KEY``."""
    return ENV_PREFIX + "__".join(part.upper() for part in dotted.split("."))


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        lines.append(f"{key} ({env_name(key)}): {err['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def masked_dump(settings: Settings) -> dict[str, Any]:
    """The effective settings as plain data with every secret replaced by a mask."""
    dumped: dict[str, Any] = _mask(settings.model_dump(mode="python"))
    return dumped


def _mask(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, dict):
        return {key: _mask(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value
