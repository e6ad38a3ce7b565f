"""No secret value ever reaches a log line (the guide's test_secret_masking)."""

from __future__ import annotations

import io
import logging

import pytest

from nexy.config_loading import load_settings
from nexy.logs import SecretMasker, configure_logging, secret_values

OPENAI_KEY = "sk-test-OPENAI-1234567890abcdef"
GEMINI_KEY = "AIzaSyTESTKEY-0123456789abcdefghij"
DB_PASSWORD = "s3cr3t-db-pass"


@pytest.fixture
def settings(tmp_path):
    key_file = tmp_path / "gemini.key"
    key_file.write_text("file-held-key-998877\n")
    return load_settings(
        env={
            "NEXY_LLM__OPENAI__API_KEY": OPENAI_KEY,
            "NEXY_LLM__GEMINI__BACKUP_API_KEY": GEMINI_KEY,
            "NEXY_LLM__GEMINI__API_KEY_FILE": str(key_file),
            "NEXY_STORAGE__URL": f"postgresql+asyncpg://nexy:{DB_PASSWORD}@db.internal/nexy",
        }
    )


def test_every_configured_secret_is_collected(settings):
    values = secret_values(settings)
    for secret in (OPENAI_KEY, GEMINI_KEY, DB_PASSWORD, "file-held-key-998877"):
        assert secret in values


def test_tokens_held_in_lists_are_collected():
    settings = load_settings(
        env={},
        overrides={
            "auth.tokens": ["plain-bearer-token-4455"],
            "auth.clients": [{"token": "bound-token-7788", "hardware_ids": ["DEV-1"]}],
        },
    )
    values = secret_values(settings)
    assert "plain-bearer-token-4455" in values
    assert "bound-token-7788" in values


@pytest.mark.parametrize(
    "line",
    [
        f"calling openai with key {OPENAI_KEY}",
        f"gemini refused {GEMINI_KEY}",
        f"connecting to postgresql+asyncpg://nexy:{DB_PASSWORD}@db.internal/nexy",
        "request headers: Authorization: Bearer abcdefghijklmnop1234",
        "retrying with password=hunter2hunter2 and token: tok_live_12345678",
        "the file said file-held-key-998877",
    ],
)
def test_secrets_are_masked_in_any_line(settings, line):
    masker = SecretMasker(secret_values(settings))
    masked = masker.mask(line)
    for secret in (
        OPENAI_KEY,
        GEMINI_KEY,
        DB_PASSWORD,
        "abcdefghijklmnop1234",
        "hunter2hunter2",
        "tok_live_12345678",
        "file-held-key-998877",
    ):
        assert secret not in masked
    assert "****" in masked


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_whole_run_of_logs_holds_no_secret(settings, restore_logging):
    stream = io.StringIO()
    configure_logging(settings.logging, secret_values(settings))
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    log = logging.getLogger("nexy.test")
    log.warning("config loaded: %s", settings.model_dump())
    log.error("provider failed for key %s", OPENAI_KEY)
    try:
        raise RuntimeError(f"boom with {GEMINI_KEY}")
    except RuntimeError:
        log.exception("unexpected")
    logging.getLogger("sqlalchemy.engine").warning(
        "dsn %s", settings.storage.url.get_secret_value()
    )
    text = stream.getvalue()
    assert text.count("\n") >= 4
    for secret in (OPENAI_KEY, GEMINI_KEY, DB_PASSWORD, "file-held-key-998877"):
        assert secret not in text
    assert "Traceback" not in text


def test_ordinary_text_is_untouched():
    masker = SecretMasker(["abcd-secret"])
    line = "turn completed in 120 ms for session 1b2c (tokens 12/30)"
    assert masker.mask(line) == line
