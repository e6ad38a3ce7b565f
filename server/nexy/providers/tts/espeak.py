"""Embedded eSpeak NG speech through the library bundled by ``espeakng-loader``.

Only voice names the library itself lists ever reach it (see ``espeak_voices``): a client's
unknown voice or language is spoken with the configured voice for its language instead.

The C library keeps process-global state (one synth callback, one current voice) and is not
thread-safe, so every instance shares one engine whose calls all run on a single worker thread.
Audio leaves that thread through a small bounded buffer: a slow consumer makes synthesis wait
rather than grow memory, and a consumer that goes away aborts the utterance from the callback.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import espeakng_loader

from nexy.components import READY, ComponentStatus, State
from nexy.providers.handoff import End, Handoff
from nexy.providers.tts.base import TTSError, Voice
from nexy.providers.tts.espeak_voices import EspeakVoices, list_voices
from nexy.providers.tts.voices import WarnOnce, language_key, language_keys

log = logging.getLogger(__name__)

# Constants from eSpeak NG's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # without it a missing data folder calls exit() on the process
_RATE = 1
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EE_OK = 0
_BUFFER_MS = 60  # audio per callback: small enough for a quick first chunk

_T = TypeVar("_T")

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

DEFAULT_VOICES: Mapping[str, str] = {"en": "en-us", "ru": "ru", "de": "de", "fr": "fr", "es": "es"}
_NO_VOICES = EspeakVoices({}, {}, {})  # before start() no name is known to be safe


@dataclass(frozen=True, slots=True)
class _Job:
    """One utterance in flight; its audio leaves the worker thread through ``out``."""

    text: str
    voice_name: str
    rate_wpm: int
    out: Handoff[bytes]


class _Engine:
    """The process-wide eSpeak NG library, driven only from its own worker thread."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="espeak")
        # Everything below is touched only on the worker thread.
        self._lib: ctypes.CDLL | None = None
        self._users = 0
        self._sample_rate = 0
        self._voices = _NO_VOICES
        self._job: _Job | None = None
        self._callback = _SynthCallback(self._on_audio)  # kept alive: C holds the pointer

    async def call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the worker thread without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def acquire(self, voices: Iterable[str]) -> tuple[int, EspeakVoices]:
        """Worker: initialise for the first user and check ``voices``; return the rate and list."""
        if self._users == 0:
            self._sample_rate = self._initialize()
        self._users += 1
        try:
            for name in voices:
                self.check_voice(name)
        except TTSError:
            self.release()  # a user that failed to start must not keep the library alive
            raise
        return self._sample_rate, self._voices

    def release(self) -> None:
        """Worker: drop one user, terminating the library when the last one leaves."""
        self._users = max(self._users - 1, 0)
        if self._users == 0 and self._lib is not None:
            self._lib.espeak_Terminate()
            self._lib = None
            self._voices = _NO_VOICES

    def check_voice(self, name: str) -> None:
        """Worker: select voice ``name``; TTSError unless it is one the library lists."""
        resolved = self._voices.resolve(name)
        if (
            self._lib is None
            or resolved is None
            or self._lib.espeak_SetVoiceByName(resolved.encode()) != _EE_OK
        ):
            raise TTSError(f"eSpeak has no voice {name[:64]!r}")

    def submit(self, job: _Job) -> None:
        """Queue ``job`` behind any utterance in flight; the outcome arrives on its queue."""
        try:
            self._executor.submit(self._run, job)
        except RuntimeError as exc:  # the executor is shut down at interpreter exit
            raise TTSError("eSpeak worker is not running") from exc

    def _initialize(self) -> int:
        try:
            data = Path(espeakng_loader.get_data_path())
        except RuntimeError as exc:  # the loader raises this when its data folder is gone
            raise TTSError(f"eSpeak NG data is missing: {exc}") from None
        if not (data / "phontab").is_file():
            raise TTSError(f"eSpeak NG data is missing at {data}")
        try:
            lib = _bind(ctypes.CDLL(espeakng_loader.get_library_path()))
        except (OSError, AttributeError) as exc:  # no library, or one without these symbols
            raise TTSError(f"cannot load the eSpeak NG library: {exc}") from None
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, str(data).encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise TTSError(f"eSpeak NG failed to initialise with data at {data}")
        try:
            self._voices = list_voices(lib, data)
        except (AttributeError, OSError) as exc:  # a library without espeak_ListVoices
            lib.espeak_Terminate()
            raise TTSError(f"cannot list the eSpeak NG voices: {exc}") from None
        lib.espeak_SetSynthCallback(self._callback)
        self._lib = lib
        return int(rate)

    def _run(self, job: _Job) -> None:
        """Worker: synthesise one job; always ends its queue, whatever happens."""
        error = ""
        try:
            if not job.out.cancelled:
                self._synthesize(job)
            if job.out.cancelled:
                # Only a reader cut off by close() or the stall timeout still sees this.
                error = "eSpeak synthesis was aborted"
        except TTSError as exc:
            error = str(exc)
        except Exception as exc:  # the worker must outlive any one bad request
            error = f"eSpeak synthesis failed: {type(exc).__name__}"
        finally:
            self._job = None
            job.out.finish(error)

    def _synthesize(self, job: _Job) -> None:
        lib = self._lib
        if lib is None:
            raise TTSError("eSpeak engine is not started")
        self.check_voice(job.voice_name)
        # Set after the voice: a voice change may reset the speaking rate to its own default.
        lib.espeak_SetParameter(_RATE, job.rate_wpm, 0)
        text = job.text.replace("\0", " ").encode() + b"\0"
        self._job = job
        code = lib.espeak_Synth(text, len(text), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if code != _EE_OK and not job.out.cancelled:
            raise TTSError(f"eSpeak synthesis failed (code {code})")

    def _on_audio(self, wav: ctypes._Pointer[ctypes.c_short], count: int, _events: int) -> int:
        """The C synth callback (worker thread): 0 continues, 1 aborts the utterance."""
        try:
            job = self._job
            if job is None or job.out.cancelled:
                return 1
            if wav and count > 0:
                pcm = ctypes.string_at(wav, count * 2)
                return 0 if job.out.deliver(pcm) else 1
            return 0
        except Exception:  # an exception cannot cross into C; aborting is the safe answer
            return 1


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Declare the C signatures we call; ctypes would otherwise guess and truncate pointers."""
    c_int, c_uint, c_ptr = ctypes.c_int, ctypes.c_uint, ctypes.c_void_p
    lib.espeak_Initialize.argtypes = [c_int, c_int, ctypes.c_char_p, c_int]
    lib.espeak_Initialize.restype = c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = c_int
    lib.espeak_SetParameter.argtypes = [c_int, c_int, c_int]
    lib.espeak_SetParameter.restype = c_int
    # text, size, position, position_type, end_position, flags, unique_identifier, user_data
    uid = ctypes.POINTER(c_uint)
    lib.espeak_Synth.argtypes = [c_ptr, ctypes.c_size_t, c_uint, c_int, c_uint, c_uint, uid, c_ptr]
    lib.espeak_Synth.restype = c_int
    lib.espeak_Terminate.argtypes = []
    lib.espeak_Terminate.restype = c_int
    return lib


_ENGINE = _Engine()


class EspeakTTS:
    """Streaming text-to-speech with the embedded eSpeak NG engine."""

    syntheses_at_once = 1  # one worker thread

    name = "espeak"

    def __init__(
        self,
        *,
        voices: Mapping[str, str] | None = None,
        default_voice: str = "en-us",
        rate_wpm: int = 175,
        max_buffered_chunks: int = 16,
        stall_timeout_seconds: float = 30.0,
    ) -> None:
        if not 80 <= rate_wpm <= 450:
            raise ValueError(f"rate_wpm must be within 80..450, got {rate_wpm}")
        if max_buffered_chunks < 1 or stall_timeout_seconds <= 0:
            raise ValueError("max_buffered_chunks and stall_timeout_seconds must be positive")
        merged = {**DEFAULT_VOICES, **(voices or {})}
        self.voices: Mapping[str, str] = {language_key(k): v for k, v in merged.items()}
        self.default_voice = default_voice
        self.rate_wpm = rate_wpm
        self.sample_rate = 22050  # nominal until start() reads the engine's real rate
        self._capacity = max_buffered_chunks
        self._stall_seconds = stall_timeout_seconds
        self._status = ComponentStatus(State.DOWN, "not started")
        self._started = False
        self._jobs: set[Handoff[bytes]] = set()
        self._known = _NO_VOICES
        self._warn = WarnOnce(log)

    async def start(self) -> None:
        """Load and initialise eSpeak NG, checking that every configured voice exists."""
        if self._started:
            return
        needed = sorted({self.default_voice, *self.voices.values()})
        try:
            acquired = await _ENGINE.call(functools.partial(_ENGINE.acquire, needed))
        except TTSError as exc:
            self._status = ComponentStatus(State.DOWN, str(exc))
            raise
        self.sample_rate, self._known = acquired
        self._started = True
        self._status = READY

    def status(self) -> ComponentStatus:
        """READY once started, DOWN before start() and after close()."""
        return self._status

    async def close(self) -> None:
        """Abort utterances in flight and release the engine (idempotent)."""
        for out in list(self._jobs):
            out.cancel()
        if self._started:
            self._started = False
            await _ENGINE.call(_ENGINE.release)
        self._status = ComponentStatus(State.DOWN, "closed")

    def voice_name_for(self, voice: Voice) -> str:
        """The eSpeak voice for ``voice``: its name if eSpeak has it, else by its language.

        Only known after start(): before it every name counts as unknown.
        """
        if voice.name:
            resolved = self._known.resolve(voice.name)
            if resolved is not None:
                return resolved
            fallback = self._for_language(voice.language)
            self._warn("eSpeak has no voice %s, speaking with %s", voice.name, fallback)
            return fallback
        return self._for_language(voice.language)

    def _for_language(self, language: str) -> str:
        """The configured voice for ``language``, else eSpeak's own, else the default voice."""
        for key in language_keys(language):
            name = self.voices.get(key) or self._known.for_language(key)
            if name is not None:
                return name
        if language.strip():
            self._warn(
                "eSpeak has no voice for language %s, speaking with %s",
                language,
                self.default_voice,
            )
        return self.default_voice

    async def synthesize(self, text: str, voice: Voice) -> AsyncGenerator[bytes, None]:
        """Stream int16 LE mono PCM at ``sample_rate`` as eSpeak produces it."""
        if not text.strip():
            return
        if not self._started:
            raise TTSError("eSpeak engine is not started")
        out: Handoff[bytes] = Handoff(self._capacity, self._stall_seconds)
        self._jobs.add(out)
        try:
            _ENGINE.submit(_Job(text, self.voice_name_for(voice), self.rate_wpm, out))
            while not isinstance(item := await out.get(), End):
                yield item
            if item.error:
                raise TTSError(item.error)
        finally:
            # Reached on normal end, aclose() and cancellation alike; a no-op once finished.
            out.cancel()
            self._jobs.discard(out)
