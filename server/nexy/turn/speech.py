"""Speaking segments: one utterance per segment, synthesized as soon as its text exists.

While utterance N's audio goes to the client, the utterances after it are already being
synthesized, each into its own bounded buffer of the engine's raw PCM; the speaker converts and
sends them strictly in order. This is what lets a turn end one sentence's synthesis after that
sentence's text, instead of after all of them in a row.

Conversion to the wire format (resampling, level, chunking) happens when the speaker takes the
audio, not when the engine yields it. Audio synthesized ahead is converted in one call and
leaves in messages of up to ``tts.coalesce_ms``; the utterance being listened to is converted
as soon as its first piece, then each wire chunk's worth, is there, as before. Converting every
50 ms engine piece on its own costs several times as much and gets nothing to the client sooner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

from nexy.events import AudioChunk
from nexy.providers.tts.audio import PcmFormatter, chunk_bytes_for
from nexy.providers.tts.base import TTSProvider
from nexy.providers.tts.level import WIRE_LEVEL
from nexy.providers.tts.voices import voice_for
from nexy.turn.pcm_buffer import PcmBuffer

log = logging.getLogger(__name__)

AHEAD_MS = 3200  # engine audio an utterance holds ahead of the speaker before synthesis waits

AudioSink = Callable[[AudioChunk], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SpeechFormat:
    """The wire audio format and the language used when the text does not say."""

    sample_rate: int
    chunk_bytes: int
    default_language: str
    coalesce_bytes: int = 0  # audio converted together leaves in messages up to this size


class Voicebox:
    """Synthesizes a turn's utterances; remembers a failure for the whole turn."""

    def __init__(self, tts: TTSProvider, fmt: SpeechFormat) -> None:
        self.tts = tts
        self.fmt = fmt
        self.failed = False

    def utterance(self, text: str) -> Utterance:
        """An utterance whose buffer is sized in the engine's own rate."""
        buffer = PcmBuffer(chunk_bytes_for(self.tts.sample_rate, AHEAD_MS))
        return Utterance(text, buffer)

    def formatter(self) -> PcmFormatter:
        """Engine PCM → levelled wire chunks; one serves a turn's utterances one after another."""
        fmt = self.fmt
        return PcmFormatter(
            self.tts.sample_rate,
            fmt.sample_rate,
            fmt.chunk_bytes,
            level=WIRE_LEVEL,
            message_bytes=fmt.coalesce_bytes,
        )

    async def synthesize(self, text: str, buffer: PcmBuffer) -> None:
        """Put ``text``'s raw audio in ``buffer``; after a failure the turn goes on as text."""
        spoken = text.strip()
        if not spoken or self.failed:
            return
        try:
            voice = voice_for(spoken, self.fmt.default_language)
            async with aclosing(self.tts.synthesize(spoken, voice)) as stream:
                async for pcm in stream:
                    await buffer.put(pcm)
        except Exception as exc:  # stage boundary: the rest of the turn goes on as text
            log.warning("tts %s failed: %s", self.tts.name, type(exc).__name__)
            self.failed = True


@dataclass(slots=True)
class Utterance:
    """A segment's text and the engine audio being synthesized for it."""

    text: str
    audio: PcmBuffer

    def start(self, voicebox: Voicebox, group: asyncio.TaskGroup) -> None:
        group.create_task(self._synthesize(voicebox))

    async def _synthesize(self, voicebox: Voicebox) -> None:
        try:
            await voicebox.synthesize(self.text, self.audio)
        finally:
            self.audio.end()  # the speaker never waits for audio that cannot come

    async def send(self, formatter: PcmFormatter, sink: AudioSink) -> None:
        """Convert the audio as it becomes available and hand it to ``sink``, in order.

        ``formatter`` is left reset for the next utterance.
        """
        rate = formatter.dst_rate
        ended = False
        while not ended:
            pcm, ended = await self.audio.take(formatter.wanted_bytes())
            chunks = formatter.flush(pcm) if ended else formatter.push(pcm)
            for chunk in chunks:
                await sink(AudioChunk(chunk, rate))
