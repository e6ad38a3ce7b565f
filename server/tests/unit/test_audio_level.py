"""Tests for the wire level: one loudness gain per utterance and a peak ceiling, on every path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator

import numpy as np
import numpy.typing as npt
import pytest

from nexy.config import PiperSettings, WelcomeSettings
from nexy.events import AudioChunk
from nexy.providers.tts.audio import PcmFormatter, chunk_bytes_for
from nexy.providers.tts.base import Voice
from nexy.providers.tts.espeak import EspeakTTS
from nexy.providers.tts.level import WIRE_LEVEL, Level
from nexy.providers.tts.piper import PiperTTS
from nexy.turn.speech import SpeechFormat, Voicebox
from nexy.turn.welcome import WelcomeSpeaker

SRC = 22050
DST = 48000
CHUNK = chunk_bytes_for(DST, 100)
CEILING = WIRE_LEVEL.ceiling
TARGET_RMS = 32767 * 10 ** (WIRE_LEVEL.target_dbfs / 20)
SENTENCE = "Hello, I opened the browser for you and set a timer for ten minutes."


def tone(seconds: float, amplitude: float, rate: int = SRC) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * rate)) / rate
    return np.clip(np.rint(amplitude * np.sin(2 * np.pi * 220 * t)), -32768, 32767).astype(np.int16)


def square(seconds: float, rate: int = SRC) -> npt.NDArray[np.int16]:
    """Full scale both ways: the worst case for peaks, and for resampler overshoot."""
    t = np.arange(int(seconds * rate)) / rate
    return np.where(np.sin(2 * np.pi * 300 * t) >= 0, 32767, -32768).astype(np.int16)


def levelled(*pieces: npt.NDArray[np.int16], src: int = SRC, dst: int = DST) -> np.ndarray:
    """One utterance pushed piece by piece through a wire formatter, as int16 samples."""
    fmt = PcmFormatter(src, dst, CHUNK, level=WIRE_LEVEL)
    chunks: list[bytes] = []
    for piece in pieces:
        chunks += fmt.push(piece.astype("<i2").tobytes())
    chunks += fmt.flush()
    assert all(len(c) <= CHUNK for c in chunks)
    return np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.int16)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def db(ratio: float) -> float:
    return 20 * float(np.log10(ratio))


@pytest.mark.parametrize("dst", [DST, SRC, 16000])
def test_full_scale_input_stays_below_the_ceiling(dst: int) -> None:
    out = levelled(*np.array_split(square(1.0), 20), dst=dst)
    assert out.size > 0.9 * dst
    assert int(np.abs(out.astype(np.int32)).max()) <= CEILING < 32767


def test_loud_speech_is_brought_down_to_the_target() -> None:
    out = levelled(tone(1.0, 12000))  # about -11 dBFS
    assert abs(db(rms(out) / TARGET_RMS)) < 0.5
    assert np.abs(out.astype(np.int32)).max() <= CEILING


def test_quiet_input_is_raised_to_the_target() -> None:
    source = tone(1.0, 1500)  # about -27 dBFS: within the boost
    out = levelled(source)
    assert abs(db(rms(out) / TARGET_RMS)) < 0.5


def test_very_quiet_input_is_raised_by_the_bounded_boost_only() -> None:
    source = tone(1.0, 300)  # about -40.8 dBFS: the boost cannot reach the target
    out = levelled(source)
    assert abs(db(rms(out) / rms(source)) - WIRE_LEVEL.max_boost_db) < 0.3
    assert rms(out) < TARGET_RMS


def test_quiet_speech_with_sharp_peaks_is_raised_but_never_clips() -> None:
    source = tone(1.0, 800)
    source[::5000] = 32767  # rare clicks at full scale in otherwise quiet speech
    out = levelled(*np.array_split(source, 20))
    assert rms(out) > 2.5 * rms(source)
    assert np.abs(out.astype(np.int32)).max() <= CEILING


def test_gain_is_held_for_the_utterance_no_pumping() -> None:
    # Loud first, then 12 dB quieter: a per-piece gain would lift the quiet part back up.
    loud, quiet = tone(0.5, 12000), tone(0.5, 3000)
    out = levelled(*np.array_split(np.concatenate([loud, quiet]), 20))
    half = out.size // 2
    edge = DST // 50  # leave the filter's transition at the joint out
    assert db(rms(out[half + edge :]) / rms(out[: half - edge])) == pytest.approx(-12.04, abs=0.3)


def test_the_first_piece_is_not_held_back_for_the_level() -> None:
    # A voice that streams at real-time speed hands over 50 ms at a time: waiting for the
    # analysis window would add its length to the time to first audio.
    fmt = PcmFormatter(SRC, DST, CHUNK, level=WIRE_LEVEL)
    first = fmt.push(tone(0.05, 3000).astype("<i2").tobytes())
    assert first and rms(np.frombuffer(b"".join(first), dtype="<i2")) > 1.5 * rms(tone(0.05, 3000))


def test_the_gain_settles_without_a_step() -> None:
    # A quiet onset, then louder speech inside the analysis window: the gain moves by a ramp.
    onset, speech = tone(0.05, 1000), tone(0.5, 9000)
    out = levelled(onset, *np.array_split(speech, 10)).astype(np.float64)
    steps = np.abs(np.diff(out))
    assert steps.max() < 2 * np.abs(np.diff(levelled(speech).astype(np.float64))).max()


def test_piece_sizes_after_the_first_do_not_change_the_audio() -> None:
    # Piper hands over whole sentences, eSpeak 60 ms pieces: once the gain is set by the first
    # piece, how the rest is cut must not matter (no per-piece gain, no seams).
    first, rest = tone(0.4, 20000), tone(0.8, 4000)
    whole = levelled(first, rest)
    assert np.array_equal(levelled(first, *np.array_split(rest, 60)), whole)
    assert np.array_equal(levelled(first, *np.array_split(rest, 3)), whole)


def test_every_utterance_gets_its_own_gain() -> None:
    fmt = PcmFormatter(SRC, DST, CHUNK, level=WIRE_LEVEL)
    levels = []
    for amplitude in (12000, 1500):
        chunks = fmt.push(tone(0.6, amplitude).tobytes()) + fmt.flush()
        levels.append(rms(np.frombuffer(b"".join(chunks), dtype="<i2")))
    assert all(abs(db(level / TARGET_RMS)) < 0.5 for level in levels)


def test_without_a_level_the_formatter_leaves_the_level_alone() -> None:
    # Formatters inside engine chains must not level: the wire formatter does it, once.
    fmt = PcmFormatter(SRC, SRC, CHUNK)
    source = square(0.2)
    out = np.frombuffer(b"".join(fmt.push(source.tobytes()) + fmt.flush()), dtype="<i2")
    assert np.array_equal(out, source)


def test_level_rejects_inconsistent_settings() -> None:
    with pytest.raises(ValueError):
        Level(target_dbfs=-0.5, ceiling_dbfs=-1.0)
    with pytest.raises(ValueError):
        Level(knee_dbfs=-0.5)


class FullScaleTTS:
    """An engine whose output touches full scale, as Piper's does."""

    name = "loud"
    sample_rate = SRC

    async def synthesize(self, text: str, voice: Voice) -> AsyncGenerator[bytes, None]:
        for piece in np.array_split(square(0.6), 12):
            yield piece.tobytes()


async def test_turn_speech_is_levelled() -> None:
    sent: list[AudioChunk] = []

    async def sink(chunk: AudioChunk) -> None:
        sent.append(chunk)

    voicebox = Voicebox(FullScaleTTS(), SpeechFormat(DST, CHUNK, "en"))
    utterance = voicebox.utterance("Hello.")
    async with asyncio.TaskGroup() as group:
        utterance.start(voicebox, group)
        await utterance.send(voicebox.formatter(), sink)
    out = np.frombuffer(b"".join(c.pcm for c in sent), dtype="<i2")
    assert out.size and np.abs(out.astype(np.int32)).max() <= CEILING


async def test_welcome_audio_is_levelled() -> None:
    speaker = WelcomeSpeaker(FullScaleTTS(), WelcomeSettings(), sample_rate=DST, chunk_ms=100)
    audio = await speaker.speak("Hello.", "", "en")
    out = np.frombuffer(b"".join(audio.chunks), dtype="<i2")
    assert out.size and np.abs(out.astype(np.int32)).max() <= CEILING


@pytest.fixture(scope="module")
def engines() -> Iterator[tuple[PiperTTS, EspeakTTS]]:
    """The two embedded engines, started once: loading Piper's model is the slow part."""
    piper, espeak = PiperTTS(PiperSettings()), EspeakTTS()
    asyncio.run(piper.start())
    yield piper, espeak
    asyncio.run(piper.close())


async def spoken(engine: PiperTTS | EspeakTTS, text: str) -> np.ndarray:
    pieces = [np.frombuffer(pcm, dtype="<i2") async for pcm in engine.synthesize(text, Voice("en"))]
    return levelled(*pieces, src=engine.sample_rate)


async def test_piper_and_espeak_sound_equally_loud_without_clipping(
    engines: tuple[PiperTTS, EspeakTTS],
) -> None:
    piper, espeak = engines
    await espeak.start()
    try:
        by_piper, by_espeak = await spoken(piper, SENTENCE), await spoken(espeak, SENTENCE)
    finally:
        await espeak.close()
    assert abs(db(rms(by_piper) / rms(by_espeak))) < 3.0
    for out in (by_piper, by_espeak):
        assert out.size > DST  # a real sentence, over a second long
        assert np.abs(out.astype(np.int32)).max() <= CEILING
