"""The TTS seam: one streaming method per engine, audio in the engine's native format."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Voice:
    """Which voice to speak with: a language ("en", "ru") and an optional engine voice name."""

    language: str = "en"
    name: str = ""


class TTSError(Exception):
    """A synthesis failure, already translated from the engine's own exceptions."""


class TTSProvider(Protocol):
    """A speech engine. Audio is little-endian int16 mono PCM at ``sample_rate`` Hz."""

    name: str
    sample_rate: int

    def synthesize(self, text: str, voice: Voice) -> AsyncGenerator[bytes, None]:
        """Stream PCM for ``text``; stops promptly when the consumer closes the iterator."""
        ...
