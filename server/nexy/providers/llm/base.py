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
class LLMRequest:
    """Everything a model needs for one reply."""

    system: str
    user: str  # the full user message as the model receives it (memory context included)
    prompt: str  # what the user actually said
    image: Image | None = None
    hardware_id: str = ""  # whose turn this is (intents and usage need it; models don't)
    # Where a model that reports token counts puts them; one per request, so concurrent
    # streams of the same provider never mix their counts.
    meter: TokenMeter = field(default_factory=TokenMeter, compare=False)


class LLMError(Exception):
    """A model failure, already translated from the vendor's own exceptions."""


class LLMProvider(Protocol):
    """A language model that streams its reply as text fragments."""

    name: str
    supports_images: bool  # whether the model can see a screenshot

    def stream(self, request: LLMRequest) -> AsyncGenerator[str, None]:
        """Stream the reply; closing the iterator cancels the request upstream."""
        ...
