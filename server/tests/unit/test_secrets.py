"""Tests for resolving provider API keys from settings or key files."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from nexy.providers.secrets import resolve_secret

KEY = "sk-from-file-0123456789"


def test_setting_wins_over_file(tmp_path: Path) -> None:
    file = tmp_path / "key"
    file.write_text(KEY)
    assert resolve_secret(SecretStr(" env-key \n"), file, what="llm.x.api_key") == "env-key"


def test_empty_setting_falls_back_to_stripped_file(tmp_path: Path) -> None:
    file = tmp_path / "key"
    file.write_text(f"\n  {KEY}\n")
    assert resolve_secret(SecretStr(""), file, what="llm.x.api_key") == KEY
    assert resolve_secret(SecretStr("   "), file, what="llm.x.api_key") == KEY


def test_neither_setting_nor_file_is_no_key() -> None:
    assert resolve_secret(SecretStr(""), None, what="llm.x.api_key") == ""


def test_missing_file_names_setting_and_path(tmp_path: Path) -> None:
    file = tmp_path / "absent"
    with pytest.raises(ValueError) as caught:
        resolve_secret(SecretStr(""), file, what="llm.x.api_key")
    assert "llm.x.api_key" in str(caught.value)
    assert str(file) in str(caught.value)


def test_unreadable_file_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="llm.x.api_key"):
        resolve_secret(SecretStr(""), tmp_path, what="llm.x.api_key")  # a directory


def test_undecodable_file_never_quotes_its_bytes(tmp_path: Path) -> None:
    file = tmp_path / "key"
    file.write_bytes(b"\xff\xfe" + KEY.encode())
    with pytest.raises(ValueError) as caught:
        resolve_secret(SecretStr(""), file, what="llm.x.api_key")
    message = str(caught.value)
    assert str(file) in message
    assert KEY not in message and "xff" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    file = tmp_path / "key"
    file.write_text(" \n")
    with pytest.raises(ValueError, match="empty"):
        resolve_secret(SecretStr(""), file, what="llm.x.api_key")
