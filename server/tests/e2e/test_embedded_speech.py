"""A turn through the real embedded speech engine (eSpeak NG), end to end over gRPC."""

from __future__ import annotations

import numpy as np
import pytest

from nexy.config_loading import load_settings
from tests.fakes.client import commit, run_turn

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]


@pytest.fixture
async def espeak_server(server_factory):
    settings = load_settings(
        env={},
        overrides={
            "llm.provider": "scripted",
            "llm.scripted.mode": "echo",
            "llm.intents.enabled": False,
            "tts.provider": "espeak",
            "server.host": "127.0.0.1",
        },
    )
    return await server_factory(settings)


def _pcm(result) -> np.ndarray:
    return np.frombuffer(b"".join(c.audio_data for c in result.audio), dtype="<i2")


async def test_english_question_is_spoken_at_48k(espeak_server):
    result = await run_turn(espeak_server.stub, commit("What time is it in Paris?"))
    assert result.kinds[-1] == "end_message"
    assert result.text == "What time is it in Paris?"
    assert {(c.sample_rate, c.channels, c.dtype) for c in result.audio} == {(48000, 1, "int16")}
    pcm = _pcm(result)
    assert 0.8 < len(pcm) / 48000 < 4.0
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 300  # speech, not silence


async def test_russian_prompt_is_spoken_with_a_russian_voice(espeak_server):
    voice = tts_voice("Привет, как дела?")
    engine = espeak_server.app.tts.engine_for(voice)
    assert engine.name == "espeak" and engine.voice_name_for(voice) == "ru"
    result = await run_turn(espeak_server.stub, commit("Привет, как дела?"))
    assert result.text == "Привет, как дела?"
    pcm = _pcm(result)
    # The Russian voice says it in about a second; an English voice spelling Cyrillic out
    # letter by letter takes several times longer.
    assert 0.5 < len(pcm) / 48000 < 2.5


def tts_voice(text: str):
    from nexy.providers.tts.voices import voice_for

    return voice_for(text)
