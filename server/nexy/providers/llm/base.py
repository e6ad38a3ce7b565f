"""The LLM seam: one streaming method, text fragments out."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Image:
    """A screenshot as raw bytes (already base64-decoded) with its MIME type."""

    data: bytes
    mime_type: str
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """Everything a model needs for one reply."""

    system: str
    user: str  # the full user message as the model receives it (memory context included)
    prompt: str  # what the user actually said
    image: Image | None = None
    hardware_id: str = ""  # whose turn this is (intents and usage need it; models don't)


class LLMError(Exception):
    """A model failure, already translated from the vendor's own exceptions."""


class LLMProvider(Protocol):
    """A language model that streams its reply as text fragments."""

    name: str
    supports_images: bool  # whether the model can see a screenshot

    def stream(self, request: LLMRequest) -> AsyncGenerator[str, None]:
        """Stream the reply; closing the iterator cancels the request upstream."""
        ...
