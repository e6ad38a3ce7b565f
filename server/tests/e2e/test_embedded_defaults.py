"""The embedded defaults, for real: local LLM + intents, Piper/eSpeak, no configuration."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from nexy.config_loading import load_settings
from nexy.providers.llm.reply_check import is_echo
from nexy.providers.tts.base import Voice
from nexy.toolkit.backpressure import run_backpressure
from nexy.toolkit.connection import target
from nexy.toolkit.results import Report
from tests.fakes.client import HARDWARE_ID, commit, run_turn

OTHER_DEVICE = "0C4DE1A2-5B6F-4A3C-9D8E-7F6A5B4C3D2E"
ROLE_LABELS = ("User:", "Assistant:", "<|im_", "Пользователь:")

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]

# The smallest valid PNG: one transparent pixel.
PIXEL_PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6300010000000500010d0a2db40000000049454e44ae426082"
    )
).decode()


@pytest.fixture
async def embedded(server_factory):
    return await server_factory(load_settings(env={}, overrides={"server.host": "127.0.0.1"}))


def _rms(result) -> float:
    pcm = np.frombuffer(b"".join(c.audio_data for c in result.audio), dtype="<i2")
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.size else 0.0


async def test_a_question_gets_text_and_speech(embedded):
    result = await run_turn(embedded.stub, commit("How many legs does a spider have?"))
    assert result.kinds[-1] == "end_message"
    assert any(word in result.text.lower() for word in ("8", "eight"))
    assert {(c.sample_rate, c.channels) for c in result.audio} == {(48000, 1)}
    assert _rms(result) > 300
    # Deterministic: the same question gives the same answer (on a device with the same,
    # empty, history: the first device's history now holds the first exchange).
    again = await run_turn(
        embedded.stub, commit("How many legs does a spider have?", hardware_id=OTHER_DEVICE)
    )
    assert again.text == result.text
    # The local model's token counts are stored for each turn, like a cloud model's.
    usage = await embedded.stored_usage(HARDWARE_ID)
    for _ in range(50):  # the second turn's row may still be on its way
        if len(usage) >= 2:
            break
        usage = await embedded.stored_usage(HARDWARE_ID)
    assert [(source, model.endswith(".gguf")) for source, model, _, _ in usage] == [
        ("server", True),
    ]
    assert all(inp > 10 and 0 < out <= 96 for _, _, inp, out in usage)


async def test_open_safari_gives_the_action_and_a_spoken_confirmation(embedded):
    result = await run_turn(embedded.stub, commit("Open Safari"))
    assert result.kinds[-2:] == ["action_message", "end_message"]
    action = json.loads(result.responses[-2].action_message.action_json)
    assert action["command"] == "open_app" and action["args"] == {"app_name": "Safari"}
    assert "Safari" in result.text and _rms(result) > 300


async def test_russian_is_spoken_with_a_russian_voice(embedded):
    tts = embedded.app.tts
    assert tts.engine_for(Voice("ru")).name == "espeak"
    assert tts.engine_for(Voice("en")).name == "piper"
    result = await run_turn(embedded.stub, commit("Открой Telegram"))
    assert "Telegram" in result.text and any("а" <= ch <= "я" for ch in result.text.lower())
    assert _rms(result) > 300


async def test_the_local_model_is_honest_about_the_screen(embedded):
    result = await run_turn(embedded.stub, commit("What's on my screen?", screenshot=PIXEL_PNG))
    assert result.kinds[-1] == "end_message"
    assert "can't see" in result.text.lower() or "cannot see" in result.text.lower()


async def test_backpressure_guide_checks_pass_against_the_embedded_model(server_factory):
    # The embedded model answers one turn at a time and briefly: the per-device probe must still
    # hold its turns open (a small HTTP/2 window) and see the limit refuse the extra one. The
    # idle timeout is short so that probe is quick, but longer than holding two turns takes.
    settings = load_settings(
        env={},
        overrides={"server.host": "127.0.0.1", "limits.idle_timeout_seconds": 8},
    )
    server = await server_factory(settings)
    app = server.app
    grpc_target = target("127.0.0.1", app.grpc_port, tls=False, timeout=30)
    http = target("127.0.0.1", app.http_port, tls=False, timeout=30)
    report = await run_backpressure(grpc_target, http, Report())
    assert report.ok, "\n".join(check.line() for check in report.failures)
    device = report.get("backpressure.device_streams")
    assert not device.skipped and "DEVICE_TURN_LIMIT_EXCEEDED" in device.detail


async def _settled_turn(server, prompt: str):
    result = await run_turn(server.stub, commit(prompt))
    await server.app.settle()  # the exchange is in memory before the next turn reads it
    return result


async def test_a_conversation_does_not_decay_into_the_transcript_format(embedded):
    for prompt in ("Hello, who are you?", "How many legs does a spider have?", "Tell me a joke."):
        await _settled_turn(embedded, prompt)
    assert len((await embedded.app.memory.read(HARDWARE_ID)).recent) == 3
    result = await _settled_turn(embedded, "what is the capital of Italy")
    assert result.kinds[-1] == "end_message"
    assert not any(label in result.text for label in ROLE_LABELS), result.text
    assert not is_echo("what is the capital of Italy", result.text), result.text
    assert not result.text.lower().startswith("what is"), result.text
    assert "rome" in result.text.lower(), result.text


async def test_english_after_russian_is_answered_in_english(embedded):
    await _settled_turn(embedded, "расскажи анекдот")
    result = await _settled_turn(embedded, "Hello, who are you?")
    assert result.kinds[-1] == "end_message"
    assert result.text.strip() and not re.search("[а-яА-ЯёЁ]", result.text), result.text


async def test_time_to_first_audio_does_not_grow_with_history(embedded):
    """Measurement: the same question ten times on one device (printed; generous bound)."""
    times = []
    for _ in range(10):
        result = await _settled_turn(embedded, "How many legs does a spider have?")
        assert result.first_audio_s is not None
        times.append(result.first_audio_s)
    ratio = times[-1] / times[0]
    print(f"time to first audio, turns 1-10 (ms): {[round(t * 1000) for t in times]}")
    print(
        f"turn 10 / turn 1 = {ratio:.2f}; median of turns 6-10 / turn 1 = "
        f"{sorted(times[5:])[2] / times[0]:.2f}"
    )
    # Not a speed test: only a history that is evaluated again every turn would fail this.
    assert sorted(times[5:])[2] < 3 * times[0], times
