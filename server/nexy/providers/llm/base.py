"""The LLM seam: one streaming method, text fragments out."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Image:
    """A screenshot as raw bytes (already base64-decoded) with its MIME type."""

    data: bytes
    mime_type: str
    width: int | None = None
    height: int | None = None


@dataclass(slots=True)
class TokenMeter:
    """The tokens a model reported for one request (vendors send the counts at the end)."""

    input_tokens: int = 0
    output_tokens: int = 0
    model: str = ""

    @property
    def reported(self) -> bool:
        return bool(self.model)

    def add(self, input_tokens: int, output_tokens: int, model: str) -> None:
        """Count one model call (a retry with a backup key is a second call)."""
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
        self.model = model


@dataclass(frozen=True, slots=True)
class Exchange:
    """One earlier exchange on this device: what the user said and what the assistant answered."""

    user: str
    assistant: str


@dataclass(frozen=True, slots=True)
class MemoryContext:
    """What memory gives one turn, as data: each model renders it in its own native form."""

    facts: tuple[str, ...] = ()  # long-term facts about the user, oldest first
    history: tuple[Exchange, ...] = ()  # recent exchanges, oldest first


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """Everything a model needs for one reply."""

    system: str
    user: str  # this turn's user message: what was said (plus a note on an attached screenshot)
    prompt: str  # what the user actually said
    image: Image | None = None
    hardware_id: str = ""  # whose turn this is (intents and usage need it; models don't)
    memory: MemoryContext = MemoryContext()
    # Where a model that reports token counts puts them; one per request, so concurrent
    # streams of the same provider never mix their counts.
    meter: TokenMeter = field(default_factory=TokenMeter, compare=False)


def facts_text(facts: tuple[str, ...]) -> str:
    """The facts as the lines a model reads next to its instructions ("" when there are none)."""
    if not facts:
        return ""
    return "What you know about this user:\n" + "\n".join(f"- {fact}" for fact in facts)


def with_facts(system: str, facts: tuple[str, ...]) -> str:
    """A system message: the instructions, then what is known about the user."""
    return "\n\n".join(part for part in (system, facts_text(facts)) if part)


def plain_text(request: LLMRequest) -> str:
    """The whole request as one plain text: facts, the recent conversation, then the message.

    For providers that take a single string (the scripted test model shows exactly this); chat
    models get the same data as separate messages instead, so they never see role labels as
    text they might continue.
    """
    parts = [facts_text(request.memory.facts)] if request.memory.facts else []
    if request.memory.history:
        talk = [
            f"User: {item.user}\nAssistant: {item.assistant}" for item in request.memory.history
        ]
        parts.append("Recent conversation, oldest first:\n" + "\n".join(talk))
    parts.append(f"User: {request.user}")
    return "\n\n".join(parts)


class LLMError(Exception):
    """A model failure, already translated from the vendor's own exceptions."""


class LLMProvider(Protocol):
    """A language model that streams its reply as text fragments."""

    name: str
    supports_images: bool  # whether the model can see a screenshot

    def stream(self, request: LLMRequest) -> AsyncGenerator[str, None]:
        """Stream the reply; closing the iterator cancels the request upstream."""
        ...
