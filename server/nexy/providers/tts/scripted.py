"""A deterministic TTS for tests and load tests: a non-silent tone whose length follows the text.

Knobs (SPEC §10b): time to the first chunk, and the real-time factor (synthesis time divided by
audio duration; 0 means instant).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator

import numpy as np

from nexy.config import ScriptedTTSSettings
from nexy.providers.pacing import Pacer
from nexy.providers.tts.base import Voice

SECONDS_PER_CHAR = 0.06  # roughly conversational speech
MIN_SECONDS = 0.2
CHUNK_SECONDS = 0.05


def scripted_duration(text: str) -> float:
    """Seconds of audio the scripted engine produces for ``text``."""
    return max(MIN_SECONDS, SECONDS_PER_CHAR * len(text.strip()))


class ScriptedTTS:
    """Streams a 220 Hz tone in 50 ms pieces at the engine's native 22050 Hz."""

    name = "scripted"
    sample_rate = 22050

    def __init__(self, settings: ScriptedTTSSettings) -> None:
        self._settings = settings

    async def synthesize(self, text: str, voice: Voice) -> AsyncGenerator[bytes, None]:
        if not text.strip():
            return
        total = round(scripted_duration(text) * self.sample_rate)
        step = round(CHUNK_SECONDS * self.sample_rate)
        first = self._settings.first_chunk_ms / 1000
        factor = self._settings.realtime_factor
        pacer = Pacer()
        for start in range(0, total, step):
            count = min(step, total - start)
            # The first piece comes at first_chunk_ms; later ones follow at the real-time factor.
            await pacer.until(first + start / self.sample_rate * factor)
            yield _tone(start, count, self.sample_rate)


def _tone(start: int, count: int, rate: int) -> bytes:
    """``count`` samples of the tone from sample ``start``, cut from one precomputed second."""
    second = _one_second(rate)
    offset, size = (start % rate) * 2, count * 2
    pcm = second[offset : offset + size]
    while len(pcm) < size:  # past the end of the second: it repeats from its start
        pcm += second[: size - len(pcm)]
    return pcm


@functools.cache
def _one_second(rate: int) -> bytes:
    # 220 and 440 Hz both fit a whole number of periods into one second, so the second repeats
    # seamlessly; computing it once keeps a load test's CPU on the pipeline, not on the fake.
    t = np.arange(rate, dtype=np.float64) / rate
    wave = 8000 * np.sin(2 * np.pi * 220 * t) + 2000 * np.sin(2 * np.pi * 440 * t)
    # Keep every sample away from zero so no chunk is ever all-silent (the client skips those).
    wave = np.where(np.abs(wave) < 64, np.copysign(64, wave + 1e-9), wave)
    pcm: bytes = wave.astype("<i2").tobytes()
    return pcm
