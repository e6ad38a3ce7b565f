"""Settings: defaults, YAML, env nesting, validation errors that name the key, masking."""

from __future__ import annotations

import pytest

from nexy.config import Settings
from nexy.config_loading import ConfigError, load_settings, masked_dump


def test_defaults_are_valid():
    settings = load_settings(env={})
    assert settings.server.grpc_port == 50051 and settings.server.http_port == 8080
    assert settings.tts.sample_rate == 48000 and settings.tts.chunk_ms == 100


def test_yaml_then_env_then_overrides(tmp_path):
    path = tmp_path / "nexy.yaml"
    path.write_text("server:\n  grpc_port: 6000\nlimits:\n  max_concurrent_turns: 5\n")
    env = {"NEXY_LIMITS__MAX_CONCURRENT_TURNS": "200", "NEXY_LLM__SCRIPTED__MODE": "echo"}
    settings = load_settings(path, env=env, overrides={"server.http_port": 9000})
    assert settings.server.grpc_port == 6000
    assert settings.limits.max_concurrent_turns == 200
    assert settings.llm.scripted.mode == "echo"
    assert settings.server.http_port == 9000


def test_config_path_from_env(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tts:\n  chunk_ms: 40\n")
    assert load_settings(env={"NEXY_CONFIG": str(path)}).tts.chunk_ms == 40


def test_json_looking_string_stays_a_string():
    reply = '{"text": "Hi", "command": "open_app"}'
    settings = load_settings(env={"NEXY_LLM__SCRIPTED__REPLY": reply})
    assert settings.llm.scripted.reply == reply


def test_section_as_json_object():
    settings = load_settings(env={"NEXY_TTS__SCRIPTED": '{"first_chunk_ms": 5}'})
    assert settings.tts.scripted.first_chunk_ms == 5


def test_env_json_values():
    settings = load_settings(env={"NEXY_TTS__ESPEAK__VOICES": '{"de": "de"}'})
    assert settings.tts.espeak.voices == {"de": "de"}


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"NEXY_LIMITS__MAX_CONCURRENT_TURNS": "many"}, ["limits.max_concurrent_turns"]),
        ({"NEXY_LIMITS__MAX_CONCURRENT_TURNS": "0"}, ["limits.max_concurrent_turns"]),
        ({"NEXY_SERVER__GRPC_PORT": "70000"}, ["server.grpc_port", "NEXY_SERVER__GRPC_PORT"]),
        ({"NEXY_LLM__PROVIDER": "nonsense"}, ["llm.provider"]),
        ({"NEXY_TTS__SAMPLE_RATE": "12345"}, ["tts.sample_rate"]),
        ({"NEXY_TTS__VOLUME": "3"}, ["tts.volume"]),
        ({"NEXY_BOGUS": "1"}, ["bogus"]),
    ],
)
def test_invalid_values_name_the_key(env, names):
    with pytest.raises(ConfigError) as caught:
        load_settings(env=env)
    for name in names:
        assert name in str(caught.value)


def test_unknown_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("limits:\n  max_turns: 3\n")
    with pytest.raises(ConfigError, match="limits.max_turns"):
        load_settings(path, env={})


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.yaml", env={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad, env={})


def test_masked_dump_is_plain_data():
    dump = masked_dump(Settings())
    assert dump["server"]["grpc_port"] == 50051
    assert isinstance(dump["actions"]["kill_switch_file"], type(None))


def test_example_config_matches_the_settings_model():
    from pathlib import Path

    example = Path(__file__).resolve().parents[3] / "config" / "nexy.example.yaml"
    settings = load_settings(example, env={})
    import yaml

    listed = yaml.safe_load(example.read_text())

    def keys(data: dict, prefix: str = "") -> set[str]:
        out: set[str] = set()
        for key, value in data.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict) and key not in ("voices",):
                out |= keys(value, name + ".")
            else:
                out.add(name)
        return out

    assert keys(listed) == keys(settings.model_dump(mode="json"))


def test_the_server_binds_loopback_unless_told_otherwise():
    settings = load_settings(env={})
    assert settings.server.host == "127.0.0.1"
    assert settings.server.reuse_port is False
    assert settings.server.http_request_timeout_seconds == 10.0
    assert load_settings(env={"NEXY_SERVER__HOST": "0.0.0.0"}).server.host == "0.0.0.0"


def test_bound_client_tokens_load_from_env_and_are_masked():
    clients = '[{"token": "device-secret-1", "hardware_ids": ["HW-1", "HW-2"]}, {"token": "t2"}]'
    settings = load_settings(env={"NEXY_AUTH__CLIENTS": clients})
    first, second = settings.auth.clients
    assert first.token.get_secret_value() == "device-secret-1"
    assert first.hardware_ids == ["HW-1", "HW-2"] and second.hardware_ids == []
    dump = masked_dump(settings)
    assert "device-secret-1" not in str(dump) and "t2" not in str(dump["auth"])
    assert dump["auth"]["clients"][0]["hardware_ids"] == ["HW-1", "HW-2"]
    with pytest.raises(ConfigError, match="auth.clients"):
        load_settings(env={"NEXY_AUTH__CLIENTS": '[{"hardware_ids": ["HW-1"]}]'})
