"""``nexy-server ask`` and ``welcome`` against a real in-process server (scripted providers).

The command's ``main`` runs in a worker thread with its own event loop, exactly as the console
script runs it, while the test's loop keeps serving; one test starts the real console script.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import tempfile
import wave
from pathlib import Path

import pytest

from nexy.cli import main
from nexy.toolkit.connection import closed_port
from tests.fakes.client import HARDWARE_ID
from tests.fakes.server import make_settings

pytestmark = pytest.mark.asyncio

TOKEN = "ask-cli-token-7"
TIMINGS = re.compile(r"^first text \d+ ms, first audio \d+ ms, end \d+ ms$", re.M)


async def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _wav_header(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()


@pytest.fixture
async def intents_server(server_factory):
    # The intent path answers "Open Safari" with an action and keeps memory per device.
    return await server_factory(make_settings(**{"llm.intents.enabled": True}))


async def test_ask_prints_text_action_timings_and_writes_the_wav(intents_server, capsys, tmp_path):
    wav = tmp_path / "reply.wav"
    port = str(intents_server.app.grpc_port)
    code, out, err = await _run(
        capsys,
        "ask",
        "Open Safari please",
        "--port",
        port,
        "--device",
        HARDWARE_ID,
        "--wav",
        str(wav),
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Opening Safari."
    assert lines[1].startswith("action: ")
    action = json.loads(lines[1].removeprefix("action: "))
    assert (action["command"], action["args"]) == ("open_app", {"app_name": "Safari"})
    assert TIMINGS.search(out)
    assert f"written to {wav} (48 kHz mono 16-bit)" in out
    rate, channels, width, frames = _wav_header(wav)
    assert (rate, channels, width) == (48000, 1, 2) and frames > 4800  # more than 100 ms
    with wave.open(str(wav), "rb") as reader:
        assert any(reader.readframes(frames))  # real speech, not silence


async def test_the_device_flag_keeps_memory_across_calls(intents_server, capsys):
    port = str(intents_server.app.grpc_port)
    code, _, err = await _run(
        capsys, "ask", "Remember that my name is Alex", "--port", port, "--device", HARDWARE_ID
    )
    assert code == 0, err
    _, same_device, _ = await _run(
        capsys, "ask", "What do you remember?", "--port", port, "--device", HARDWARE_ID
    )
    other = "0B1C2D3E-4F50-4A1B-9C2D-3E4F5A6B7C8D"
    _, other_device, _ = await _run(
        capsys, "ask", "What do you remember?", "--port", port, "--device", other
    )
    assert "Alex" in same_device and "Alex" not in other_device


async def test_welcome_writes_a_48k_mono_wav(server, capsys, tmp_path):
    wav = tmp_path / "welcome.wav"
    port = str(server.app.grpc_port)
    code, out, err = await _run(
        capsys, "welcome", "Hello and welcome.", "--port", port, "--wav", str(wav)
    )
    assert code == 0, err
    assert "method scripted, duration" in out
    assert re.search(r"^first message \d+ ms, end \d+ ms$", out, re.M)
    rate, channels, width, frames = _wav_header(wav)
    assert (rate, channels, width) == (48000, 1, 2) and frames > 0


async def test_unreachable_server_is_a_clear_error(capsys):
    port = str(closed_port("127.0.0.1"))
    code, out, err = await _run(capsys, "ask", "hi", "--host", "127.0.0.1", "--port", port)
    assert code == 1 and out == ""
    assert f"nexy-server ask: 127.0.0.1:{port}: UNAVAILABLE:" in err


async def test_server_status_is_shown_and_the_token_is_sent(server_factory, capsys):
    settings = make_settings(**{"auth.enabled": True, "auth.tokens": [TOKEN]})
    port = str((await server_factory(settings)).app.grpc_port)
    code, _, err = await _run(capsys, "ask", "hi", "--port", port, "--device", HARDWARE_ID)
    assert code == 1
    assert "UNAUTHENTICATED: missing or invalid bearer token" in err
    code, out, err = await _run(
        capsys, "ask", "hi", "--port", port, "--device", HARDWARE_ID, "--token", TOKEN
    )
    assert code == 0, err
    assert out.startswith("Hello! This is the scripted test reply.\n")


async def test_blank_text_is_a_usage_error(capsys):
    code, out, err = await _run(capsys, "ask", "   ")
    assert (code, out) == (2, "")
    assert "the text is empty" in err


async def test_play_uses_the_first_player_found(server, capsys, tmp_path, monkeypatch):
    played = tmp_path / "played.txt"
    player = tmp_path / "bin" / "paplay"
    player.parent.mkdir()
    player.write_text(f'#!/bin/sh\necho "$@" > {played}\n')
    player.chmod(0o755)
    monkeypatch.setenv("PATH", str(player.parent))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the unnamed WAV goes
    port = str(server.app.grpc_port)
    code, out, err = await _run(
        capsys, "ask", "hi", "--port", port, "--device", HARDWARE_ID, "--play"
    )
    assert code == 0, err
    written = re.search(r"written to (\S+\.wav)", out)
    assert written is not None
    wav = Path(written.group(1))
    assert wav.parent == tmp_path and played.read_text().split() == [str(wav)]
    assert _wav_header(wav)[:3] == (48000, 1, 2)


async def test_play_without_a_player_keeps_the_wav(server, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no player anywhere
    wav = tmp_path / "kept.wav"
    port = str(server.app.grpc_port)
    code, _, err = await _run(
        capsys, "ask", "hi", "--port", port, "--device", HARDWARE_ID, "--wav", str(wav), "--play"
    )
    assert code == 0
    assert f"no audio player found (aplay, paplay, afplay, ffplay); kept {wav}" in err
    assert _wav_header(wav)[3] > 0


async def test_console_script_asks_a_running_server(server, tmp_path):
    script = Path(sys.executable).with_name("nexy-server")
    wav = tmp_path / "script.wav"
    process = await asyncio.create_subprocess_exec(
        str(script),
        *("ask", "hi", "--port", str(server.app.grpc_port), "--device", HARDWARE_ID),
        *("--wav", str(wav)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().startswith("Hello! This is the scripted test reply.\n")
    assert _wav_header(wav)[:3] == (48000, 1, 2)
