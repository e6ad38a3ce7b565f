"""Per-language engine choice: a preferred engine for some languages, a fallback for the rest.

Typically Piper speaks English and eSpeak NG everything else. The fallback also stands in for a
routed engine that is down or that fails before producing any audio for a text, so the user
hears something rather than silence. Engines may run at different native rates; the router
speaks at its primary engine's rate and resamples the others through ``PcmFormatter``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing

from nexy.components import READY, Component, ComponentStatus, State
from nexy.providers.tts.audio import PcmFormatter, chunk_bytes_for
from nexy.providers.tts.base import TTSError, TTSProvider, Voice, syntheses_at_once
from nexy.providers.tts.voices import language_key, language_keys

log = logging.getLogger(__name__)

# Resampled audio leaves in pieces of up to this length. PcmFormatter holds back remainders
# under a fifth of a piece until more audio arrives, so this also bounds the added delay (50 ms)
# for engines that stream in small chunks, while long pushes (a sentence) stay in few pieces.
_RESAMPLED_CHUNK_MS = 250


class LanguageRouterTTS:
    """Routes each utterance to the engine for its language, falling back when that one fails."""

    def __init__(self, routes: Mapping[str, TTSProvider], fallback: TTSProvider) -> None:
        self._routes: dict[str, TTSProvider] = {language_key(k): v for k, v in routes.items()}
        self._fallback = fallback
        engines: list[TTSProvider] = []
        for engine in [*self._routes.values(), fallback]:
            if not any(engine is known for known in engines):
                engines.append(engine)
        self._engines = engines  # unique, routed ones first: the order to start them in
        self.name = "+".join(engine.name for engine in engines)
        self.sample_rate = self._primary().sample_rate  # nominal until start()
        self.syntheses_at_once = min(syntheses_at_once(engine) for engine in engines)
        self._failed: dict[int, str] = {}  # id(engine) -> why it did not start
        self._started: list[TTSProvider] = []
        self._closed = False
        self._start_error = ""

    async def start(self) -> None:
        """Start the fallback, then each routed engine once; a routed failure only degrades."""
        if self._started:
            return
        self._closed = False
        await self._start_fallback()
        for engine in self._engines:
            if engine is self._fallback:
                continue
            try:
                if isinstance(engine, Component):
                    await engine.start()
            except Exception as exc:  # any start failure sends the engine's languages elsewhere
                reason = f"{type(exc).__name__}: {exc}"
                self._failed[id(engine)] = reason
                log.warning(
                    "TTS engine %s is down, using %s: %s", engine.name, self._fallback.name, reason
                )
                continue
            self._started.append(engine)
        # Rates are only certain once engines have loaded their voices.
        self.sample_rate = self._primary().sample_rate

    def status(self) -> ComponentStatus:
        """READY; DEGRADED with the reason when a routed engine is down; DOWN without a fallback."""
        if not self._started:
            reason = self._start_error or ("closed" if self._closed else "not started")
            return ComponentStatus(State.DOWN, reason)
        fallback = _status_of(self._fallback)
        if fallback.state is State.DOWN:
            return ComponentStatus(State.DOWN, f"{self._fallback.name}: {fallback.reason}")
        reasons = [
            f"{engine.name} is down ({self._down_reason(engine)}), {self._fallback.name} speaks "
            f"{', '.join(self._languages_of(engine))}"
            for engine in self._engines
            if engine is not self._fallback and self._down_reason(engine)
        ]
        return ComponentStatus(State.DEGRADED, "; ".join(reasons)) if reasons else READY

    async def close(self) -> None:
        """Close every started engine, routed ones first (idempotent)."""
        while self._started:
            engine = self._started.pop()
            try:
                if isinstance(engine, Component):
                    await engine.close()
            except Exception as exc:  # closing must reach every engine
                log.error("closing TTS engine %s failed: %s", engine.name, type(exc).__name__)
        self._failed.clear()
        self._closed = True

    def engine_for(self, voice: Voice) -> TTSProvider:
        """The engine for ``voice``'s language ("en-US" matches "en"); the fallback otherwise."""
        routed = (self._routes[key] for key in language_keys(voice.language) if key in self._routes)
        engine = next(routed, None)
        if engine is None or self._down_reason(engine):
            return self._fallback
        return engine

    async def synthesize(self, text: str, voice: Voice) -> AsyncGenerator[bytes, None]:
        """Stream PCM at ``sample_rate``; fall back if the chosen engine fails before any audio."""
        if not text.strip():
            return
        engine = self.engine_for(voice)
        yielded = False
        try:
            async with aclosing(self._converted(engine, text, voice)) as stream:
                async for pcm in stream:
                    yielded = True
                    yield pcm
            return
        except Exception as exc:  # any engine failure: fall back, or report it as a TTSError
            if yielded or engine is self._fallback:
                if isinstance(exc, TTSError):
                    raise
                raise _engine_error(engine, exc) from exc
            log.warning(
                "TTS engine %s failed before audio, using %s: %s",
                engine.name,
                self._fallback.name,
                exc,
            )
        try:
            async with aclosing(self._converted(self._fallback, text, voice)) as stream:
                async for pcm in stream:
                    yield pcm
        except TTSError:
            raise
        except Exception as exc:  # the last resort failed too: report it as a TTSError
            raise _engine_error(self._fallback, exc) from exc

    async def _converted(
        self, engine: TTSProvider, text: str, voice: Voice
    ) -> AsyncGenerator[bytes, None]:
        """``engine``'s audio for ``text``, resampled to ``sample_rate`` when its rate differs."""
        formatter: PcmFormatter | None = None
        if engine.sample_rate != self.sample_rate:
            size = chunk_bytes_for(self.sample_rate, _RESAMPLED_CHUNK_MS)
            formatter = PcmFormatter(engine.sample_rate, self.sample_rate, size)
        async with aclosing(engine.synthesize(text, voice)) as stream:
            async for pcm in stream:
                if formatter is None:
                    yield pcm
                else:
                    for chunk in formatter.push(pcm):
                        yield chunk
        for chunk in formatter.flush() if formatter is not None else []:
            yield chunk

    async def _start_fallback(self) -> None:
        fallback = self._fallback
        try:
            if isinstance(fallback, Component):
                await fallback.start()
        except Exception as exc:  # without a fallback there is no speech at all
            self._start_error = f"{fallback.name} failed to start: {exc or type(exc).__name__}"
            raise TTSError(self._start_error) from exc
        self._start_error = ""
        self._started.append(fallback)

    def _primary(self) -> TTSProvider:
        return next(iter(self._routes.values()), self._fallback)

    def _down_reason(self, engine: TTSProvider) -> str:
        """Why ``engine`` cannot speak now; empty when it can."""
        if id(engine) in self._failed:
            return self._failed[id(engine)]
        status = _status_of(engine)
        return (status.reason or "down") if status.state is State.DOWN else ""

    def _languages_of(self, engine: TTSProvider) -> list[str]:
        return [language for language, routed in self._routes.items() if routed is engine]


def _status_of(engine: TTSProvider) -> ComponentStatus:
    """An engine's own status; one without a lifecycle is always ready."""
    return engine.status() if isinstance(engine, Component) else READY


def _engine_error(engine: TTSProvider, exc: Exception) -> TTSError:
    """A short TTSError for an engine's own (non-TTSError) exception."""
    return TTSError(f"{engine.name} synthesis failed: {type(exc).__name__}")
