"""Speech level on the wire: one loudness gain per utterance, then a soft peak limiter.

Engines differ: Piper speaks about 3 dB louder than eSpeak NG and its peaks touch full scale.
Each utterance gets one gain, decided from its first moments of speech and then held, so the
level never moves between the 50 ms pieces of a reply (no pumping) and never jumps inside one
(no clicks). Peaks the gain would push too high are bent smoothly below a ceiling by a
memoryless curve: it needs no look-ahead, keeps no state between pieces and is a few numpy
operations per piece, which matters because every wire chunk passes through here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]
Float32Array = npt.NDArray[np.float32]

_FULL_SCALE = 32767.0


def _linear(dbfs: float) -> float:
    return _FULL_SCALE * 10 ** (dbfs / 20)


@dataclass(frozen=True, slots=True)
class Level:
    """Loudness target and peak ceiling for spoken audio (all levels in dB full scale)."""

    target_dbfs: float = -20.0  # RMS of an utterance's speech; both engines land near it
    ceiling_dbfs: float = -1.0  # no sample reaches this (≈ 29,204 in int16)
    knee_dbfs: float = -6.0  # the limiter leaves samples below this untouched
    max_boost_db: float = 12.0  # a near-silent utterance is raised at most this much
    max_cut_db: float = 12.0
    # Speech measured before the gain is fixed. A whole Piper sentence arrives at once; eSpeak's
    # 60 ms pieces come far faster than real time, so waiting for this costs it milliseconds.
    # It is kept short because an engine that produces at real-time speed (a streaming voice,
    # the paced scripted one) makes first audio wait this long: 0.1 s still keeps Piper and
    # eSpeak within 3 dB of each other (tests/unit/test_audio_level.py); one 60 ms piece of
    # eSpeak's quiet onset does not.
    analysis_seconds: float = 0.15

    def __post_init__(self) -> None:
        if not self.target_dbfs < self.ceiling_dbfs <= 0 or self.knee_dbfs >= self.ceiling_dbfs:
            raise ValueError("levels must satisfy target < ceiling <= 0 and knee < ceiling")
        if min(self.max_boost_db, self.max_cut_db, self.analysis_seconds) < 0:
            raise ValueError("gain bounds and analysis_seconds must not be negative")

    @property
    def ceiling(self) -> int:
        """The largest sample magnitude the limiter lets through."""
        return math.floor(_linear(self.ceiling_dbfs))

    def gain_for(self, samples: Float32Array) -> float:
        """The bounded gain that brings ``samples``' RMS to the target."""
        if samples.size == 0:
            return 1.0
        rms = math.sqrt(float(np.dot(samples, samples)) / samples.size)
        wanted = _linear(self.target_dbfs) / max(rms, 1e-3)
        return min(max(wanted, 10 ** (-self.max_cut_db / 20)), 10 ** (self.max_boost_db / 20))


WIRE_LEVEL = Level()  # what every utterance sent to a client is brought to


class UtteranceGain:
    """Holds an utterance's first speech until its gain is decided, then applies that gain."""

    def __init__(self, level: Level, sample_rate: int) -> None:
        self.level = level
        self._analysis = max(int(level.analysis_seconds * sample_rate), 1)
        self._gain: float | None = None
        self._pending: list[Int16Array] = []
        self._pending_size = 0

    def apply(self, samples: Int16Array, *, last: bool) -> Float32Array:
        """``samples`` scaled as float32; empty while the gain is still being decided."""
        if self._gain is None:
            self._pending.append(samples)
            self._pending_size += samples.size
            if self._pending_size < self._analysis and not last:
                return np.zeros(0, dtype=np.float32)
            samples = np.concatenate(self._pending) if len(self._pending) > 1 else samples
            self._pending, self._pending_size = [], 0
            scaled = samples.astype(np.float32)
            self._gain = self.level.gain_for(scaled)
        else:
            scaled = samples.astype(np.float32)
        scaled *= np.float32(self._gain)
        return scaled

    def reset(self) -> None:
        """Forget the gain: the next audio starts a new utterance."""
        self._gain = None
        self._pending, self._pending_size = [], 0


def limit(samples: Float32Array, level: Level) -> Int16Array:
    """Round to int16 with peaks above the knee bent smoothly to stay below the ceiling.

    Above the knee, tanh continues the straight line with the same slope and flattens towards
    the ceiling, so loud peaks lose a little height without the hard corner a clip would add.
    ``samples`` is modified in place.
    """
    knee = _linear(level.knee_dbfs)
    if samples.size and (samples.max() > knee or samples.min() < -knee):
        span = level.ceiling - knee
        over = np.flatnonzero(np.abs(samples) > knee)
        peaks = samples[over]
        bent = knee + span * np.tanh((np.abs(peaks) - knee) / span)
        samples[over] = np.copysign(bent, peaks)
    return np.rint(samples, out=samples).astype(np.int16)
