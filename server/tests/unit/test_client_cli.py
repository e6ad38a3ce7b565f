"""The client commands' local parts: the kept device id and the choice of audio player."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from nexy.client_cli import DEVICE_FILE, player_command, stable_device_id


def test_device_id_is_made_once_and_kept(tmp_path: Path) -> None:
    first = stable_device_id(tmp_path)
    assert first == str(uuid.UUID(first)).upper()  # shaped like the desktop client's
    assert (tmp_path / DEVICE_FILE).read_text() == first + "\n"
    assert stable_device_id(tmp_path) == first


def test_an_existing_device_id_is_used_as_written(tmp_path: Path) -> None:
    (tmp_path / DEVICE_FILE).parent.mkdir(parents=True)
    (tmp_path / DEVICE_FILE).write_text("  my-test-device \n")
    assert stable_device_id(tmp_path) == "my-test-device"


def test_an_unwritable_home_still_gets_an_id(tmp_path: Path, capsys) -> None:
    (tmp_path / ".config").write_text("a file where a folder should be")
    device = stable_device_id(tmp_path)
    assert uuid.UUID(device)
    assert "could not keep the device id" in capsys.readouterr().err


def test_players_are_tried_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("paplay", "ffplay"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    wav = Path("reply.wav")
    assert player_command(wav) == [str(tmp_path / "paplay"), "reply.wav"]
    (tmp_path / "paplay").unlink()
    assert player_command(wav) == [
        str(tmp_path / "ffplay"),
        *("-nodisp", "-autoexit", "-loglevel", "quiet"),
        "reply.wav",
    ]
    (tmp_path / "ffplay").unlink()
    assert player_command(wav) is None
