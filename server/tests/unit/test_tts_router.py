"""Tests for the per-language TTS router: real Piper and eSpeak NG, plus small fake engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator

import numpy as np
import pytest

from nexy.components import READY, ComponentStatus, State
from nexy.config import PiperSettings
from nexy.providers.tts.audio import pcm_duration_seconds
from nexy.providers.tts.base import TTSError, TTSProvider, Voice
from nexy.providers.tts.espeak import EspeakTTS
from nexy.providers.tts.piper import PiperTTS
from nexy.providers.tts.router import LanguageRouterTTS


class Recording:
    """Wraps a real engine and remembers the texts it was asked to speak."""

    def __init__(self, engine: PiperTTS | EspeakTTS) -> None:
        self.engine = engine
        self.name = engine.name
        self.sample_rate = engine.sample_rate
        self.texts: list[str] = []

    async def start(self) -> None:
        await self.engine.start()
        self.sample_rate = self.engine.sample_rate

    def status(self) -> ComponentStatus:
        return self.engine.status()

    async def close(self) -> None:
        await self.engine.close()

    async def synthesize(self, text: str, voice: Voice) -> AsyncGenerator[bytes, None]:
        self.texts.append(text)
        async for pcm in self.engine.synthesize(text, voice):
            yield pcm


class Fake:
    """A tone engine that can fail to start, fail before its audio or fail after some of it."""

    def __init__(
        self,
        name: str,
        sample_rate: int = 22050,
        *,
        seconds: float = 0.5,
        fail: str = "",  # "", "start", "before" or "after"
    ) -> None:
        self.name, self.sample_rate, self.seconds, self.fail = name, sample_rate, seconds, fail
        self.starts = 0
        self.voices: list[Voice] = []
        self.closed_streams = 0
        self._status = ComponentStatus(State.DOWN, "not started")

    async def start(self) -> None:
        self.starts += 1
        if self.fail == "start":
            self._status = ComponentStatus(State.DOWN, "model missing")
            raise TTSError("model missing")
        self._status = READY

    def status(self) -> ComponentStatus:
        return self._status

    async def close(self) -> None:
        self._status = ComponentStatus(State.DOWN, "closed")

    async def synthesize(self, text: str, voice: Voice) -> AsyncGenerator[bytes, None]:
        self.voices.append(voice)
        if self.fail == "before":
            raise RuntimeError("engine crashed")
        total = round(self.seconds * self.sample_rate)
        step = self.sample_rate // 20  # 50 ms pieces
        try:
            for start in range(0, total, step):
                t = np.arange(start, min(start + step, total)) / self.sample_rate
                yield (8000 * np.sin(2 * np.pi * 220 * t) + 100).astype("<i2").tobytes()
                await asyncio.sleep(0)
                if self.fail == "after":
                    raise RuntimeError("engine crashed mid-utterance")
        finally:
            self.closed_streams += 1


async def collect(tts: TTSProvider, text: str, voice: Voice) -> bytes:
    return b"".join([chunk async for chunk in tts.synthesize(text, voice)])


def loudness(pcm: bytes) -> int:
    return int(np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32)).max(initial=0))


@pytest.fixture
async def real() -> AsyncIterator[tuple[LanguageRouterTTS, Recording, Recording]]:
    piper, espeak = Recording(PiperTTS(PiperSettings())), Recording(EspeakTTS())
    router = LanguageRouterTTS({"en": piper}, espeak)
    await router.start()
    yield router, piper, espeak
    await router.close()


async def test_languages_go_to_their_engines(
    real: tuple[LanguageRouterTTS, Recording, Recording],
) -> None:
    router, piper, espeak = real
    provider: TTSProvider = router
    assert provider.name == "piper+espeak"
    assert router.status() == READY
    assert router.sample_rate == 22050
    for language in ("en", "en-US", "en_GB", " EN "):
        assert router.engine_for(Voice(language)) is piper
    for language in ("ru", "de", "de-AT", "xx"):
        assert router.engine_for(Voice(language)) is espeak
    texts = {"en": "Hello there.", "ru": "Привет, как дела?", "de": "Guten Tag, wie geht es?"}
    # Both engines at once: each runs on its own worker thread.
    results = await asyncio.gather(*(collect(router, t, Voice(lang)) for lang, t in texts.items()))
    for pcm in results:
        assert 0.4 <= pcm_duration_seconds(len(pcm), router.sample_rate) <= 4.0
        assert loudness(pcm) > 1000
    assert piper.texts == [texts["en"]]
    assert sorted(espeak.texts) == sorted([texts["ru"], texts["de"]])
    await router.close()
    assert router.status() == ComponentStatus(State.DOWN, "closed")


async def test_empty_text_yields_nothing() -> None:
    routed = Fake("routed")
    router = LanguageRouterTTS({"en": routed}, Fake("fallback"))
    await router.start()
    assert await collect(router, "  ", Voice("en")) == b""
    assert routed.voices == []


async def test_voice_name_is_passed_through() -> None:
    routed, fallback = Fake("routed"), Fake("fallback")
    router = LanguageRouterTTS({"en": routed}, fallback)
    await router.start()
    await collect(router, "Hi.", Voice("en-US", "joe"))
    await collect(router, "Привет.", Voice("ru", "ru"))
    assert routed.voices == [Voice("en-US", "joe")]
    assert fallback.voices == [Voice("ru", "ru")]


async def test_failure_before_audio_falls_back() -> None:
    routed, fallback = Fake("routed", fail="before"), Fake("fallback", seconds=0.4)
    router = LanguageRouterTTS({"en": routed}, fallback)
    await router.start()
    pcm = await collect(router, "Hello.", Voice("en"))
    assert len(routed.voices) == 1
    assert fallback.voices == [Voice("en")]
    assert pcm_duration_seconds(len(pcm), 22050) == pytest.approx(0.4, abs=0.01)


async def test_real_fallback_speaks_when_routed_engine_fails() -> None:
    router = LanguageRouterTTS({"en": Fake("broken", fail="before")}, EspeakTTS())
    await router.start()
    try:
        pcm = await collect(router, "Hello there.", Voice("en"))
        assert loudness(pcm) > 1000
        assert pcm_duration_seconds(len(pcm), router.sample_rate) >= 0.4
    finally:
        await router.close()


async def test_failure_after_audio_is_a_tts_error() -> None:
    routed, fallback = Fake("routed", fail="after"), Fake("fallback")
    router = LanguageRouterTTS({"en": routed}, fallback)
    await router.start()
    received: list[bytes] = []
    with pytest.raises(TTSError, match="routed"):
        async for pcm in router.synthesize("Hello.", Voice("en")):
            received.append(pcm)
    assert len(received) == 1
    assert fallback.voices == []  # the user already heard part of it: no second voice


async def test_fallback_failure_is_a_tts_error() -> None:
    router = LanguageRouterTTS({}, Fake("fallback", fail="before"))
    await router.start()
    with pytest.raises(TTSError, match="fallback"):
        await collect(router, "Hello.", Voice("de"))


async def test_other_rates_are_resampled_to_the_primary() -> None:
    primary, slow = Fake("primary", 22050), Fake("slow", 16000, seconds=1.0)
    router = LanguageRouterTTS({"en": primary, "ru": slow}, Fake("fallback", 22050))
    await router.start()
    assert router.sample_rate == 22050
    pcm = await collect(router, "Привет.", Voice("ru"))
    assert len(pcm) // 2 == pytest.approx(22050, rel=0.01)
    native = await collect(router, "Hello.", Voice("en"))
    assert len(native) // 2 == round(0.5 * 22050)  # same rate: passed through untouched


async def test_closing_the_stream_closes_the_engine_stream() -> None:
    routed = Fake("routed", seconds=5.0)
    router = LanguageRouterTTS({"en": routed}, Fake("fallback"))
    await router.start()
    stream = router.synthesize("A long text.", Voice("en"))
    await anext(stream)
    assert routed.closed_streams == 0
    await stream.aclose()
    assert routed.closed_streams == 1


async def test_routed_engine_that_fails_to_start_degrades() -> None:
    broken, fallback = Fake("piper", fail="start"), Fake("espeak")
    router = LanguageRouterTTS({"en": broken, "fr": broken}, fallback)
    await router.start()
    assert broken.starts == 1 and fallback.starts == 1  # each engine started once
    status = router.status()
    assert status.state is State.DEGRADED
    assert "piper" in status.reason and "model missing" in status.reason
    assert router.engine_for(Voice("en")) is fallback
    pcm = await collect(router, "Hello.", Voice("en"))
    assert pcm and broken.voices == [] and fallback.voices == [Voice("en")]


async def test_fallback_that_fails_to_start_is_a_tts_error() -> None:
    routed = Fake("piper")
    router = LanguageRouterTTS({"en": routed}, Fake("espeak", fail="start"))
    with pytest.raises(TTSError, match="espeak"):
        await router.start()
    assert router.status().state is State.DOWN
    assert "model missing" in router.status().reason


async def test_real_piper_failing_to_start_falls_back_to_espeak() -> None:
    piper = PiperTTS(PiperSettings(model_sha256="0" * 64))
    router = LanguageRouterTTS({"en": piper}, EspeakTTS())
    await router.start()
    try:
        assert router.status().state is State.DEGRADED
        assert "SHA-256" in router.status().reason
        assert loudness(await collect(router, "Hello.", Voice("en"))) > 1000
    finally:
        await router.close()
