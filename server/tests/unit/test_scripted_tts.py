"""The scripted engine's tone: cut from one precomputed second, it must stay one seamless wave."""

from __future__ import annotations

import numpy as np
import pytest

from nexy.config import ScriptedTTSSettings
from nexy.providers.tts.base import Voice
from nexy.providers.tts.scripted import ScriptedTTS, _tone, scripted_duration


def direct(start: int, count: int, rate: int) -> np.ndarray:
    t = np.arange(start, start + count, dtype=np.float64) / rate
    return 8000 * np.sin(2 * np.pi * 220 * t) + 2000 * np.sin(2 * np.pi * 440 * t)


@pytest.mark.parametrize("rate", [16000, 22050, 24000])
@pytest.mark.parametrize("start", [0, 1234, 22050 - 10, 3 * 22050 + 7])
def test_tone_matches_the_wave_at_any_offset_including_the_wrap(rate: int, start: int) -> None:
    got = np.frombuffer(_tone(start, 500, rate), dtype="<i2").astype(np.float64)
    assert got.size == 500
    assert np.max(np.abs(got - direct(start, 500, rate))) <= 65  # int16 rounding + anti-zero nudge
    assert np.all(got != 0)  # never a silent sample: the client skips all-silent chunks


async def test_pieces_join_into_the_whole_duration() -> None:
    engine = ScriptedTTS(ScriptedTTSSettings(first_chunk_ms=0, realtime_factor=0))
    text = "A sentence of some length."
    pieces = [piece async for piece in engine.synthesize(text, Voice(language="en"))]
    joined = b"".join(pieces)
    assert len(joined) == 2 * round(scripted_duration(text) * engine.sample_rate)
    assert joined == _tone(0, len(joined) // 2, engine.sample_rate)
