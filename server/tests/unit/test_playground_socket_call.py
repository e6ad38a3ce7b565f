"""The playground's stand-in for a gRPC call context: responses → socket messages, and the
terminal message for every way StreamAudio can end."""

from __future__ import annotations

import json

import grpc

from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.http.playground.turn_socket import SocketCall


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[object] = []

    async def send_str(self, data: str) -> None:
        self.sent.append(json.loads(data))

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)


def _call() -> tuple[SocketCall, FakeSocket]:
    socket = FakeSocket()
    return SocketCall(socket, "ipv4:127.0.0.1:5000"), socket  # type: ignore[arg-type]


def _audio(pcm: bytes, rate: int) -> pb.StreamResponse:
    chunk = pb.AudioChunk(audio_data=pcm, dtype="int16", shape=[len(pcm) // 2])
    chunk.sample_rate, chunk.channels = rate, 1
    return pb.StreamResponse(audio_chunk=chunk)


async def test_audio_is_announced_once_per_rate_then_sent_as_frames():
    call, socket = _call()
    for pcm, rate in ((b"\x01\x00", 48000), (b"\x02\x00", 48000), (b"\x03\x00", 24000)):
        await call.write(_audio(pcm, rate))
    formats = [m["sample_rate"] for m in socket.sent if isinstance(m, dict)]
    assert formats == [48000, 24000]
    assert [m for m in socket.sent if isinstance(m, bytes)] == [
        b"\x01\x00",
        b"\x02\x00",
        b"\x03\x00",
    ]
    assert call.peer() == "ipv4:127.0.0.1:5000"


async def test_an_error_message_waits_for_its_status():
    call, socket = _call()
    await call.write(pb.StreamResponse(error_message="interrupted"))
    assert socket.sent == []  # the servicer sets the code right after writing the message
    call.set_code(grpc.StatusCode.CANCELLED)
    call.set_details("interrupted")
    await call.finish()
    assert socket.sent == [{"type": "error_message", "code": "CANCELLED", "message": "interrupted"}]


async def test_a_status_without_a_message_is_sent_with_its_details():
    # An idle or slow client: gRPC ends those streams with the status details only.
    call, socket = _call()
    call.set_code(grpc.StatusCode.DEADLINE_EXCEEDED)
    call.set_details("the client read nothing for 30 s; the stream was ended")
    await call.finish()
    assert socket.sent == [
        {
            "type": "error_message",
            "code": "DEADLINE_EXCEEDED",
            "message": "the client read nothing for 30 s; the stream was ended",
        }
    ]


async def test_no_terminal_at_all_becomes_internal():
    call, socket = _call()
    await call.write(pb.StreamResponse(text_chunk="Hi"))
    await call.finish()
    assert socket.sent[-1] == {
        "type": "error_message",
        "code": "INTERNAL",
        "message": "internal server error",
    }


async def test_an_end_message_is_the_only_terminal():
    call, socket = _call()
    await call.write(pb.StreamResponse(end_message="completed"))
    await call.finish()
    assert socket.sent == [{"type": "end_message", "message": "completed"}]
    assert call.ended
