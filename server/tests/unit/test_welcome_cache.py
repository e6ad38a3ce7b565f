"""Tests for WelcomeSpeaker's bounds: cache bytes and entries, and the length of one utterance."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import pytest

from nexy.config import ScriptedTTSSettings, WelcomeSettings
from nexy.providers.tts.base import Voice
from nexy.providers.tts.espeak import EspeakTTS
from nexy.providers.tts.scripted import ScriptedTTS
from nexy.turn.welcome import WelcomeSpeaker

RATE = 16000


class Counting:
    """The scripted engine, counting the pieces it was asked for and whether it was closed."""

    name = "scripted"
    sample_rate = ScriptedTTS.sample_rate

    def __init__(self) -> None:
        self.pieces = 0
        self.closed_early = 0
        self.texts: list[str] = []
        self._engine = ScriptedTTS(ScriptedTTSSettings())

    async def synthesize(self, text: str, voice: Voice) -> AsyncGenerator[bytes, None]:
        finished = False
        self.texts.append(text)
        try:
            async for pcm in self._engine.synthesize(text, voice):
                self.pieces += 1
                yield pcm
            finished = True
        finally:
            self.closed_early += not finished


def speaker(engine: Counting | EspeakTTS, **settings: float) -> WelcomeSpeaker:
    return WelcomeSpeaker(engine, WelcomeSettings(**settings), sample_rate=RATE, chunk_ms=100)


async def test_many_distinct_texts_never_exceed_the_byte_bound() -> None:
    bound = 200_000  # about six seconds of 16 kHz audio
    welcome = speaker(Counting(), cache_max_bytes=bound, cache_entries=1000)
    texts = [f"Greeting number {i} " + "la " * (i % 7) for i in range(60)]
    for text in texts:
        audio = await welcome.speak(text, "", "en")
        assert 0 < welcome.cache_bytes <= bound
        assert welcome.cached(text, "", "en") is audio  # the newest entry always fits
    assert welcome.cached(texts[0], "", "en") is None  # the oldest ones were evicted
    kept = {t: a for t in texts if (a := welcome.cached(t, "", "en")) is not None}
    # The accounting matches what is held: audio plus key texts ("en" is two characters).
    assert sum(a.nbytes + len(t.strip()) + 2 for t, a in kept.items()) == welcome.cache_bytes
    assert len(kept) < len(texts)


async def test_eviction_is_least_recently_used() -> None:
    engine = Counting()
    one = await speaker(engine).speak("Hello there.", "", "en")
    welcome = speaker(engine, cache_max_bytes=int(2.5 * (one.nbytes + 20)))
    for text in ("Hello there.", "Hello again.", "Hello there."):
        await welcome.speak(text, "", "en")  # the third call is a hit: it refreshes the first
    await welcome.speak("Hello, third.", "", "en")
    assert welcome.cached("Hello there.", "", "en") is not None
    assert welcome.cached("Hello again.", "", "en") is None


async def test_an_entry_larger_than_the_bound_is_not_cached() -> None:
    engine = Counting()
    welcome = speaker(engine, cache_max_bytes=100_000)
    small = await welcome.speak("Hi.", "", "en")
    before = welcome.cache_bytes
    large = await welcome.speak("A long greeting " * 10, "", "en")  # about ten seconds
    assert large.nbytes > 100_000
    assert welcome.cached("A long greeting " * 10, "", "en") is None
    assert welcome.cached("Hi.", "", "en") is small  # and it evicted nothing to make room
    assert welcome.cache_bytes == before
    pieces = engine.pieces
    await welcome.speak("A long greeting " * 10, "", "en")
    assert engine.pieces > pieces  # synthesized again, not served from memory


async def test_synthesis_stops_at_max_audio_seconds() -> None:
    engine = Counting()
    welcome = speaker(engine, max_audio_seconds=3.0)
    audio = await welcome.speak("word " * 10_000, "", "en")  # 50 000 characters: 50 minutes
    assert audio.duration_sec == pytest.approx(3.0, abs=0.01)
    assert engine.closed_early == 1
    assert engine.pieces < 100  # about 3 s of 50 ms pieces, not 60 000 of them
    short = await welcome.speak("Hello.", "", "en")
    assert 0.3 < short.duration_sec < 1.0  # a text under the bound is left whole


async def test_a_long_text_does_not_hold_espeak() -> None:
    engine = EspeakTTS()
    await engine.start()
    try:
        welcome = speaker(engine, max_audio_seconds=2.0)
        audio = await welcome.speak("The quick brown fox. " * 2500, "", "en")
        assert 1.9 < audio.duration_sec <= 2.0
        after = await welcome.speak("Hello world.", "", "en")  # the engine is free again
        assert 0.4 < after.duration_sec < 3.0
    finally:
        await engine.close()


async def test_a_greeting_is_cleaned_like_a_turn_before_it_is_spoken() -> None:
    engine = Counting()
    welcome = speaker(engine)
    await welcome.speak("Hi! 😀 I am **Nexy**", "", "")
    silent = await welcome.speak("😀" * 50, "", "")  # nothing left to say after cleaning
    assert "".join(engine.texts) == "Hi! I am Nexy" and silent.chunks == ()


async def test_a_long_greeting_reaches_the_engine_a_sentence_at_a_time() -> None:
    # The engines serve one request at a time: a whole long text as one request would hold
    # the voice for seconds while every turn's speech waits behind it.
    engine = Counting()
    text = "Welcome back. " * 5 + "word " * 150
    await speaker(engine).speak(text, "", "en")
    assert len(engine.texts) >= 7  # five sentences, then 750 characters in pieces
    assert all(len(part) <= 300 for part in engine.texts)
    assert "".join(engine.texts).split() == text.split()
