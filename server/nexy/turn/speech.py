"""Speaking segments: one utterance per segment, synthesized as soon as its text exists.

While utterance N's audio goes to the client, the utterances after it are already being
synthesized, each into its own bounded queue; the speaker sends them strictly in order. This is
what lets a turn end one sentence's synthesis after that sentence's text, instead of after all
of them in a row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field

from nexy.events import AudioChunk
from nexy.providers.tts.audio import PcmFormatter
from nexy.providers.tts.base import TTSProvider
from nexy.providers.tts.level import WIRE_LEVEL
from nexy.providers.tts.voices import voice_for

log = logging.getLogger(__name__)

AUDIO_QUEUE_CHUNKS = 32  # audio synthesized ahead per utterance before synthesis waits

AudioSink = Callable[[AudioChunk], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SpeechFormat:
    """The wire audio format and the language used when the text does not say."""

    sample_rate: int
    chunk_bytes: int
    default_language: str
    coalesce_bytes: int = 0  # audio already waiting joins one message up to this size


class Voicebox:
    """Synthesizes text into wire-format audio chunks; remembers a failure for the whole turn."""

    def __init__(self, tts: TTSProvider, fmt: SpeechFormat) -> None:
        self.tts = tts
        self.fmt = fmt
        self.failed = False

    async def speak(self, text: str, sink: AudioSink) -> None:
        """Send ``text``'s audio to ``sink``; after a failure the turn goes on as text only."""
        spoken = text.strip()
        if not spoken or self.failed:
            return
        fmt = self.fmt
        formatter = PcmFormatter(
            self.tts.sample_rate, fmt.sample_rate, fmt.chunk_bytes, level=WIRE_LEVEL
        )
        try:
            voice = voice_for(spoken, fmt.default_language)
            async with aclosing(self.tts.synthesize(spoken, voice)) as stream:
                async for pcm in stream:
                    for chunk in formatter.push(pcm):
                        await sink(AudioChunk(chunk, fmt.sample_rate))
            for chunk in formatter.flush():
                await sink(AudioChunk(chunk, fmt.sample_rate))
        except Exception as exc:  # stage boundary: the rest of the turn goes on as text
            log.warning("tts %s failed: %s", self.tts.name, type(exc).__name__)
            self.failed = True


@dataclass(slots=True)
class Utterance:
    """A segment's text and the audio being synthesized for it (None marks the end)."""

    text: str
    audio: asyncio.Queue[AudioChunk | None] = field(
        default_factory=lambda: asyncio.Queue(AUDIO_QUEUE_CHUNKS)
    )

    def start(self, voicebox: Voicebox, group: asyncio.TaskGroup) -> None:
        group.create_task(self._synthesize(voicebox))

    async def _synthesize(self, voicebox: Voicebox) -> None:
        await voicebox.speak(self.text, self.audio.put)
        await self.audio.put(None)
