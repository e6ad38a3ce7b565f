"""Tests for the embedded eSpeak NG engine, run against the real bundled library."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

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


@pytest.mark.parametrize(
    ("language", "name", "expected"),
    [
        ("ru-RU", "", "ru"),
        ("RU_ru", "", "ru"),
        (" ru ", "", "ru"),
        ("PT_br", "", "pt-br"),
        ("pt", "", "pt-br"),  # the configured voice for a language wins over eSpeak's own
        ("it", "", "it"),  # not configured, but eSpeak has an Italian voice
        ("xx", "", "en-gb"),  # no such language: the configured default
        ("ru" * 40, "", "en-gb"),  # an overlong tag is no language at all
        ("ru", "en-us", "en-us"),  # an explicit name eSpeak knows wins over the language
        ("ru", "EN-US+F3", "en-us+f3"),  # a variant that exists in eSpeak's data stays
        ("en", "English (America)", "en-us"),  # the library's display name
        ("ru", "en+f99", "ru"),  # no such variant: the voice for the language
        ("ru", "en+" + "x" * 37, "ru"),  # the name that overflowed eSpeak's variant buffer
        ("ru", "no-such-voice", "ru"),
        ("xx", "no-such-voice", "en-gb"),
        ("de", "x" * 500, "de"),
    ],
)
async def test_voice_resolution(language: str, name: str, expected: str) -> None:
    engine = EspeakTTS(voices={"de": "de", "pt": "pt-br"}, default_voice="en-gb")
    await engine.start()
    try:
        assert engine.voice_name_for(Voice(language, name)) == expected
    finally:
        await engine.close()


def test_no_name_is_trusted_before_start() -> None:
    assert EspeakTTS().voice_name_for(Voice("ru", name="en-us")) == "ru"


async def test_empty_text_yields_nothing(tts: EspeakTTS) -> None:
    assert await collect(tts, "  \n\t ") == b""


async def test_unknown_voice_speaks_with_the_language_voice_and_warns_once(
    tts: EspeakTTS, caplog: pytest.LogCaptureFixture
) -> None:
    hostile = "en+" + "x" * 37 + "\n" + "y" * 5000
    with caplog.at_level(logging.WARNING, logger="nexy.providers.tts.espeak"):
        pcm = await collect(tts, "Привет, как дела?", Voice("ru", hostile))
        for _ in range(3):  # segment after segment: still one warning
            await collect(tts, "Привет.", Voice("ru", hostile))
    russian = await collect(tts, "Привет, как дела?", Voice("ru"))
    assert abs(len(pcm) - len(russian)) < 0.02 * len(russian)  # the engine's few-sample jitter
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "speaking with ru" in warnings[0]
    assert "\n" not in warnings[0] and len(warnings[0]) < 200  # escaped and truncated


def test_hostile_voice_does_not_kill_the_process() -> None:
    # eSpeak NG copies a "+variant" into a 40-byte buffer: 37 letters abort the interpreter
    # ("buffer overflow detected"), so the proof has to run in a process of its own.
    script = textwrap.dedent(
        """
        import asyncio
        from nexy.providers.tts.base import Voice
        from nexy.providers.tts.espeak import EspeakTTS

        async def main() -> None:
            engine = EspeakTTS()
            await engine.start()
            pcm = b"".join([c async for c in engine.synthesize("Privet.", Voice("ru", "en+" + "x" * 37))])
            await engine.close()
            print(len(pcm))

        asyncio.run(main())
        """
    )
    server = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=server, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert int(done.stdout.strip()) > 10_000


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
