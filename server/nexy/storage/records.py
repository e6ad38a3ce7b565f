"""Plain values the storage layer reads and writes: exchanges, device memory, finished turns.

They are frozen dataclasses so that a record queued in the outbox cannot change before it is
written, and they convert to and from plain JSON data for the outbox file and for exports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, get_args

Outcome = Literal["completed", "interrupted", "failed"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_time(text: str) -> datetime:
    """An ISO 8601 timestamp as a timezone-aware UTC datetime."""
    return as_utc(datetime.fromisoformat(text))


@dataclass(frozen=True, slots=True)
class Exchange:
    """One user utterance and the assistant's reply: an entry of the short-term window."""

    user: str
    assistant: str
    at: datetime = field(default_factory=utc_now)

    def to_json(self) -> dict[str, str]:
        """The stored shape: ``{"user": …, "assistant": …, "at": ISO 8601 UTC}``."""
        return {"user": self.user, "assistant": self.assistant, "at": as_utc(self.at).isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Exchange:
        """Rebuild an exchange from its stored shape."""
        return cls(str(data["user"]), str(data["assistant"]), parse_time(str(data["at"])))


@dataclass(frozen=True, slots=True)
class DeviceMemory:
    """What the assistant remembers about one device."""

    facts: list[str] = field(default_factory=list)
    recent: list[Exchange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One finished turn with its latencies; written once the turn ends."""

    session_id: str
    hardware_id: str
    prompt: str
    reply_text: str
    outcome: Outcome
    total_ms: float
    llm_provider: str
    tts_provider: str
    action_json: str | None = None
    first_text_ms: float | None = None
    first_audio_ms: float | None = None

    def __post_init__(self) -> None:
        # Refuse a bad outcome here, where the caller sees it, rather than at flush time.
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {self.outcome!r}")
