"""The local intent path as an LLM: intents answer first, the wrapped model answers the rest.

A matched intent is streamed as one fragment holding the same reply object the model is asked
for (``{"text": ..., "command": ..., "args": {...}}``), so the turn pipeline — extraction,
speech, the action allow-list — treats it exactly like a model's reply.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

from nexy.components import READY, ComponentStatus
from nexy.providers.llm.base import LLMProvider, LLMRequest
from nexy.turn.intents import IntentMatcher, IntentReply

log = logging.getLogger(__name__)


def reply_json(reply: IntentReply) -> str:
    """The reply object as the model would write it; command and args only when set."""
    payload: dict[str, object] = {"text": reply.text}
    if reply.command:
        payload["command"] = reply.command
        if reply.args:
            payload["args"] = dict(reply.args)
    return json.dumps(payload, ensure_ascii=False)


class IntentFirstLLM:
    """An LLMProvider that tries the local intents before the wrapped model."""

    def __init__(self, inner: LLMProvider, matcher: IntentMatcher) -> None:
        self.inner = inner
        self._matcher = matcher
        self.name = f"intents+{inner.name}"
        self.supports_images = inner.supports_images

    async def start(self) -> None:
        """Start the wrapped model, if it has a lifecycle."""
        start = getattr(self.inner, "start", None)
        if start is not None:
            await start()

    def status(self) -> ComponentStatus:
        """The wrapped model's status (ready if it reports none)."""
        status = getattr(self.inner, "status", None)
        result = status() if status is not None else READY
        return result if isinstance(result, ComponentStatus) else READY

    async def close(self) -> None:
        """Close the wrapped model, if it has a lifecycle."""
        close = getattr(self.inner, "close", None)
        if close is not None:
            await close()

    async def stream(self, request: LLMRequest) -> AsyncGenerator[str, None]:
        """One fragment for a matched intent; otherwise the wrapped model's stream."""
        reply = await self._match(request)
        if reply is not None:
            yield reply_json(reply)
            return
        async with aclosing(self.inner.stream(request)) as stream:
            async for fragment in stream:
                yield fragment

    async def _match(self, request: LLMRequest) -> IntentReply | None:
        try:
            return await self._matcher.match(
                request.prompt,
                request.hardware_id,
                request.image is not None,
                self.inner.supports_images,
            )
        except Exception as exc:  # intents are a shortcut: if one fails, the model answers
            log.warning("intent matching failed (%s); asking the model", type(exc).__name__)
            return None
