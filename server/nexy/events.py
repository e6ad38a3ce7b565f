"""The closed vocabulary of what a turn produces, in the order the client receives it.

Frozen dataclasses inside the server; only transport/grpc/codec.py turns them into protobuf.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class TextChunk:
    """A delta of the spoken reply text (the concatenation of a turn's chunks is the reply)."""

    text: str


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Little-endian int16 mono PCM; always an even number of bytes."""

    pcm: bytes
    sample_rate: int

    @property
    def samples(self) -> int:
        return len(self.pcm) // 2


@dataclass(frozen=True, slots=True)
class Action:
    """A validated, allow-listed command for the client to execute."""

    command: str
    args: Mapping[str, str | int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TurnEnd:
    """The turn finished normally."""

    message: str = "completed"


class ErrorKind(StrEnum):
    """Why a stream ends with an error; the transport maps each to one gRPC status."""

    INVALID_ARGUMENT = "invalid_argument"
    ALREADY_EXISTS = "already_exists"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    PERMISSION_DENIED = "permission_denied"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class TurnError:
    """The turn ends with an error message and the matching status."""

    kind: ErrorKind
    message: str


TurnEvent = TextChunk | AudioChunk | Action | TurnEnd | TurnError
Terminal = (TurnEnd, TurnError)
