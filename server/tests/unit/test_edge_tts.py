"""Tests for the streaming MP3 decoder and the Edge engine, against a local fake of the service."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import edge_tts.communicate
import edge_tts.constants
import miniaudio  # type: ignore[import-untyped]
import numpy as np
import pytest

from nexy.components import ComponentStatus, State
from nexy.config import EdgeSettings
from nexy.providers.tts.audio import pcm_duration_seconds
from nexy.providers.tts.base import TTSError, TTSProvider, Voice
from nexy.providers.tts.edge import EdgeTTS
from nexy.providers.tts.mp3 import Mp3StreamDecoder
from tests.fakes.edge_server import FakeEdgeServer, tone_mp3

FRAME = 576  # samples per MP3 frame at 24 kHz (MPEG-2 Layer III)
SETTINGS = EdgeSettings(
    voices={"en": "en-US-AriaNeural", "ru": "ru-RU-DmitryNeural"},
    default_voice="en-GB-SoniaNeural",
    rate="-20%",
)


def peak_hz(pcm: bytes, rate: int) -> float:
    """The strongest frequency in ``pcm``."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum)) * rate / samples.size


def decode_in_pieces(mp3: bytes, out_rate: int, piece: int) -> tuple[bytes, int]:
    """All PCM, and how many MP3 bytes had been pushed when the first PCM came out."""
    decoder = Mp3StreamDecoder(out_rate)
    out, first_at = [], -1
    for start in range(0, len(mp3), piece):
        pcm = decoder.push(mp3[start : start + piece])
        if pcm and first_at < 0:
            first_at = start + piece
        out.append(pcm)
    out.append(decoder.flush())
    return b"".join(out), first_at


def free_port() -> int:
    """A local port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def started(endpoint: str, settings: EdgeSettings = SETTINGS) -> EdgeTTS:
    engine = EdgeTTS(settings, endpoint=endpoint)
    await engine.start()
    return engine


async def collect(engine: EdgeTTS, text: str, voice: Voice) -> bytes:
    return b"".join([pcm async for pcm in engine.synthesize(text, voice)])


@pytest.fixture
async def fake() -> AsyncIterator[FakeEdgeServer]:
    async with FakeEdgeServer(tone_mp3(1.0), delay_seconds=0.02) as server:
        yield server


# --- the decoder ---


@pytest.mark.parametrize("out_rate", [24000, 48000])
def test_decoder_streams_a_tone_at_the_right_length_and_pitch(out_rate: int) -> None:
    mp3 = tone_mp3(1.0, 440.0)
    pcm, first_at = decode_in_pieces(mp3, out_rate, piece=100)
    assert 0 < first_at <= 400, "audio must come out after the first frames, not at the end"
    # LAME adds its encoder delay and pads the last frame: a few frames either way.
    assert abs(len(pcm) // 2 - out_rate) <= 3 * FRAME * out_rate // 24000
    assert peak_hz(pcm, out_rate) == pytest.approx(440.0, abs=3.0)


@pytest.mark.parametrize("piece", [1, 7, 333, 100_000])
def test_decoder_matches_a_whole_file_decode_sample_for_sample(piece: int) -> None:
    mp3 = tone_mp3(0.5, 1000.0)
    whole = np.frombuffer(miniaudio.mp3_read_s16(mp3).samples, dtype=np.int16)
    sounding = np.flatnonzero(whole)  # PcmFormatter at threshold 0 drops only outer exact zeros
    expected = whole[sounding[0] : sounding[-1] + 1].astype("<i2").tobytes()
    pcm, _ = decode_in_pieces(mp3, 24000, piece)
    assert pcm == expected


def test_decoder_downmixes_stereo_and_resamples() -> None:
    mp3 = tone_mp3(1.0, 660.0, sample_rate=44100, kbps=128, channels=2)
    pcm, _ = decode_in_pieces(mp3, 24000, piece=1000)
    assert pcm_duration_seconds(len(pcm), 24000) == pytest.approx(1.0, abs=0.1)
    assert peak_hz(pcm, 24000) == pytest.approx(660.0, abs=3.0)


def test_decoder_skips_junk_between_frames() -> None:
    mp3 = tone_mp3(1.0)
    junk = np.random.default_rng(3).integers(0, 256, 700, dtype=np.uint8).tobytes()
    clean, _ = decode_in_pieces(mp3, 24000, piece=500)
    damaged, _ = decode_in_pieces(mp3[:3000] + junk + mp3[3000:], 24000, piece=500)
    assert len(clean) - 8 * FRAME * 2 <= len(damaged) <= len(clean)


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(7).integers(0, 256, 20_000, dtype=np.uint8).tobytes(),
        b"this is not an MP3 stream " * 500,
        b"\xff\xfb\x90",
    ],
    ids=["random", "text", "stub"],
)
def test_decoder_rejects_corrupt_input(data: bytes) -> None:
    decoder = Mp3StreamDecoder(24000)
    with pytest.raises(TTSError):
        for start in range(0, len(data), 512):
            assert decoder.push(data[start : start + 512]) == b""
        decoder.flush()


def test_decoder_of_nothing_is_silent_and_reusable() -> None:
    decoder = Mp3StreamDecoder(24000)
    assert decoder.flush() == b""
    first = decoder.push(tone_mp3(0.3)) + decoder.flush()
    second = decoder.push(tone_mp3(0.3)) + decoder.flush()
    assert first == second != b""


# --- the engine ---


def test_satisfies_the_provider_protocol_and_picks_voices() -> None:
    engine = EdgeTTS(SETTINGS)
    provider: TTSProvider = engine
    assert (provider.name, provider.sample_rate) == ("edge", 24000)
    assert engine.status() == ComponentStatus(State.DOWN, "not started")
    assert engine.voice_name_for(Voice("ru")) == "ru-RU-DmitryNeural"
    assert engine.voice_name_for(Voice("en-US")) == "en-US-AriaNeural"
    assert engine.voice_name_for(Voice("RU_ru")) == "ru-RU-DmitryNeural"
    assert engine.voice_name_for(Voice("de")) == "en-GB-SoniaNeural"
    assert engine.voice_name_for(Voice("ru", "uk-UA-PolinaNeural")) == "uk-UA-PolinaNeural"


async def test_lifecycle_checks_configuration_without_network() -> None:
    engine = EdgeTTS(SETTINGS, endpoint="ws://127.0.0.1:9/")
    with pytest.raises(TTSError, match="not started"):
        await collect(engine, "Hello.", Voice())
    await engine.start()
    assert engine.status().state is State.READY
    await engine.close()
    assert engine.status() == ComponentStatus(State.DOWN, "closed")
    with pytest.raises(TTSError, match="not started"):
        await collect(engine, "Hello.", Voice())
    bad_voice = EdgeTTS(EdgeSettings(voices={"ru": "Svetlana"}))
    with pytest.raises(TTSError, match="Svetlana"):
        await bad_voice.start()
    assert bad_voice.status().state is State.DOWN
    with pytest.raises(TTSError, match="ws://"):
        await EdgeTTS(SETTINGS, endpoint="http://127.0.0.1:9/").start()


async def test_audio_streams_before_the_utterance_has_arrived(fake: FakeEdgeServer) -> None:
    engine = await started(fake.endpoint)
    chunks: list[bytes] = []
    async for pcm in engine.synthesize("Hello there.", Voice("en")):
        if not chunks:
            assert not fake.last_audio_sent.is_set(), "first audio waited for the whole MP3"
        chunks.append(pcm)
    assert len(chunks) > 2
    pcm = b"".join(chunks)
    assert pcm_duration_seconds(len(pcm), 24000) == pytest.approx(1.0, abs=0.1)
    assert peak_hz(pcm, 24000) == pytest.approx(440.0, abs=3.0)
    await asyncio.wait_for(fake.client_closed.wait(), 2)
    assert not fake.finished_early


async def test_russian_uses_the_configured_voice_and_rate(fake: FakeEdgeServer) -> None:
    engine = await started(fake.endpoint)
    await collect(engine, "Привет, как дела?", Voice("ru"))
    await collect(engine, "Hi & bye", Voice("en-US"))
    ru, en = fake.requests
    assert (ru.voice, ru.rate, ru.text) == ("ru-RU-DmitryNeural", "-20%", "Привет, как дела?")
    assert (en.voice, en.text) == ("en-US-AriaNeural", "Hi &amp; bye")
    assert ru.speech_config["context"]["synthesis"]["audio"]["outputFormat"] == (
        "audio-24khz-48kbitrate-mono-mp3"
    )


async def test_resamples_to_a_configured_native_rate(fake: FakeEdgeServer) -> None:
    engine = EdgeTTS(SETTINGS, sample_rate=48000, endpoint=fake.endpoint)
    await engine.start()
    pcm = await collect(engine, "Hello.", Voice())
    assert pcm_duration_seconds(len(pcm), 48000) == pytest.approx(1.0, abs=0.1)
    assert peak_hz(pcm, 48000) == pytest.approx(440.0, abs=3.0)


async def test_unreachable_endpoint_fails_fast() -> None:
    engine = await started(f"ws://127.0.0.1:{free_port()}/edge/v1")
    began = time.monotonic()
    with pytest.raises(TTSError, match="cannot reach Edge TTS"):
        await collect(engine, "Hello.", Voice())
    assert time.monotonic() - began < 2.0


@pytest.mark.parametrize(
    ("failure", "message"),
    [("no_audio", "NoAudioReceived"), ("http_404", "HTTP 404"), ("http_403", "HTTP 403")],
)
async def test_service_errors_become_short_tts_errors(failure: str, message: str) -> None:
    async with FakeEdgeServer(tone_mp3(0.2), failure=failure) as server:  # type: ignore[arg-type]
        engine = await started(server.endpoint)
        with pytest.raises(TTSError, match=message) as caught:
            await collect(engine, "Hello.", Voice())
    assert "127.0.0.1" not in str(caught.value)


async def test_closing_the_stream_closes_the_websocket() -> None:
    async with FakeEdgeServer(tone_mp3(4.0), delay_seconds=0.05) as server:
        engine = await started(server.endpoint)
        stream = engine.synthesize("A long answer.", Voice())
        assert await anext(stream)
        began = time.monotonic()
        await stream.aclose()
        assert server.open_websockets == 0, "aclose() itself must close the websocket"
        assert time.monotonic() - began < 1.0
        await asyncio.wait_for(server.client_closed.wait(), 1.0)
        assert server.finished_early
        assert server.audio_messages_sent < server.audio_messages_total


async def test_cancelling_the_consumer_closes_the_websocket() -> None:
    async with FakeEdgeServer(tone_mp3(4.0), delay_seconds=0.05) as server:
        engine = await started(server.endpoint)
        first_audio = asyncio.Event()

        async def consume() -> None:
            async for _ in engine.synthesize("A long answer.", Voice()):
                first_audio.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first_audio.wait(), 2.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.client_closed.wait(), 1.0)
        assert server.finished_early


async def test_concurrent_calls_to_other_endpoints_do_not_leak() -> None:
    original_url = edge_tts.constants.WSS_URL
    async with (
        FakeEdgeServer(tone_mp3(0.5), delay_seconds=0.02) as one,
        FakeEdgeServer(tone_mp3(0.5, 880.0), delay_seconds=0.02) as two,
    ):
        first, second = await started(one.endpoint), await started(two.endpoint)
        low, high = await asyncio.gather(
            collect(first, "One.", Voice()), collect(second, "Two.", Voice())
        )
    assert (len(one.requests), len(two.requests)) == (1, 1)
    assert peak_hz(low, 24000) == pytest.approx(440.0, abs=3.0)
    assert peak_hz(high, 24000) == pytest.approx(880.0, abs=3.0)
    assert vars(edge_tts.communicate)["WSS_URL"] == original_url  # nothing was patched
