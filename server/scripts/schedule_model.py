"""The ideal schedule of a turn with the scripted providers, from their own timing model.

Used by bench_schedule.py. The scripted LLM sends chunk i of the reply at first_token + i / rate;
the scripted TTS sends a sentence's first 50 ms piece first_chunk_ms after it starts and piece k
at first_chunk + k · 50 ms · real-time factor. Ideally every sentence starts synthesizing the
moment its last character arrives, all at once, so the turn's first audio is the first
sentence's completion plus the TTS's first-chunk time, and the turn ends when the last of them
has produced its last piece and the LLM has finished the reply (its command comes last).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from nexy.providers.tts.scripted import CHUNK_SECONDS, ScriptedTTS, scripted_duration

WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight")
LLM_FIRST_MS = 100.0
CHUNKS_PER_SECOND = 25.0
COMMAND = {"command": "open_app", "args": {"app_name": "Safari"}}


@dataclass(frozen=True, slots=True)
class Case:
    chunk_chars: int
    tts_first_ms: float
    factor: float
    sentences: int
    command: bool
    llm_first_ms: float = LLM_FIRST_MS
    chunks_per_second: float = CHUNKS_PER_SECOND

    @property
    def sentence_texts(self) -> list[str]:
        # Short enough (< turn.first_segment_max_chars) that the first is never cut at a comma.
        return [f"This is sentence {WORDS[i]}." for i in range(self.sentences)]

    @property
    def reply(self) -> str:
        body: dict[str, object] = {"text": " ".join(self.sentence_texts)}
        if self.command:
            body.update(COMMAND)
        return json.dumps(body)

    def arrival(self, index: int) -> float:
        """Seconds after the request when the reply's character ``index`` arrives."""
        return self.llm_first_ms / 1000 + (index // self.chunk_chars) / self.chunks_per_second


@dataclass(frozen=True, slots=True)
class Ideal:
    first_audio: float
    end: float


def synthesis_seconds(text: str, first_ms: float, factor: float) -> tuple[float, float]:
    """(first piece, last piece) of the scripted TTS's audio for ``text``, from its start."""
    rate = ScriptedTTS.sample_rate
    total, step = round(scripted_duration(text) * rate), round(CHUNK_SECONDS * rate)
    pieces = math.ceil(total / step)
    return first_ms / 1000, first_ms / 1000 + (pieces - 1) * step / rate * factor


def ideal(case: Case) -> Ideal:
    reply = case.reply
    first_audio, end = math.inf, case.arrival(len(reply) - 1)
    searched = 0
    for text in case.sentence_texts:
        last_char = reply.index(text, searched) + len(text) - 1
        searched = last_char + 1
        done = case.arrival(last_char)
        first_piece, last_piece = synthesis_seconds(text, case.tts_first_ms, case.factor)
        first_audio = min(first_audio, done + first_piece)
        end = max(end, done + last_piece)
    return Ideal(first_audio, end)
