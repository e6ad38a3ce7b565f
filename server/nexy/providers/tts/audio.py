"""Audio format conversion for TTS output: resampling, silence trimming, level and wire chunking.

Every engine speaks little-endian int16 mono PCM at its own native rate; the wire wants one
fixed rate in bounded, sample-aligned chunks at one loudness without clipped peaks. All of that
conversion lives here so engines stay simple and the transport never has to know which engine
produced the audio.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import soxr

from nexy.providers.tts.level import Level, UtteranceGain, limit

_SAMPLE_BYTES = 2  # int16 mono
_WIRE_DTYPE = np.dtype("<i2")

Int16Array = npt.NDArray[np.int16]


def pcm_duration_seconds(num_bytes: int, sample_rate: int) -> float:
    """Playback length in seconds of ``num_bytes`` of int16 mono PCM at ``sample_rate``."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return (max(num_bytes, 0) // _SAMPLE_BYTES) / sample_rate


def chunk_bytes_for(sample_rate: int, chunk_ms: int) -> int:
    """Even byte count holding ``chunk_ms`` milliseconds of int16 mono PCM (at least one sample)."""
    if sample_rate <= 0 or chunk_ms <= 0:
        raise ValueError(f"rate and chunk_ms must be positive, got {sample_rate}, {chunk_ms}")
    samples = max(sample_rate * chunk_ms // 1000, 1)
    return samples * _SAMPLE_BYTES


class PcmFormatter:
    """Turns a TTS engine's native int16 mono PCM stream into wire chunks.

    With a ``level`` (the formatters right before the wire pass ``WIRE_LEVEL``; the ones inside
    engine chains do not, so audio is levelled once) each utterance gets one loudness gain and
    its peaks stay below the ceiling, resampler overshoot included.
    """

    def __init__(
        self,
        src_rate: int,
        dst_rate: int,
        max_chunk_bytes: int,
        silence_threshold: int = 0,
        *,
        level: Level | None = None,
        message_bytes: int = 0,
    ) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
        if max_chunk_bytes < _SAMPLE_BYTES:
            raise ValueError(f"max_chunk_bytes must hold one sample, got {max_chunk_bytes}")
        if not 0 <= silence_threshold <= 32767:
            raise ValueError(f"silence_threshold must be within 0..32767, got {silence_threshold}")
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        # An odd limit is rounded down so no chunk ever splits a sample.
        self.max_chunk_bytes = max_chunk_bytes - (max_chunk_bytes % _SAMPLE_BYTES)
        self.silence_threshold = silence_threshold
        # Audio converted together (it was waiting) leaves in messages of up to this size; an
        # utterance's first message still holds at most one chunk, and nothing is held back to
        # fill a message: only whole chunks are ever waited for.
        self.message_bytes = max(
            self.max_chunk_bytes, message_bytes - message_bytes % _SAMPLE_BYTES
        )
        # Smaller remainders wait for the next push (or flush) so messages stay a sensible size.
        self._min_bytes = max(
            _SAMPLE_BYTES, self.max_chunk_bytes // 5 // _SAMPLE_BYTES * _SAMPLE_BYTES
        )
        self._resampler: soxr.ResampleStream | None = None
        self._sent = False  # whether this utterance has produced a chunk yet
        self._gain = UtteranceGain(level, src_rate) if level is not None else None
        if src_rate != dst_rate:
            # HQ is transparent for speech and cheap enough to run per stream. Levelled audio is
            # resampled as float so the limiter after it also catches the resampler's overshoot.
            self._resampler = soxr.ResampleStream(
                src_rate,
                dst_rate,
                1,
                dtype="float32" if level is not None else "int16",
                quality="HQ",
            )
        self._carry = b""  # the first byte of a sample split across two pushes
        self._heard = False  # whether this utterance has had a sample above the threshold
        self._held: list[Int16Array] = []  # a trailing quiet run, kept if louder audio follows
        self._ready = bytearray()  # converted output not yet cut into chunks
        # Engine samples not yet converted. After an utterance's first chunk only whole chunks
        # leave, so the engine's small pieces are converted together, once per wire chunk:
        # resampling, levelling and limiting cost per call, and nothing leaves any sooner.
        self._pending: list[Int16Array] = []
        self._pending_samples = 0
        self._chunk_samples = self.max_chunk_bytes // _SAMPLE_BYTES * src_rate / dst_rate

    def push(self, pcm: bytes) -> list[bytes]:
        """Feed engine PCM of any length; return the wire chunks now ready (may be empty)."""
        self._take_in(pcm)
        if self._pending and (not self._sent or self._waiting() >= self._chunk_samples):
            self._emit_pending(last=False)
        return self._cut(final=False)

    def _take_in(self, pcm: bytes) -> None:
        data = self._carry + pcm
        usable = len(data) - (len(data) % _SAMPLE_BYTES)
        self._carry = data[usable:]
        if usable:
            # A read-only view of the engine's bytes: nothing below writes to it, so no copy.
            samples = np.frombuffer(data, dtype=_WIRE_DTYPE, count=usable // _SAMPLE_BYTES)
            passed = self._gate(samples)
            if passed.size:
                self._pending.append(passed)
                self._pending_samples += passed.size

    def wanted_bytes(self) -> int:
        """Engine bytes the next ``push`` needs before it can return a chunk: any before the
        utterance's first chunk, then what completes the next whole one."""
        if not self._sent:
            return 1
        return max(1, math.ceil(self._chunk_samples - self._waiting())) * _SAMPLE_BYTES

    def _waiting(self) -> float:
        """Audio not yet sent, in engine samples: unconverted, and converted but not cut."""
        return self._pending_samples + len(self._ready) / _SAMPLE_BYTES * (
            self.src_rate / self.dst_rate
        )

    def flush(self, pcm: bytes = b"") -> list[bytes]:
        """End the utterance with its last ``pcm`` (if any): return the remaining chunks and
        reset for the next utterance. Given together, the end of the audio and the resampler's
        tail share messages instead of the tail going alone."""
        self._take_in(pcm)
        # A trailing quiet run and a dangling half sample are both dropped at the end.
        self._held.clear()
        self._carry = b""
        self._heard = False
        # last=True drains the filter delay; without it the utterance loses its final samples.
        self._emit_pending(last=True)
        if self._resampler is not None:
            self._resampler.clear()
        if self._gain is not None:
            self._gain.reset()
        chunks = self._cut(final=True)
        self._sent = False
        return chunks

    def _gate(self, samples: Int16Array) -> Int16Array:
        """Drop leading quiet samples and hold back a trailing quiet run; keep quiet in between.

        This runs on the engine's samples, before resampling: engine silence is exact there,
        while the resampler turns it into low-level noise that a threshold of 0 would keep.
        """
        limit = self.silence_threshold
        if self._heard and samples.size:
            # Mid-utterance with a loud last sample (nearly every push): everything passes, with
            # any held quiet run in front, and the whole-array scan below is not needed.
            tail = int(samples[-1])
            if tail > limit or tail < -limit:
                passed = np.concatenate([*self._held, samples]) if self._held else samples
                self._held = []
                return passed
        # Comparing both signs avoids abs(), which overflows on -32768 in int16.
        loud = np.flatnonzero((samples > limit) | (samples < -limit))
        if loud.size == 0:
            if self._heard:
                self._held.append(samples)
            return samples[:0]
        first, last = int(loud[0]), int(loud[-1])
        if not self._heard:
            samples, last = samples[first:], last - first
            self._heard = True
        # Louder audio follows the held run, so that pause was mid-speech and is kept.
        passed = np.concatenate([*self._held, samples[: last + 1]])
        self._held = [samples[last + 1 :]]
        return passed

    def _emit_pending(self, *, last: bool) -> None:
        pending = self._pending
        if len(pending) == 1:
            samples = pending[0]
        else:
            samples = np.concatenate(pending) if pending else np.zeros(0, dtype=np.int16)
        self._pending, self._pending_samples = [], 0
        self._emit(samples, last=last)

    def _emit(self, samples: Int16Array, *, last: bool) -> None:
        if self._gain is not None:
            scaled = self._gain.apply(samples)
            if self._resampler is not None:
                scaled = self._resampler.resample_chunk(scaled, last=last)
            samples = limit(scaled, self._gain.level)
        elif self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        # bytearray takes the array's buffer through a byte view: one copy, not two (``+=`` with
        # the array itself would be numpy's element-wise add).
        self._ready += np.ascontiguousarray(samples, dtype=_WIRE_DTYPE).data.cast("B")

    def _cut(self, *, final: bool) -> list[bytes]:
        # The utterance's first audio goes out as soon as a useful amount is ready (waiting to
        # fill a whole chunk would add that much to the time to first audio); after that only
        # whole chunks leave, joined into messages of up to message_bytes when more is ready.
        size = self.max_chunk_bytes
        ready = len(self._ready)
        early = not self._sent and ready >= self._min_bytes
        whole = ready if final or early else ready - ready % size
        start = min(size, whole) if not self._sent else 0
        bounds = [0] if start else []
        bounds += range(start, whole, self.message_bytes)
        ends = [*bounds[1:], whole] if bounds else []
        # Slices of a memoryview are copied once (into bytes); bytearray slices would be twice.
        with memoryview(self._ready) as view:
            chunks = [bytes(view[i:j]) for i, j in zip(bounds, ends, strict=True)]
        del self._ready[:whole]
        self._sent = self._sent or bool(chunks)
        return chunks
