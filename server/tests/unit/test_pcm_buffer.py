"""The utterance buffer between engine and speaker, and bulk conversion into wire messages."""

from __future__ import annotations

import asyncio

import numpy as np

from nexy.providers.tts.audio import PcmFormatter
from nexy.turn.pcm_buffer import PcmBuffer
from tests.waiting import eventually

PIECE = b"\x10\x20" * 100  # 200 bytes


async def test_the_first_piece_wakes_the_reader_at_once() -> None:
    buffer = PcmBuffer(10_000)
    reader = asyncio.create_task(buffer.take())
    await asyncio.sleep(0)
    await buffer.put(PIECE)
    assert await asyncio.wait_for(reader, 1) == (PIECE, False)


async def test_the_reader_waits_for_what_it_wants_then_gets_it_all() -> None:
    buffer = PcmBuffer(10_000)
    reader = asyncio.create_task(buffer.take(1000))
    for _ in range(4):  # 800 bytes: under the step
        await buffer.put(PIECE)
        await asyncio.sleep(0)
    assert not reader.done()
    await buffer.put(PIECE)  # 1000 bytes
    assert await asyncio.wait_for(reader, 1) == (PIECE * 5, False)


async def test_the_end_wakes_the_reader_with_what_is_left() -> None:
    buffer = PcmBuffer(10_000)
    await buffer.put(PIECE)
    reader = asyncio.create_task(buffer.take(1000))
    await asyncio.sleep(0)
    assert not reader.done()
    buffer.end()
    assert await asyncio.wait_for(reader, 1) == (PIECE, True)
    assert await buffer.take() == (b"", True)


async def test_the_writer_waits_at_the_bound_until_the_reader_takes() -> None:
    buffer = PcmBuffer(400)
    await buffer.put(PIECE)
    await buffer.put(PIECE)  # 400 bytes: at the bound
    writer = asyncio.create_task(buffer.put(PIECE))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not writer.done()
    assert await buffer.take() == (PIECE * 2, False)
    await eventually(writer.done)
    assert await buffer.take() == (PIECE, False)


def tone(seconds: float, rate: int) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (8000 * np.sin(2 * np.pi * 220 * t) + 64).astype("<i2").tobytes()


def test_audio_converted_together_leaves_in_larger_messages_after_a_small_first_one() -> None:
    chunk, message = 9600, 48000  # 100 ms and 500 ms at 48 kHz
    bulk = PcmFormatter(22050, 48000, chunk, message_bytes=message)
    sent = bulk.push(tone(2.0, 22050)) + bulk.flush()
    assert len(sent[0]) <= chunk  # the first audio is never held back to fill a message
    assert all(len(m) <= message and len(m) % 2 == 0 for m in sent)
    assert len(sent) <= 2 + 2.0 / 0.5
    plain = PcmFormatter(22050, 48000, chunk)
    same = plain.push(tone(2.0, 22050)) + plain.flush()
    assert b"".join(sent) == b"".join(same)  # the same audio, only cut differently
    assert max(len(m) for m in same) <= chunk


async def test_the_speaker_takes_only_what_makes_a_chunk_and_sends_the_same_audio() -> None:
    audio, piece = tone(3.0, 22050), 2204  # 50 ms engine pieces, as the scripted engine makes
    every_piece = PcmFormatter(22050, 48000, 9600, message_bytes=48000)
    expected = [
        m for i in range(0, len(audio), piece) for m in every_piece.push(audio[i : i + piece])
    ]
    expected += every_piece.flush()

    buffer, fmt = PcmBuffer(1_000_000), PcmFormatter(22050, 48000, 9600, message_bytes=48000)
    sent: list[bytes] = []
    takes = 0

    async def speaker() -> None:
        nonlocal takes
        ended = False
        while not ended:
            pcm, ended = await buffer.take(fmt.wanted_bytes())
            takes += 1
            assert not pcm or ended or len(pcm) >= 2  # woken with something to convert
            sent.extend(fmt.push(pcm) + (fmt.flush() if ended else []))

    reader = asyncio.create_task(speaker())
    for i in range(0, len(audio), piece):
        await buffer.put(audio[i : i + piece])
        await asyncio.sleep(0)
    buffer.end()
    await reader
    assert b"".join(sent) == b"".join(expected)
    assert all(len(m) <= 9600 for m in sent)  # streamed: never more than one chunk waited
    pieces = -(-len(audio) // piece)
    assert takes < pieces * 0.7  # about one wake per 100 ms chunk, not one per 50 ms piece


def test_the_formatter_wants_any_audio_first_then_what_completes_a_chunk() -> None:
    fmt = PcmFormatter(22050, 48000, 9600)
    assert fmt.wanted_bytes() == 1
    assert fmt.push(tone(0.05, 22050))  # the first audio leaves at once
    wanted = fmt.wanted_bytes()
    assert 0 < wanted <= 4410 and wanted % 2 == 0
    assert fmt.push(tone(1.0, 22050)[: wanted - 2]) == []  # short of a chunk: nothing yet
