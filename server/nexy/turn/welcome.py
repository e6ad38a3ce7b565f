"""Whole-utterance synthesis for GenerateWelcomeAudio (the client's general TTS endpoint).

The metadata goes first and must carry the real duration, so the audio is synthesized in full
before anything is sent. That makes each request's memory and engine time proportional to its
audio, so both are capped (``welcome.max_audio_seconds``); repeated requests (the startup
greeting) are served from an LRU cache bounded in entries and in bytes.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from contextlib import aclosing
from dataclasses import dataclass

from nexy.config import WelcomeSettings
from nexy.providers.tts.audio import PcmFormatter, chunk_bytes_for, pcm_duration_seconds
from nexy.providers.tts.base import TTSProvider, Voice
from nexy.providers.tts.level import WIRE_LEVEL
from nexy.providers.tts.voices import detect_language
from nexy.turn.segment import SentenceSegmenter
from nexy.turn.speech_text import clean_for_speech

log = logging.getLogger(__name__)

_Key = tuple[str, str, str, int, int]


@dataclass(frozen=True, slots=True)
class SpokenAudio:
    method: str  # the engine that spoke it
    sample_rate: int
    chunks: tuple[bytes, ...]

    @property
    def nbytes(self) -> int:
        return sum(len(c) for c in self.chunks)

    @property
    def duration_sec(self) -> float:
        return pcm_duration_seconds(self.nbytes, self.sample_rate)


class WelcomeSpeaker:
    """Synthesizes a text to wire-format chunks, with a bounded LRU cache."""

    def __init__(
        self, tts: TTSProvider, settings: WelcomeSettings, *, sample_rate: int, chunk_ms: int
    ) -> None:
        self._tts = tts
        self._settings = settings
        self._rate = sample_rate
        self._chunk_bytes = chunk_bytes_for(sample_rate, chunk_ms)
        # Whole int16 samples: a cut never splits one.
        self._max_audio_bytes = int(settings.max_audio_seconds * sample_rate) * 2
        self._cache: OrderedDict[_Key, SpokenAudio] = OrderedDict()
        self._cache_bytes = 0

    @property
    def cache_bytes(self) -> int:
        """Bytes the cache holds now: its audio plus its keys' texts."""
        return self._cache_bytes

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
        # Cleaned like a turn's text: markdown and emoji are not read out. Fifty emoji once
        # became one 700-phoneme "sentence" that held the voice engine for seconds; a text of
        # emoji alone now says nothing (metadata with duration 0, then end_message).
        spoken = clean_for_speech(text) if text.strip() else self._settings.text
        lang = language.strip() or detect_language(spoken, self._settings.language)
        chunks = await self._synthesize(spoken, Voice(lang, voice.strip()))
        audio = SpokenAudio(self._tts.name, self._rate, tuple(chunks))
        if chunks:
            self._remember(self._key(text, voice, language), audio)
        return audio

    async def _synthesize(self, text: str, voice: Voice) -> list[bytes]:
        """Wire-format chunks for ``text``, stopping the engine at ``max_audio_seconds``."""
        formatter = PcmFormatter(
            self._tts.sample_rate, self._rate, self._chunk_bytes, level=WIRE_LEVEL
        )
        chunks: list[bytes] = []
        total = 0
        # One engine call per sentence, not one for the whole text: the voice engines serve
        # their requests one at a time, and a long greeting as one request would hold the
        # engine for seconds while every turn's speech waits behind it (and times out).
        for segment in _sentences(text):
            async with aclosing(self._tts.synthesize(segment, voice)) as stream:
                async for pcm in stream:
                    for chunk in formatter.push(pcm):
                        chunks.append(chunk)
                        total += len(chunk)
                    if total >= self._max_audio_bytes:
                        # Leaving the loop closes the stream, which aborts the engine's utterance.
                        log.info(
                            "welcome audio cut at %.0f s (%d characters of text)",
                            self._settings.max_audio_seconds,
                            len(text),
                        )
                        return _cut(chunks, self._max_audio_bytes)
        chunks.extend(formatter.flush())
        return _cut(chunks, self._max_audio_bytes)

    def _remember(self, key: _Key, audio: SpokenAudio) -> None:
        """Cache ``audio`` unless it alone breaks a bound; evict least recently used entries."""
        size = _size(key, audio)
        limits = self._settings
        if limits.cache_entries == 0 or size > limits.cache_max_bytes:
            return
        previous = self._cache.pop(key, None)  # two concurrent misses for the same text
        if previous is not None:
            self._cache_bytes -= _size(key, previous)
        self._cache[key] = audio
        self._cache_bytes += size
        while len(self._cache) > limits.cache_entries or self._cache_bytes > limits.cache_max_bytes:
            old_key, old = self._cache.popitem(last=False)
            self._cache_bytes -= _size(old_key, old)

    def _key(self, text: str, voice: str, language: str) -> _Key:
        return (text.strip(), voice.strip(), language.strip(), self._rate, self._chunk_bytes)


def _size(key: _Key, audio: SpokenAudio) -> int:
    """What an entry costs: its audio and its key's texts (a long text is a big key)."""
    return audio.nbytes + len(key[0]) + len(key[1]) + len(key[2])


def _sentences(text: str) -> list[str]:
    """``text`` as the turn pipeline would cut it: sentences, none over 300 characters."""
    segmenter = SentenceSegmenter(first_max_chars=300, target_chars=1, max_chars=300)
    return [s for s in (*segmenter.push(text), *segmenter.flush()) if s.strip()]


def _cut(chunks: list[bytes], limit: int) -> list[bytes]:
    """``chunks`` holding at most ``limit`` bytes in all, the last one shortened if needed."""
    kept: list[bytes] = []
    room = limit
    for chunk in chunks:
        if room <= 0:
            break
        kept.append(chunk[:room])
        room -= len(kept[-1])
    return kept
