"""The provider examples in config/ load, pass `config check`, and keep keys out of the file.

docs/OPERATIONS.md ("Recipes") tells readers to start from these files; this keeps them true as
the settings model changes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from nexy.cli import main
from nexy.config_loading import load_settings
from nexy.providers.prerequisites import provider_problems

CONFIG = Path(__file__).resolve().parents[3] / "config"

# file -> (provider, the endpoint it points at, the variable that must hold its key or None)
EXAMPLES = {
    "gemini.example.yaml": ("gemini", "", "NEXY_LLM__GEMINI__API_KEY"),
    "openai.example.yaml": ("openai", "https://api.openai.com/v1", "NEXY_LLM__OPENAI__API_KEY"),
    "ollama.example.yaml": ("openai", "http://127.0.0.1:11434/v1", None),
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No NEXY_ variable of the machine running the tests leaks into `config check`."""
    for variable in [name for name in os.environ if name.startswith("NEXY_")]:
        monkeypatch.delenv(variable)
    return monkeypatch


def _keys_named(data: Any, suffix: str) -> list[str]:
    """Every key in a YAML tree whose name ends with ``suffix``."""
    if not isinstance(data, dict):
        return []
    found = [key for key in data if str(key).endswith(suffix)]
    for value in data.values():
        found += _keys_named(value, suffix)
    return found


def test_every_example_in_config_is_covered_here():
    present = {path.name for path in CONFIG.glob("*.example.yaml")} - {"nexy.example.yaml"}
    assert present == set(EXAMPLES)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_loads_and_names_its_provider(name):
    provider, endpoint, _ = EXAMPLES[name]
    settings = load_settings(CONFIG / name, env={})
    assert settings.llm.provider == provider
    assert settings.llm.fallbacks == ["local"]  # the embedded model answers when the cloud fails
    section = settings.llm.gemini if provider == "gemini" else settings.llm.openai
    assert section.base_url == endpoint


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_holds_no_key(name):
    document = yaml.safe_load((CONFIG / name).read_text(encoding="utf-8"))
    assert _keys_named(document, "api_key") == []


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_is_ready_once_its_key_is_in_the_environment(name):
    _, _, variable = EXAMPLES[name]
    env = {variable: "dummy-key-for-the-check"} if variable else {}
    assert provider_problems(load_settings(CONFIG / name, env=env)) == []


@pytest.mark.parametrize("name", [n for n, (_, _, var) in EXAMPLES.items() if var])
def test_config_check_names_the_missing_variable(name, clean_env, capsys):
    _, _, variable = EXAMPLES[name]
    assert main(["config", "check", "--config", str(CONFIG / name)]) == 2
    assert variable in capsys.readouterr().err
    clean_env.setenv(variable, "dummy-key-for-the-check")
    assert main(["config", "check", "--config", str(CONFIG / name)]) == 0
    assert "configuration is valid" in capsys.readouterr().out


def test_ollama_example_needs_no_key(clean_env, capsys):
    assert main(["config", "check", "--config", str(CONFIG / "ollama.example.yaml")]) == 0
    assert "configuration is valid" in capsys.readouterr().out
