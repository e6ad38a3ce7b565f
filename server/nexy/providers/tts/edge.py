"""Microsoft Edge's online neural voices through ``edge-tts``, decoded in-process from MP3.

Each utterance is one websocket round trip to Edge's read-aloud service (``edge_tts``
opens a new connection per call; there is nothing to keep open between utterances, so
``start()`` only checks the configuration). Edge streams 24 kHz mono MP3; every piece is
decoded as it arrives, so the first audio leaves before the rest of the utterance exists.

The endpoint can be replaced (tests run against a local fake). ``edge_tts`` reads its URL
from the module constant ``WSS_URL`` inside ``Communicate``'s private per-connection
routine, so a replaced endpoint uses a copy of that routine whose globals differ only in
``WSS_URL``. Nothing in ``edge_tts`` is modified: concurrent utterances to other endpoints,
or to the real service, are unaffected. The routine's name and its use of ``WSS_URL`` are
checked (edge-tts is pinned); a version without them fails ``start()`` with a clear error.
"""

from __future__ import annotations

import logging
import types
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from typing import cast

import aiohttp
import edge_tts
from edge_tts.constants import TRUSTED_CLIENT_TOKEN
from edge_tts.data_classes import TTSConfig
from edge_tts.exceptions import EdgeTTSException
from edge_tts.typing import TTSChunk

from nexy.components import READY, ComponentStatus, State
from nexy.config import EdgeSettings
from nexy.providers.tts.base import TTSError, Voice
from nexy.providers.tts.mp3 import Mp3StreamDecoder
from nexy.providers.tts.voices import language_key, language_keys

log = logging.getLogger(__name__)

EDGE_SAMPLE_RATE = 24000  # Edge's "audio-24khz-48kbitrate-mono-mp3"
# Communicate.stream() runs this private routine once per websocket connection.
_CONNECTION_ATTR = "_Communicate__stream"

_Connection = Callable[[edge_tts.Communicate], AsyncGenerator[TTSChunk, None]]


class _EdgeCommunicate(edge_tts.Communicate):
    """``Communicate`` with a chosen connection routine and a way to close its websockets.

    ``Communicate.stream()`` iterates its inner per-connection generator without closing it,
    so closing ``stream()`` alone leaves the websocket to the garbage collector; here each
    connection is remembered and closed explicitly.
    """

    def __init__(
        self,
        text: str,
        voice: str,
        *,
        rate: str,
        connection: _Connection,
        timeouts: tuple[int, int],
    ) -> None:
        connect, receive = timeouts
        super().__init__(text, voice, rate=rate, connect_timeout=connect, receive_timeout=receive)
        self._connection = connection
        self._open: list[AsyncGenerator[TTSChunk, None]] = []

    def _Communicate__stream(self) -> AsyncGenerator[TTSChunk, None]:
        """One websocket round trip (overrides the base's private routine by its mangled name)."""
        stream = self._connection(self)
        self._open.append(stream)
        return stream

    async def close_connections(self) -> None:
        """Close every websocket this call opened; finished ones are already closed."""
        while self._open:
            await self._open.pop().aclose()


def _connection_for(endpoint: str | None) -> _Connection:
    """Edge's per-connection routine, pointed at ``endpoint`` when one is given."""
    original = getattr(edge_tts.Communicate, _CONNECTION_ATTR, None)
    if not isinstance(original, types.FunctionType) or "WSS_URL" not in original.__code__.co_names:
        # Both closing the websocket on demand and the endpoint override rely on this routine.
        raise TTSError("unsupported edge-tts version: Communicate has no per-connection routine")
    if endpoint is None:
        return cast(_Connection, original)
    if not endpoint.startswith(("ws://", "wss://")):
        raise TTSError(f"Edge endpoint must be a ws:// or wss:// URL, got {endpoint!r}")
    # edge_tts appends "&ConnectionId=…", so the URL needs a query already.
    url = endpoint if "?" in endpoint else f"{endpoint}?TrustedClientToken={TRUSTED_CLIENT_TOKEN}"
    namespace = {**original.__globals__, "WSS_URL": url}
    routine = types.FunctionType(
        original.__code__, namespace, original.__name__, original.__defaults__, original.__closure__
    )
    return cast(_Connection, routine)


class EdgeTTS:
    """Streaming text-to-speech with Microsoft Edge's online neural voices."""

    name = "edge"

    def __init__(
        self,
        settings: EdgeSettings,
        *,
        sample_rate: int = EDGE_SAMPLE_RATE,
        endpoint: str | None = None,
        connect_timeout_seconds: int = 5,
        receive_timeout_seconds: int = 10,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        if connect_timeout_seconds <= 0 or receive_timeout_seconds <= 0:
            raise ValueError("connect and receive timeouts must be positive")
        self.settings = settings
        self.sample_rate = sample_rate
        self.endpoint = endpoint
        self.voices: Mapping[str, str] = {language_key(k): v for k, v in settings.voices.items()}
        self._timeouts = (connect_timeout_seconds, receive_timeout_seconds)
        self._connection: _Connection | None = None
        self._status = ComponentStatus(State.DOWN, "not started")

    async def start(self) -> None:
        """Check the voices, the rate and the endpoint; Edge itself is only reached per call."""
        try:
            for voice_name in sorted({self.settings.default_voice, *self.voices.values()}):
                _check_voice(voice_name, self.settings.rate)
            self._connection = _connection_for(self.endpoint)
        except TTSError as exc:
            self._status = ComponentStatus(State.DOWN, str(exc))
            raise
        self._status = READY

    def status(self) -> ComponentStatus:
        """READY once started; DOWN (with the reason) before, after close() or on a bad config."""
        return self._status

    async def close(self) -> None:
        """Refuse new utterances; ones in flight end with their consumers (idempotent)."""
        self._connection = None
        self._status = ComponentStatus(State.DOWN, "closed")

    def voice_name_for(self, voice: Voice) -> str:
        """The Edge voice for ``voice``: its explicit name, else by language, else the default."""
        if voice.name:
            return voice.name
        known = (self.voices[key] for key in language_keys(voice.language) if key in self.voices)
        return next(known, self.settings.default_voice)

    async def synthesize(self, text: str, voice: Voice) -> AsyncGenerator[bytes, None]:
        """Stream int16 LE mono PCM at ``sample_rate``, decoded as Edge's MP3 arrives."""
        if not text.strip():
            return
        connection = self._connection
        if connection is None:
            raise TTSError("Edge engine is not started")
        voice_name = self.voice_name_for(voice)
        _check_voice(voice_name, self.settings.rate)
        communicate = _EdgeCommunicate(
            text,
            voice_name,
            rate=self.settings.rate,
            connection=connection,
            timeouts=self._timeouts,
        )
        decoder = Mp3StreamDecoder(self.sample_rate)
        try:
            async with aclosing(communicate.stream()) as chunks:
                async for chunk in chunks:
                    if chunk["type"] == "audio" and (pcm := decoder.push(chunk.get("data", b""))):
                        yield pcm
            if tail := decoder.flush():
                yield tail
        except TTSError:
            raise
        except Exception as exc:  # a stage boundary: network and protocol errors alike
            raise _edge_error(exc) from exc
        finally:
            # Reached on normal end, aclose() and cancellation alike: the websocket closes now.
            try:
                await communicate.close_connections()
            except Exception as exc:  # closing must not hide the utterance's own outcome
                log.debug("closing the Edge websocket failed: %s", type(exc).__name__)


def _check_voice(voice_name: str, rate: str) -> None:
    """Raise TTSError unless edge-tts accepts ``voice_name`` and ``rate`` (no network)."""
    try:
        TTSConfig(voice_name, rate, "+0%", "+0Hz", "SentenceBoundary")
    except (TypeError, ValueError):
        raise TTSError(f"invalid Edge voice {voice_name!r} or rate {rate!r}") from None


def _edge_error(exc: Exception) -> TTSError:
    """A short TTSError for an edge-tts or aiohttp failure (no URLs, no payloads)."""
    kind = type(exc).__name__
    if isinstance(exc, aiohttp.ClientResponseError):
        return TTSError(f"Edge TTS refused the connection (HTTP {exc.status})")
    if isinstance(exc, TimeoutError):
        return TTSError(f"Edge TTS timed out ({kind})")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return TTSError(f"cannot reach Edge TTS ({kind})")
    if isinstance(exc, EdgeTTSException):
        return TTSError(f"Edge TTS protocol error ({kind})")
    return TTSError(f"Edge TTS failed ({kind})")
