"""Test doubles for the provider seams: failing and hanging LLMs and TTS engines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from nexy.providers.llm.base import LLMError, LLMRequest
from nexy.providers.tts.base import TTSError, Voice


class FailingLLM:
    """Streams ``before`` fragments, then raises (0 fragments = fails before any data)."""

    name = "failing"
    supports_images = False

    def __init__(self, fragments: list[str] | None = None) -> None:
        self.fragments = fragments or []
        self.calls = 0

    async def stream(self, request: LLMRequest) -> AsyncIterator[str]:
        self.calls += 1
        for fragment in self.fragments:
            yield fragment
            await asyncio.sleep(0)
        raise LLMError("upstream exploded at /secret/path with key sk-test-123")


class HangingLLM:
    """Sends one sentence, then waits forever; records whether it was closed."""

    name = "hanging"
    supports_images = False

    def __init__(self, first: str = '{"text": "Working on it. ') -> None:
        self.first = first
        self.started = asyncio.Event()
        self.closed = asyncio.Event()
        self.active = 0

    async def stream(self, request: LLMRequest) -> AsyncIterator[str]:
        self.active += 1
        try:
            yield self.first
            yield "Still"
            self.started.set()
            await asyncio.Event().wait()
        finally:
            self.active -= 1
            self.closed.set()


class FailingTTS:
    """A TTS engine whose every synthesis fails."""

    name = "failing-tts"
    sample_rate = 22050

    async def synthesize(self, text: str, voice: Voice) -> AsyncIterator[bytes]:
        raise TTSError("engine down")
        yield b""  # pragma: no cover - makes this an async generator
