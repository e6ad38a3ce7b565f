"""Tests for the embedded eSpeak NG engine, run against the real bundled library."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from nexy.components import State
from nexy.providers.tts.audio import pcm_duration_seconds
from nexy.providers.tts.base import TTSError, TTSProvider, Voice
from nexy.providers.tts.espeak import EspeakTTS

PARAGRAPH = " ".join(
    [
        "The quick brown fox jumps over the lazy dog while the band plays on.",
        "Streaming speech should reach the listener long before the paragraph ends.",
        "Every sentence here adds a few more seconds of audio to the utterance.",
    ]
    * 12
)


@pytest.fixture
async def tts() -> AsyncIterator[EspeakTTS]:
    engine = EspeakTTS()
    await engine.start()
    yield engine
    await engine.close()


async def collect(engine: EspeakTTS, text: str, voice: Voice | None = None) -> bytes:
    """All audio for ``text`` as one byte string."""
    return b"".join([chunk async for chunk in engine.synthesize(text, voice or Voice())])


def loudness(pcm: bytes) -> int:
    """The peak absolute sample value."""
    return int(np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32)).max(initial=0))


def test_satisfies_the_provider_protocol() -> None:
    provider: TTSProvider = EspeakTTS()
    assert provider.name == "espeak"


async def test_lifecycle_status(tts: EspeakTTS) -> None:
    assert tts.status().state is State.READY
    assert tts.sample_rate == 22050
    await tts.close()
    assert tts.status().state is State.DOWN
    with pytest.raises(TTSError):
        await collect(tts, "Hello.")
    assert EspeakTTS().status().state is State.DOWN


async def test_english_audio_is_plausible(tts: EspeakTTS) -> None:
    pcm = await collect(tts, "Hello world.", Voice("en"))
    assert len(pcm) % 2 == 0
    assert 0.4 <= pcm_duration_seconds(len(pcm), tts.sample_rate) <= 3.0
    assert loudness(pcm) > 1000


async def test_russian_text_uses_the_russian_voice(tts: EspeakTTS) -> None:
    voice = Voice("ru")
    assert tts.voice_name_for(voice) == "ru"
    pcm = await collect(tts, "Привет, как дела?", voice)
    assert 0.4 <= pcm_duration_seconds(len(pcm), tts.sample_rate) <= 4.0
    assert loudness(pcm) > 1000
    # The English voice spells Cyrillic out letter by letter, which takes far longer.
    spelled = await collect(tts, "Привет, как дела?", Voice("en"))
    assert len(spelled) > 1.5 * len(pcm)


def test_voice_name_for() -> None:
    engine = EspeakTTS(voices={"de": "de", "pt": "pt-br"}, default_voice="en-gb")
    assert engine.voice_name_for(Voice("ru-RU")) == "ru"
    assert engine.voice_name_for(Voice("PT_br")) == "pt-br"
    assert engine.voice_name_for(Voice("xx")) == "en-gb"
    assert engine.voice_name_for(Voice("ru", name="en-us")) == "en-us"


async def test_empty_text_yields_nothing(tts: EspeakTTS) -> None:
    assert await collect(tts, "  \n\t ") == b""


async def test_unknown_voice_is_a_tts_error(tts: EspeakTTS) -> None:
    with pytest.raises(TTSError, match="no voice"):
        await collect(tts, "Hello.", Voice(name="no-such-voice"))
    assert loudness(await collect(tts, "Hello.")) > 1000  # the engine is still usable


async def test_unknown_configured_voice_fails_start() -> None:
    engine = EspeakTTS(voices={"xx": "no-such-voice"})
    with pytest.raises(TTSError, match="no-such-voice"):
        await engine.start()
    assert engine.status().state is State.DOWN


async def test_first_audio_arrives_while_synthesis_continues(tts: EspeakTTS) -> None:
    started = time.perf_counter()
    first_at = 0.0
    chunks = 0
    async for _ in tts.synthesize(PARAGRAPH, Voice("en")):
        chunks += 1
        if chunks == 1:
            first_at = time.perf_counter() - started
    total = time.perf_counter() - started
    assert chunks > 100
    assert first_at < total / 4


async def test_slow_consumer_makes_synthesis_wait(tts: EspeakTTS) -> None:
    engine = EspeakTTS(max_buffered_chunks=4)
    await engine.start()
    try:
        stalled = engine.synthesize(PARAGRAPH, Voice("en"))
        await anext(stalled)
        # The worker is parked on the full buffer, so a second request cannot run yet.
        waiting = asyncio.create_task(collect(engine, "Hello."))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        await stalled.aclose()  # aborts the paragraph and frees the worker
        assert loudness(await asyncio.wait_for(waiting, timeout=2.0)) > 1000
    finally:
        await engine.close()


async def test_closing_mid_utterance_frees_the_engine(tts: EspeakTTS) -> None:
    stream = tts.synthesize(PARAGRAPH, Voice("en"))
    await anext(stream)
    await stream.aclose()
    started = time.perf_counter()
    pcm = await asyncio.wait_for(collect(tts, "Hello world."), timeout=2.0)
    assert time.perf_counter() - started < 0.5
    assert 0.4 <= pcm_duration_seconds(len(pcm), tts.sample_rate) <= 3.0


async def test_cancelling_the_task_frees_the_engine(tts: EspeakTTS) -> None:
    async def slow_listener() -> None:
        async for _ in tts.synthesize(PARAGRAPH, Voice("en")):
            await asyncio.sleep(0.05)

    task = asyncio.create_task(slow_listener())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = time.perf_counter()
    pcm = await asyncio.wait_for(collect(tts, "Hello world."), timeout=2.0)
    assert time.perf_counter() - started < 0.5
    assert loudness(pcm) > 1000


async def test_close_cuts_off_a_reader_with_an_error() -> None:
    engine = EspeakTTS(max_buffered_chunks=2)
    await engine.start()
    stream = engine.synthesize(PARAGRAPH, Voice("en"))
    await anext(stream)
    await engine.close()
    with pytest.raises(TTSError, match="aborted"):
        async for _ in stream:
            pass


async def test_concurrent_requests_are_serialised(tts: EspeakTTS) -> None:
    texts = ["One small step.", "Two big ideas.", "Привет, мир.", "Four more words here."]
    voices = [Voice("en"), Voice("en"), Voice("ru"), Voice("en")]
    results = await asyncio.gather(
        *(collect(tts, t, v) for t, v in zip(texts, voices, strict=True))
    )
    alone = [await collect(tts, t, v) for t, v in zip(texts, voices, strict=True)]
    for together, single in zip(results, alone, strict=True):
        assert loudness(together) > 1000
        # Interleaved audio would change the lengths; allow the engine's few-sample jitter.
        assert abs(len(together) - len(single)) < 0.02 * len(single)


async def test_synthesis_does_not_block_the_event_loop(tts: EspeakTTS) -> None:
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    await collect(tts, PARAGRAPH * 2)
    ticking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ticking
    assert gaps and max(gaps) < 0.1
