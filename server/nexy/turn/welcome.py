"""Whole-utterance synthesis for GenerateWelcomeAudio (the client's general TTS endpoint).

The metadata goes first and must carry the real duration, so the audio is synthesized in full
before anything is sent; repeated requests (the startup greeting) are served from a bounded cache.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import aclosing
from dataclasses import dataclass

from nexy.providers.tts.audio import PcmFormatter, chunk_bytes_for, pcm_duration_seconds
from nexy.providers.tts.base import TTSProvider, Voice
from nexy.providers.tts.voices import detect_language


@dataclass(frozen=True, slots=True)
class SpokenAudio:
    method: str  # the engine that spoke it
    sample_rate: int
    chunks: tuple[bytes, ...]

    @property
    def duration_sec(self) -> float:
        return pcm_duration_seconds(sum(len(c) for c in self.chunks), self.sample_rate)


class WelcomeSpeaker:
    """Synthesizes a text to wire-format chunks, with an LRU cache."""

    def __init__(
        self,
        tts: TTSProvider,
        *,
        default_text: str,
        default_language: str,
        sample_rate: int,
        chunk_ms: int,
        cache_entries: int,
    ) -> None:
        self._tts = tts
        self._default_text = default_text
        self._default_language = default_language
        self._rate = sample_rate
        self._chunk_bytes = chunk_bytes_for(sample_rate, chunk_ms)
        self._cache_entries = cache_entries
        self._cache: OrderedDict[tuple[str, str, str, int, int], SpokenAudio] = OrderedDict()

    def cached(self, text: str, voice: str, language: str) -> SpokenAudio | None:
        key = self._key(text, voice, language)
        audio = self._cache.get(key)
        if audio is not None:
            self._cache.move_to_end(key)
        return audio

    async def speak(self, text: str, voice: str, language: str) -> SpokenAudio:
        """The audio for ``text`` (the default greeting when empty), from cache when possible."""
        cached = self.cached(text, voice, language)
        if cached is not None:
            return cached
        spoken = text.strip() or self._default_text
        lang = language.strip() or detect_language(spoken, self._default_language)
        formatter = PcmFormatter(self._tts.sample_rate, self._rate, self._chunk_bytes)
        chunks: list[bytes] = []
        async with aclosing(self._tts.synthesize(spoken, Voice(lang, voice.strip()))) as stream:
            async for pcm in stream:
                chunks.extend(formatter.push(pcm))
        chunks.extend(formatter.flush())
        audio = SpokenAudio(self._tts.name, self._rate, tuple(chunks))
        if self._cache_entries and chunks:
            self._cache[self._key(text, voice, language)] = audio
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)
        return audio

    def _key(self, text: str, voice: str, language: str) -> tuple[str, str, str, int, int]:
        return (text.strip(), voice.strip(), language.strip(), self._rate, self._chunk_bytes)
