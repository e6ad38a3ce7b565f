"""Helpers that speak to the server the way the desktop client does."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import grpc

from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc

HARDWARE_ID = "6B1C2D3E-4F50-4A1B-9C2D-3E4F5A6B7C8D"


def commit(
    prompt: str,
    *,
    session_id: str | None = None,
    hardware_id: str = HARDWARE_ID,
    screenshot: str = "",
) -> pb.StreamRequest:
    """A COMMIT exactly as the real client builds it (empty optional strings present)."""
    return pb.StreamRequest(
        prompt=prompt,
        screenshot=screenshot,
        hardware_id=hardware_id,
        session_id=session_id or str(uuid.uuid4()),
        phase=pb.REQUEST_PHASE_COMMIT,
        chunk_seq=0,
        chunk_text="",
    )


@dataclass
class TurnResult:
    responses: list[pb.StreamResponse] = field(default_factory=list)
    code: grpc.StatusCode | None = None
    details: str = ""

    @property
    def kinds(self) -> list[str]:
        return [r.WhichOneof("content") or "" for r in self.responses]

    @property
    def text(self) -> str:
        return "".join(r.text_chunk for r in self.responses if r.HasField("text_chunk"))

    @property
    def audio(self) -> list[pb.AudioChunk]:
        return [r.audio_chunk for r in self.responses if r.HasField("audio_chunk")]

    def is_spoken_turn(self) -> bool:
        """text, its audio, text, its audio, …, then end_message: the shape of a spoken reply."""
        shape = self.collapsed()
        pairs = shape[:-1]
        return (
            shape[-1:] == ["end_message"]
            and len(pairs) >= 2
            and pairs == ["text_chunk", "audio_chunk"] * (len(pairs) // 2)
        )

    def collapsed(self) -> list[str]:
        """The event sequence with runs of the same kind folded: the turn's shape."""
        shape: list[str] = []
        for kind in self.kinds:
            if not shape or shape[-1] != kind:
                shape.append(kind)
        return shape


async def run_turn(
    stub: pb_grpc.StreamingServiceStub, request: pb.StreamRequest, timeout: float = 20.0
) -> TurnResult:
    result = TurnResult()
    call = stub.StreamAudio(request, timeout=timeout)
    try:
        async for response in call:
            result.responses.append(response)
    except grpc.aio.AioRpcError as exc:
        result.code, result.details = exc.code(), exc.details() or ""
        return result
    result.code = await call.code()
    result.details = await call.details() or ""
    return result
