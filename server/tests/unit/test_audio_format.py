"""Tests for TTS audio conversion: resampling, silence trimming and wire chunking."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from nexy.providers.tts.audio import PcmFormatter, chunk_bytes_for, pcm_duration_seconds

SRC = 22050
DST = 48000


def tone(freq: float, seconds: float, rate: int, amplitude: int = 12000) -> npt.NDArray[np.int16]:
    """A sine at ``freq`` Hz as int16 samples."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    samples[0] = samples[-1] = amplitude  # loud edges, so trimming leaves the tone whole
    return samples


def pcm(samples: npt.NDArray[np.int16]) -> bytes:
    """Samples as little-endian wire bytes."""
    return samples.astype("<i2").tobytes()


def run(fmt: PcmFormatter, *pieces: bytes) -> list[bytes]:
    """Push every piece then flush; return all chunks in order."""
    chunks: list[bytes] = []
    for piece in pieces:
        chunks += fmt.push(piece)
    return chunks + fmt.flush()


def samples_of(chunks: list[bytes]) -> npt.NDArray[np.int16]:
    """Decode wire chunks back into int16 samples."""
    return np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.int16)


def peak_frequency(samples: npt.NDArray[np.int16], rate: int) -> float:
    """The strongest frequency in ``samples`` (Hz)."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def test_chunk_bytes_for() -> None:
    assert chunk_bytes_for(48000, 100) == 9600
    assert chunk_bytes_for(22050, 10) == 440
    assert chunk_bytes_for(8000, 0 + 1) % 2 == 0
    with pytest.raises(ValueError):
        chunk_bytes_for(0, 100)


def test_pcm_duration_seconds() -> None:
    assert pcm_duration_seconds(96000, 48000) == pytest.approx(1.0)
    assert pcm_duration_seconds(3, 1) == pytest.approx(1.0)  # the odd byte is not a sample


def test_resample_keeps_length_and_frequency() -> None:
    fmt = PcmFormatter(SRC, DST, max_chunk_bytes=9600)
    out = samples_of(run(fmt, pcm(tone(440.0, 1.0, SRC))))
    assert abs(out.size - DST) <= 0.01 * DST
    assert peak_frequency(out, DST) == pytest.approx(440.0, abs=3.0)


def test_passthrough_at_equal_rates_is_exact() -> None:
    source = tone(300.0, 0.5, DST)
    fmt = PcmFormatter(DST, DST, max_chunk_bytes=1000)
    out = samples_of(run(fmt, pcm(source)))
    np.testing.assert_array_equal(out, source)


def test_odd_length_pushes_rejoin_split_samples() -> None:
    data = pcm(tone(500.0, 0.2, DST))
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]  # 7 bytes: every sample split
    fmt = PcmFormatter(DST, DST, max_chunk_bytes=512)
    assert b"".join(run(fmt, *pieces)) == data


def test_silence_trimmed_at_edges_and_kept_in_the_middle() -> None:
    quiet = np.zeros(1000, dtype=np.int16)
    hiss = np.full(500, 20, dtype=np.int16)  # below the threshold: counts as silence
    speech = tone(400.0, 0.05, DST)
    source = np.concatenate([quiet, hiss, speech, quiet, speech, hiss, quiet])
    fmt = PcmFormatter(DST, DST, max_chunk_bytes=256, silence_threshold=50)
    out = samples_of(run(fmt, *[pcm(part) for part in np.array_split(source, 13)]))
    np.testing.assert_array_equal(out, np.concatenate([speech, quiet, speech]))


def test_only_silence_yields_nothing() -> None:
    fmt = PcmFormatter(SRC, DST, max_chunk_bytes=512)
    assert run(fmt, pcm(np.zeros(5000, dtype=np.int16))) == []


def test_chunks_are_even_bounded_and_emitted_early() -> None:
    fmt = PcmFormatter(SRC, DST, max_chunk_bytes=999)  # odd limit rounds down to 998
    early = fmt.push(pcm(tone(440.0, 0.5, SRC)))
    assert early, "full chunks must not wait for flush"
    assert all(len(chunk) == 998 for chunk in early[:-1])
    chunks = early + fmt.flush()
    assert all(0 < len(chunk) <= 998 and len(chunk) % 2 == 0 for chunk in chunks)


def test_ready_audio_is_not_held_back_to_fill_a_chunk() -> None:
    # 50 ms of engine audio must go out at once even though a wire chunk holds 100 ms.
    fmt = PcmFormatter(SRC, DST, max_chunk_bytes=9600)
    early = fmt.push(pcm(tone(440.0, 0.05, SRC)))
    assert sum(len(chunk) for chunk in early) > 9600 * 0.3  # less the resampler delay
    # A remainder too small to be worth a message waits for more audio or the flush.
    tiny = PcmFormatter(SRC, DST, max_chunk_bytes=9600)
    assert tiny.push(pcm(tone(440.0, 0.005, SRC))) == []
    assert tiny.flush()


def test_after_the_first_chunk_only_full_chunks_are_sent() -> None:
    fmt = PcmFormatter(SRC, SRC, max_chunk_bytes=1000)
    first = fmt.push(pcm(tone(440.0, 0.02, SRC)))  # 882 bytes: sent at once, not held back
    assert len(first) == 1 and len(first[0]) < 1000
    later = fmt.push(pcm(tone(440.0, 0.02, SRC)))  # another 882: waits to fill a chunk
    assert later == []
    more = fmt.push(pcm(tone(440.0, 0.02, SRC)))
    assert [len(c) for c in more] == [1000]
    rest = fmt.flush()
    assert sum(map(len, rest)) == 882 * 3 - len(first[0]) - 1000
    # A new utterance again sends its first audio at once.
    assert fmt.push(pcm(tone(440.0, 0.02, SRC)))


def test_tiny_pieces_match_one_piece() -> None:
    data = pcm(tone(440.0, 0.5, SRC))
    whole = samples_of(run(PcmFormatter(SRC, DST, max_chunk_bytes=4096), data))
    fmt = PcmFormatter(SRC, DST, max_chunk_bytes=4096)
    pieces = samples_of(run(fmt, *[data[i : i + 33] for i in range(0, len(data), 33)]))
    assert abs(pieces.size - whole.size) <= 4
    assert peak_frequency(pieces, DST) == pytest.approx(440.0, abs=3.0)


def test_flush_resets_for_the_next_utterance() -> None:
    fmt = PcmFormatter(SRC, DST, max_chunk_bytes=4096)
    first = samples_of(run(fmt, pcm(tone(440.0, 0.3, SRC)), b"\x01"))  # dangling half sample
    second = samples_of(run(fmt, pcm(tone(440.0, 0.3, SRC))))
    assert first.size == second.size


def test_extreme_samples_do_not_overflow_the_gate() -> None:
    source = np.array([0, 0, -32768, 32767, 0], dtype=np.int16)
    fmt = PcmFormatter(DST, DST, max_chunk_bytes=64, silence_threshold=100)
    np.testing.assert_array_equal(samples_of(run(fmt, pcm(source))), source[2:4])


def test_silence_trimmed_when_resampling() -> None:
    quiet = np.zeros(3000, dtype=np.int16)
    source = np.concatenate([quiet, tone(440.0, 0.2, SRC), quiet])
    out = samples_of(run(PcmFormatter(SRC, DST, max_chunk_bytes=2048), pcm(source)))
    assert abs(out.size - 0.2 * DST) <= 0.02 * DST  # both 136 ms pauses are gone


def test_quiet_run_held_across_pieces_is_kept_when_speech_resumes() -> None:
    # The last piece starts quiet and ends loud: the quiet runs held from earlier pieces and its
    # own quiet start are mid-speech pauses and must all come out, in order.
    speech = tone(400.0, 0.02, DST)
    quiet = np.zeros(300, dtype=np.int16)
    fmt = PcmFormatter(DST, DST, max_chunk_bytes=256, silence_threshold=0)
    out = samples_of(run(fmt, pcm(speech), pcm(quiet), pcm(np.concatenate([quiet, speech]))))
    np.testing.assert_array_equal(out, np.concatenate([speech, quiet, quiet, speech]))
