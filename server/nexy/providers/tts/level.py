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
    # Speech over which the gain settles before it is held (nothing waits for it: see
    # UtteranceGain). Long enough that eSpeak's quiet onset does not decide the utterance's
    # level; Piper and eSpeak then stay within 3 dB (tests/unit/test_audio_level.py).
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

    def gain_for_rms(self, rms: float) -> float:
        """The bounded gain that brings speech of this RMS to the target."""
        wanted = _linear(self.target_dbfs) / max(rms, 1e-3)
        return min(max(wanted, 10 ** (-self.max_cut_db / 20)), 10 ** (self.max_boost_db / 20))


WIRE_LEVEL = Level()  # what every utterance sent to a client is brought to


class UtteranceGain:
    """Applies an utterance's gain from its first piece on, settling it over its first speech.

    Nothing is held back: a voice that streams at real-time speed would otherwise make first
    audio wait for the whole analysis window. The first piece gets the gain its own level asks
    for; until ``analysis_seconds`` of speech have passed, each piece moves to the gain the speech
    so far asks for (down at once, so louder speech never overshoots; up by a ramp across the
    piece, so no step is heard); then it is held.
    """

    def __init__(self, level: Level, sample_rate: int) -> None:
        self.level = level
        self._analysis = max(int(level.analysis_seconds * sample_rate), 1)
        self._gain: float | None = None
        self._seen = 0  # samples measured so far (up to the analysis window)
        self._energy = 0.0  # their sum of squares

    def apply(self, samples: Int16Array) -> Float32Array:
        """``samples`` scaled as float32."""
        scaled = samples.astype(np.float32)
        if self._seen >= self._analysis:
            scaled *= np.float32(self._gain)
            return scaled
        if scaled.size == 0:
            return scaled
        self._energy += float(np.dot(scaled, scaled))
        self._seen += scaled.size
        wanted = self.level.gain_for_rms(math.sqrt(self._energy / self._seen))
        # Louder speech than measured so far takes the lower gain at once (no overshoot into the
        # limiter); a higher gain is reached by a ramp across the piece.
        start = wanted if self._gain is None else min(self._gain, wanted)
        self._gain = wanted
        if start == wanted:
            scaled *= np.float32(wanted)
        else:
            scaled *= np.linspace(start, wanted, scaled.size, dtype=np.float32)
        return scaled

    def reset(self) -> None:
        """Forget the gain: the next audio starts a new utterance."""
        self._gain = None
        self._seen, self._energy = 0, 0.0


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
