"""A deterministic LLM for tests and load tests (never a production default).

Knobs (SPEC §10b): the reply, a mode (fixed / echo / echo_prompt), time to the first chunk, chunks
per second and characters per chunk.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from nexy.config import ScriptedLLMSettings
from nexy.providers.llm.base import LLMRequest, plain_text
from nexy.providers.pacing import Pacer


class ScriptedLLM:
    """Streams a scripted reply in fixed-size chunks at a configured pace."""

    name = "scripted"
    supports_images = True  # it ignores images, but must not trigger the "can't see" answer

    def __init__(self, settings: ScriptedLLMSettings) -> None:
        self._settings = settings

    def reply_for(self, request: LLMRequest) -> str:
        mode = self._settings.mode
        if mode == "echo":
            return request.prompt
        if mode == "echo_prompt":
            return plain_text(request)
        return self._settings.reply

    async def stream(self, request: LLMRequest) -> AsyncGenerator[str, None]:
        reply = self.reply_for(request)
        size = self._settings.chunk_chars
        first = self._settings.first_token_ms / 1000
        per_chunk = 1 / self._settings.tokens_per_second if self._settings.tokens_per_second else 0
        pacer = Pacer()
        for index, start in enumerate(range(0, len(reply), size)):
            await pacer.until(first + index * per_chunk)
            yield reply[start : start + size]
