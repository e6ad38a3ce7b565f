"""Turn events and welcome audio → protobuf; the only place that knows the wire shapes."""

from __future__ import annotations

import grpc

from nexy.events import (
    Action,
    AudioChunk,
    ErrorKind,
    TextChunk,
    TurnEnd,
    TurnError,
    TurnEvent,
)
from nexy.transport.grpc import streaming_pb2 as pb
from nexy.turn.actions import action_json

STATUS: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorKind.CANCELLED: grpc.StatusCode.CANCELLED,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
}


def audio_message(chunk: AudioChunk) -> pb.AudioChunk:
    return pb.AudioChunk(
        audio_data=chunk.pcm,
        dtype="int16",
        shape=[chunk.samples],
        sample_rate=chunk.sample_rate,
        channels=1,
    )


def stream_response(event: TurnEvent, session_id: str) -> pb.StreamResponse:
    """One StreamResponse for one turn event."""
    if isinstance(event, TextChunk):
        return pb.StreamResponse(text_chunk=event.text)
    if isinstance(event, AudioChunk):
        return pb.StreamResponse(audio_chunk=audio_message(event))
    if isinstance(event, Action):
        return pb.StreamResponse(
            action_message=pb.ActionMessage(
                action_json=action_json(event, session_id), session_id=session_id
            )
        )
    if isinstance(event, TurnEnd):
        return pb.StreamResponse(end_message=event.message)
    return pb.StreamResponse(error_message=event.message)


def welcome_metadata(method: str, duration_sec: float, sample_rate: int) -> pb.WelcomeResponse:
    return pb.WelcomeResponse(
        metadata=pb.WelcomeMetadata(
            method=method,
            duration_sec=duration_sec,
            sample_rate=sample_rate,
            channels=1,
            dtype="int16",
        )
    )


def is_terminal(event: TurnEvent) -> bool:
    return isinstance(event, TurnEnd | TurnError)
