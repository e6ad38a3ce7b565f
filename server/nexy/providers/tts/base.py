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


UNBOUNDED = 1 << 16


def syntheses_at_once(tts: object) -> int:
    """How many syntheses an engine runs side by side: an engine with one worker thread sets
    ``syntheses_at_once = 1``; more started at once would only wait in its queue (and their
    wait would count against their time-to-first-output limit). Others are unbounded."""
    return int(getattr(tts, "syntheses_at_once", UNBOUNDED))
