"""A turn through the real embedded speech engine (eSpeak NG), end to end over gRPC."""

from __future__ import annotations

import re

import numpy as np
import pytest

from nexy.config_loading import load_settings
from nexy.providers.tts.level import WIRE_LEVEL
from nexy.transport.grpc import streaming_pb2 as pb
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


async def _welcome(stub, **fields) -> tuple[float, np.ndarray]:
    """GenerateWelcomeAudio's announced duration and its audio, checking the stream's shape."""
    responses = [r async for r in stub.GenerateWelcomeAudio(pb.WelcomeRequest(**fields))]
    kinds = [r.WhichOneof("content") for r in responses]
    assert kinds[0] == "metadata" and kinds[-1] == "end_message"
    assert set(kinds[1:-1]) == {"audio_chunk"}
    pcm = b"".join(r.audio_chunk.audio_data for r in responses[1:-1])
    return responses[0].metadata.duration_sec, np.frombuffer(pcm, dtype="<i2")


async def test_hostile_welcome_voice_is_spoken_by_the_default_voice(server_factory):
    # The embedded speech defaults (Piper for English, eSpeak NG for the rest). This voice once
    # overflowed a buffer inside eSpeak NG and aborted the whole server process.
    settings = load_settings(
        env={}, overrides={"llm.provider": "scripted", "server.host": "127.0.0.1"}
    )
    server = await server_factory(settings)
    hostile = {"text": "Привет, как дела?", "voice": "en+" + "x" * 37, "language": "ru"}
    duration, pcm = await _welcome(server.stub, **hostile)
    # The Russian voice: about a second, not Cyrillic spelled out letter by letter.
    assert 0.5 < duration < 2.5 and np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 300
    duration, pcm = await _welcome(server.stub, text="Hello and welcome.")
    assert 0.5 < duration < 4.0 and np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 300
    # The server is still whole: a turn after both is answered too.
    result = await run_turn(server.stub, commit("Still there?"))
    assert result.kinds[-1] == "end_message"


async def test_embedded_defaults_answer_russian_honestly_at_an_even_level(server_factory):
    # No configuration: the English-only embedded model, Piper for English, eSpeak NG for Russian.
    server = await server_factory(load_settings(env={}, overrides={"server.host": "127.0.0.1"}))
    russian = await run_turn(server.stub, commit("расскажи анекдот"))
    assert russian.kinds[-1] == "end_message"
    # A Russian sentence about what works offline, not the model's English guesswork.
    assert re.search("[а-яА-Я]", russian.text) and not re.search("[A-Za-z]", russian.text)
    assert "приложения" in russian.text and "облачная модель" in russian.text
    # Another device: this test is about levels; one device's mixed-language history is the
    # conversation tests' subject.
    english = await run_turn(server.stub, commit("Hello, who are you?", hardware_id="LEVEL-EN"))
    assert english.kinds[-1] == "end_message" and re.search("[A-Za-z]", english.text)
    levels = []
    for result in (russian, english):
        pcm = _pcm(result).astype(np.int32)
        assert len(pcm) > 48000 and np.abs(pcm).max() <= WIRE_LEVEL.ceiling  # nothing clips
        levels.append(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))
    # eSpeak NG's Russian and Piper's English come out about equally loud.
    assert abs(20 * np.log10(levels[0] / levels[1])) < 3.0


def tts_voice(text: str):
    from nexy.providers.tts.voices import voice_for

    return voice_for(text)
