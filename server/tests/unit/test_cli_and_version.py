"""The console script's config commands, and one version on every surface."""

from __future__ import annotations

import json
import tomllib
from importlib import metadata
from pathlib import Path

from nexy.cli import main
from nexy.version import version_info

ROOT = Path(__file__).resolve().parents[3]


def test_config_show_prints_effective_settings(capsys, monkeypatch):
    monkeypatch.setenv("NEXY_LIMITS__MAX_CONCURRENT_TURNS", "42")
    assert main(["config", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["limits"]["max_concurrent_turns"] == 42


def test_config_check_names_the_bad_key(capsys, monkeypatch, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tts:\n  sample_rate: 12345\n")
    assert main(["config", "check", "--config", str(bad)]) == 2
    assert "tts.sample_rate" in capsys.readouterr().err
    monkeypatch.delenv("NEXY_CONFIG", raising=False)
    assert main(["config", "check"]) == 0


def test_config_check_names_every_missing_provider_key(capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("NEXY_CONFIG", raising=False)
    monkeypatch.setenv("NEXY_LLM__PROVIDER", "gemini")
    monkeypatch.setenv("NEXY_LLM__FALLBACKS", '["openai", "local"]')
    for name in ("NEXY_LLM__GEMINI__API_KEY", "NEXY_LLM__OPENAI__API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert "llm.gemini.api_key (NEXY_LLM__GEMINI__API_KEY)" in err and "llm.provider" in err
    # OpenAI's own endpoint needs a key too; it is only a fallback here, and still reported.
    assert "llm.openai.api_key (NEXY_LLM__OPENAI__API_KEY)" in err and "llm.fallbacks" in err
    monkeypatch.setenv("NEXY_LLM__GEMINI__API_KEY", "gm-test-key")
    key_file = tmp_path / "openai.key"
    key_file.write_text("sk-test\n")
    monkeypatch.setenv("NEXY_LLM__OPENAI__API_KEY_FILE", str(key_file))
    assert main(["config", "check"]) == 0
    assert "configuration is valid" in capsys.readouterr().out


def test_config_check_lets_a_local_openai_compatible_server_go_without_a_key(monkeypatch):
    monkeypatch.delenv("NEXY_CONFIG", raising=False)
    monkeypatch.delenv("NEXY_LLM__OPENAI__API_KEY", raising=False)
    monkeypatch.setenv("NEXY_LLM__PROVIDER", "openai")
    monkeypatch.setenv("NEXY_LLM__OPENAI__BASE_URL", "http://127.0.0.1:11434/v1")  # Ollama
    assert main(["config", "check"]) == 0


def test_serve_rejects_bad_flags_before_starting(capsys):
    assert main(["serve", "--grpc-port", "99999"]) == 2
    assert "server.grpc_port" in capsys.readouterr().err


def test_version_has_one_source():
    declared = (ROOT / "VERSION").read_text().strip()
    info = version_info()
    assert info.version == declared == metadata.version("nexy-server")
    assert info.build == declared  # the reference's monitoring compares the two
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" in project["dynamic"]  # nothing else may hard-code it
