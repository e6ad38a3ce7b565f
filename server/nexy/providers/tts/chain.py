"""Speech engines in fallback order, as one ``TTSProvider``.

An engine that fails before its first audio (an error, a timeout, an open circuit) hands the
utterance to the next one unheard. After audio has been yielded a failure is raised as
``TTSError``: half a sentence in one voice and the rest in another is worse than the turn's own
error handling. The chain speaks at its first engine's rate; engines with another native rate are
resampled through ``PcmFormatter``, the same way ``LanguageRouterTTS`` does it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing

from nexy.components import ComponentStatus
from nexy.config import BreakerSettings, TimeoutSettings
from nexy.providers.resilience import FallbackChain, LatencyHook, ProviderStats
from nexy.providers.tts.audio import PcmFormatter, chunk_bytes_for
from nexy.providers.tts.base import TTSError, TTSProvider, Voice, syntheses_at_once

# As in the router: pieces of up to 250 ms, and at most 50 ms held back waiting for more audio.
_RESAMPLED_CHUNK_MS = 250


class FallbackTTS:
    """A ``TTSProvider`` that asks its engines in order, with timeouts and circuit breakers."""

    def __init__(
        self,
        providers: Sequence[TTSProvider],
        timeouts: TimeoutSettings,
        breaker: BreakerSettings,
        *,
        on_latency: LatencyHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._chain = FallbackChain[TTSProvider](
            providers,
            timeouts,
            breaker,
            error=TTSError,
            unavailable="all speech engines are unavailable",
            on_latency=on_latency,
            clock=clock,
        )
        self._primary = providers[0]
        self.name = self._chain.name
        self.sample_rate = self._primary.sample_rate  # nominal until start()
        self.syntheses_at_once = min(syntheses_at_once(p) for p in providers)

    @property
    def on_latency(self) -> LatencyHook | None:
        """Called with (engine name, seconds to first audio) whenever an engine speaks."""
        return self._chain.on_latency

    @on_latency.setter
    def on_latency(self, hook: LatencyHook | None) -> None:
        self._chain.on_latency = hook

    async def start(self) -> None:
        """Start every engine; fails only if none of them starts."""
        await self._chain.start()
        # Engines know their rate only once their voices are loaded.
        self.sample_rate = self._primary.sample_rate

    def status(self) -> ComponentStatus:
        """DOWN if no engine can speak, DEGRADED naming engines that are down or tripped."""
        return self._chain.status()

    async def close(self) -> None:
        """Close every started engine (idempotent)."""
        await self._chain.close()

    def stats(self) -> list[ProviderStats]:
        """Per-engine calls, failures, breaker state and latency, in chain order."""
        return self._chain.stats()

    def engine_for(self, voice: Voice) -> TTSProvider:
        """The first engine's own choice for ``voice`` (a router has one), else the first engine."""
        choose: Callable[[Voice], TTSProvider] | None = getattr(self._primary, "engine_for", None)
        return choose(voice) if choose is not None else self._primary

    def synthesize(self, text: str, voice: Voice) -> AsyncGenerator[bytes, None]:
        """PCM at ``sample_rate`` from the first engine that produces audio for ``text``.

        The chain's own stream is returned as it is, and an engine at the chain's rate is
        streamed without a conversion layer: every generator layer is paid on every piece.
        """
        if not text.strip():
            return _silence()  # nothing to say: no engine is called, no breaker is touched

        def open_stream(engine: TTSProvider) -> AsyncGenerator[bytes, None]:
            if engine.sample_rate == self.sample_rate:
                return engine.synthesize(text, voice)
            # Resampled inside the guard: the first-output limit times audio the listener gets.
            return self._converted(engine, text, voice)

        return self._chain.stream(open_stream)

    async def _converted(
        self, engine: TTSProvider, text: str, voice: Voice
    ) -> AsyncGenerator[bytes, None]:
        """``engine``'s audio, resampled from its native rate to ``sample_rate``."""
        size = chunk_bytes_for(self.sample_rate, _RESAMPLED_CHUNK_MS)
        formatter = PcmFormatter(engine.sample_rate, self.sample_rate, size)
        async with aclosing(engine.synthesize(text, voice)) as stream:
            async for pcm in stream:
                for chunk in formatter.push(pcm):
                    yield chunk
        for chunk in formatter.flush():
            yield chunk


async def _silence() -> AsyncGenerator[bytes, None]:
    """An empty audio stream."""
    return
    yield  # makes this an async generator
