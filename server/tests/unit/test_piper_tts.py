"""Tests for the Piper engine, run against the real bundled ``joe`` voice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nexy.components import ComponentStatus, State
from nexy.config import PiperSettings
from nexy.providers.tts.audio import pcm_duration_seconds
from nexy.providers.tts.base import TTSError, TTSProvider, Voice
from nexy.providers.tts.piper import MAX_PHONEMES, PiperTTS, phoneme_pieces

THREE_SENTENCES = (
    "The weather today is sunny and warm. "
    "Tomorrow brings a little rain in the morning. "
    "The weekend should be clear and bright again."
)
# Many sentences: several seconds of synthesis, so an abort that did not work would show.
LONG_TEXT = " ".join(f"This is sentence number {n} of a long reply." for n in range(1, 21))


@pytest.fixture(scope="module")
def piper() -> Iterator[PiperTTS]:
    """One started engine for the module: loading the model is the slow part."""
    engine = PiperTTS(PiperSettings())
    asyncio.run(engine.start())
    yield engine
    asyncio.run(engine.close())


async def collect(engine: PiperTTS, text: str, voice: Voice | None = None) -> bytes:
    """All audio for ``text`` as one byte string."""
    return b"".join([chunk async for chunk in engine.synthesize(text, voice or Voice())])


def loudness(pcm: bytes) -> int:
    """The peak absolute sample value."""
    return int(np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32)).max(initial=0))


def test_satisfies_the_provider_protocol() -> None:
    provider: TTSProvider = PiperTTS(PiperSettings())
    assert provider.name == "piper"
    assert PiperTTS(PiperSettings()).status() == ComponentStatus(State.DOWN, "not started")


async def test_english_sentence_is_plausible_audio(piper: PiperTTS) -> None:
    assert piper.status().state is State.READY
    assert piper.sample_rate == 22050
    pcm = await collect(piper, "Hello, how are you today?", Voice("en"))
    assert len(pcm) % 2 == 0
    assert 0.8 <= pcm_duration_seconds(len(pcm), piper.sample_rate) <= 4.0
    assert loudness(pcm) > 3000


async def test_empty_text_yields_nothing(piper: PiperTTS) -> None:
    assert await collect(piper, "   \n\t") == b""


async def test_sentences_stream_as_they_are_ready(piper: PiperTTS) -> None:
    started = time.perf_counter()
    arrivals: list[float] = []
    async for pcm in piper.synthesize(THREE_SENTENCES, Voice("en")):
        assert loudness(pcm) > 1000
        arrivals.append(time.perf_counter() - started)
    assert len(arrivals) == 3  # one chunk per sentence
    # The first sentence is out while the other two are still being synthesised.
    assert arrivals[0] < 0.75 * arrivals[-1]


async def test_closing_mid_text_frees_the_worker(piper: PiperTTS) -> None:
    stream = piper.synthesize(LONG_TEXT, Voice("en"))
    await anext(stream)
    await stream.aclose()
    started = time.perf_counter()
    pcm = await asyncio.wait_for(collect(piper, "Hi there."), timeout=3.0)
    # At most the sentence in progress finishes first; the other 18 are never synthesised.
    assert time.perf_counter() - started < 0.8
    assert loudness(pcm) > 1000


async def test_cancelling_the_consumer_frees_the_worker(piper: PiperTTS) -> None:
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in piper.synthesize(LONG_TEXT, Voice("en")):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), timeout=3.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    started = time.perf_counter()
    pcm = await asyncio.wait_for(collect(piper, "Hi there."), timeout=3.0)
    assert time.perf_counter() - started < 0.8
    assert loudness(pcm) > 1000


async def test_concurrent_calls_are_serialised_safely(piper: PiperTTS) -> None:
    texts = ["Good morning.", THREE_SENTENCES, "Thank you very much. See you soon."]
    results = await asyncio.gather(*(collect(piper, text) for text in texts))
    durations = [pcm_duration_seconds(len(pcm), piper.sample_rate) for pcm in results]
    assert all(loudness(pcm) > 1000 for pcm in results)
    # Each caller got its own text's audio: lengths follow the texts, not each other.
    assert 0.5 <= durations[0] <= 2.5
    assert durations[1] > 2 * durations[0]
    assert durations[0] < durations[2] < durations[1]


async def test_event_loop_stays_responsive(piper: PiperTTS) -> None:
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        while not done:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - before - 0.01)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        assert await collect(piper, THREE_SENTENCES)
    finally:
        done = True
        await task
    assert worst < 0.1


async def test_stalled_consumer_is_cut_off() -> None:
    engine = PiperTTS(PiperSettings(), max_buffered_sentences=1, stall_timeout_seconds=0.3)
    await engine.start()
    try:
        stalled = engine.synthesize(LONG_TEXT, Voice("en"))
        await anext(stalled)  # then never read again
        pcm = await asyncio.wait_for(collect(engine, "Hi there."), timeout=3.0)
        assert loudness(pcm) > 1000
        with pytest.raises(TTSError, match="aborted"):
            async for _ in stalled:
                pass
    finally:
        await engine.close()


async def test_hash_mismatch_fails_start() -> None:
    engine = PiperTTS(PiperSettings(model_sha256="0" * 64))
    with pytest.raises(TTSError, match="SHA-256"):
        await engine.start()
    status = engine.status()
    assert status.state is State.DOWN
    assert "SHA-256" in status.reason
    with pytest.raises(TTSError, match="not started"):
        await collect(engine, "Hello.")


async def test_missing_model_fails_start(tmp_path: Path) -> None:
    engine = PiperTTS(PiperSettings(model_path=tmp_path / "voice.onnx"))
    with pytest.raises(TTSError, match="missing"):
        await engine.start()
    assert engine.status().state is State.DOWN
    assert "voice.onnx" in engine.status().reason


async def test_close_stops_the_engine() -> None:
    engine = PiperTTS(PiperSettings())
    await engine.close()
    assert engine.status() == ComponentStatus(State.DOWN, "closed")
    with pytest.raises(TTSError, match="not started"):
        await collect(engine, "Hello.")


def test_a_long_sentence_is_cut_at_word_boundaries_within_the_limit() -> None:
    words = [list("hɛlo"), list("wɜːld"), list("ə")] * 30
    sentence = [p for word in words for p in [*word, " "]]
    pieces = phoneme_pieces(sentence, limit=20)
    assert all(len(piece) <= 20 for piece in pieces)
    assert [p for piece in pieces for p in piece] == sentence  # nothing lost or reordered
    assert all(piece[-1] == " " for piece in pieces[:-1])  # every cut falls between words
    assert phoneme_pieces(list("a" * 50), limit=20) == [list("a" * 20)] * 2 + [list("a" * 10)]


async def test_a_sentence_without_stops_never_holds_the_worker_in_one_inference(
    piper: PiperTTS,
) -> None:
    # 200 words and no full stop: ~1,200 phonemes, which once took one uninterruptible
    # multi-second inference and grew onnxruntime's arena by over a gigabyte.
    pieces = [pcm async for pcm in piper.synthesize("word " * 200, Voice("en"))]
    assert len(pieces) >= 1200 // MAX_PHONEMES
    assert all(loudness(pcm) > 1000 for pcm in pieces)
