"""Language models in fallback order, as one ``LLMProvider``.

A member that fails before its first fragment (an error, a timeout, an open circuit) hands the
turn to the next one and the user never notices. Once a fragment has been yielded the reply is
committed: a later failure is raised as ``LLMError`` and the turn runner apologises, because
switching models mid-sentence would speak two half answers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing

from nexy.components import ComponentStatus
from nexy.config import BreakerSettings, TimeoutSettings
from nexy.providers.llm.base import LLMError, LLMProvider, LLMRequest
from nexy.providers.resilience import FallbackChain, LatencyHook, ProviderStats


class FallbackLLM:
    """An ``LLMProvider`` that asks its members in order, with timeouts and circuit breakers."""

    def __init__(
        self,
        providers: Sequence[LLMProvider],
        timeouts: TimeoutSettings,
        breaker: BreakerSettings,
        *,
        on_latency: LatencyHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._chain = FallbackChain[LLMProvider](
            providers,
            timeouts,
            breaker,
            error=LLMError,
            unavailable="all language models are unavailable",
            on_latency=on_latency,
            clock=clock,
        )
        self.name = self._chain.name
        # The member that normally answers decides; a text-only fallback gets the text alone.
        self.supports_images = providers[0].supports_images

    @property
    def on_latency(self) -> LatencyHook | None:
        """Called with (member name, seconds to first fragment) whenever a member answers."""
        return self._chain.on_latency

    @on_latency.setter
    def on_latency(self, hook: LatencyHook | None) -> None:
        self._chain.on_latency = hook

    async def start(self) -> None:
        """Start every member; fails only if none of them starts."""
        await self._chain.start()

    def status(self) -> ComponentStatus:
        """DOWN if no member can answer, DEGRADED naming members that are down or tripped."""
        return self._chain.status()

    async def close(self) -> None:
        """Close every started member (idempotent)."""
        await self._chain.close()

    def stats(self) -> list[ProviderStats]:
        """Per-member calls, failures, breaker state and latency, in chain order."""
        return self._chain.stats()

    async def stream(self, request: LLMRequest) -> AsyncGenerator[str, None]:
        """The reply from the first member that produces a fragment."""

        def open_stream(member: LLMProvider) -> AsyncGenerator[str, None]:
            if request.image is not None and not member.supports_images:
                # Better an answer without the screenshot than no answer at all.
                return member.stream(dataclasses.replace(request, image=None))
            return member.stream(request)

        async with aclosing(self._chain.stream(open_stream)) as fragments:
            async for fragment in fragments:
                yield fragment
