"""The utterance buffer between engine and speaker, and bulk conversion into wire messages."""

from __future__ import annotations

import asyncio

import numpy as np

from nexy.providers.tts.audio import PcmFormatter
from nexy.turn.pcm_buffer import PcmBuffer
from tests.waiting import eventually

PIECE = b"\x10\x20" * 100  # 200 bytes


async def test_the_first_piece_wakes_the_reader_at_once() -> None:
    buffer = PcmBuffer(bound_bytes=10_000, step_bytes=1000)
    reader = asyncio.create_task(buffer.take())
    await asyncio.sleep(0)
    await buffer.put(PIECE)
    assert await asyncio.wait_for(reader, 1) == (PIECE, False)


async def test_after_the_first_take_the_reader_waits_for_a_step_then_gets_it_all() -> None:
    buffer = PcmBuffer(bound_bytes=10_000, step_bytes=1000)
    await buffer.put(PIECE)
    await buffer.take()
    reader = asyncio.create_task(buffer.take())
    for _ in range(4):  # 800 bytes: under the step
        await buffer.put(PIECE)
        await asyncio.sleep(0)
    assert not reader.done()
    await buffer.put(PIECE)  # 1000 bytes
    assert await asyncio.wait_for(reader, 1) == (PIECE * 5, False)


async def test_the_end_wakes_the_reader_with_what_is_left() -> None:
    buffer = PcmBuffer(bound_bytes=10_000, step_bytes=1000)
    await buffer.put(PIECE)
    await buffer.take()
    await buffer.put(PIECE)
    reader = asyncio.create_task(buffer.take())
    await asyncio.sleep(0)
    assert not reader.done()
    buffer.end()
    assert await asyncio.wait_for(reader, 1) == (PIECE, True)
    assert await buffer.take() == (b"", True)


async def test_the_writer_waits_at_the_bound_until_the_reader_takes() -> None:
    buffer = PcmBuffer(bound_bytes=400, step_bytes=100)
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


def test_streamed_pieces_still_leave_as_whole_chunks_with_a_message_size() -> None:
    fmt = PcmFormatter(22050, 48000, 9600, message_bytes=48000)
    audio = tone(1.0, 22050)
    piece = 2204  # 50 ms engine pieces, as the scripted engine makes
    sent = [m for i in range(0, len(audio), piece) for m in fmt.push(audio[i : i + piece])]
    assert sent and all(len(m) <= 9600 for m in sent)  # never more than what was waiting
