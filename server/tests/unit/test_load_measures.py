"""The load test's pure measures: a player's stall, the nearest-rank percentile, server pauses."""

from __future__ import annotations

import math
import random

import pytest
from scripts.benchlib import percentile
from scripts.loadtest.run import listening_left
from scripts.loadtest.turns import TurnResult, pause_windows, pct, playback_stall

CHUNK = 0.1  # seconds of audio per chunk, the wire's largest
# Arrival times like 0.1 * 3 are not exact: "no stall" allows float noise (the report counts a
# turn as stalled above 0.5 ms).
NO_STALL = pytest.approx(0.0, abs=1e-9)


def _steady(count: int, every: float = CHUNK, start: float = 0.0) -> list[float]:
    """Arrival times of ``count`` chunks, one every ``every`` seconds."""
    return [start + i * every for i in range(count)]


# --------------------------------------------------------------------------------------------
# playback_stall: a player that starts ``prebuffer`` s after the first chunk arrives
# --------------------------------------------------------------------------------------------


def test_no_chunks_no_stall() -> None:
    assert playback_stall([], [], prebuffer=0.2) == 0.0


def test_chunks_arriving_at_playback_speed_never_stall() -> None:
    arrivals = _steady(50)
    assert playback_stall(arrivals, [CHUNK] * 50, prebuffer=0.2) == 0.0
    # Even without a jitter buffer: each chunk arrives exactly when the previous one ends.
    assert playback_stall(arrivals, [CHUNK] * 50, prebuffer=0.0) == NO_STALL


def test_the_wait_for_the_first_chunk_is_not_a_stall() -> None:
    """Time to first audio is measured separately; playback starts from the first chunk."""
    assert playback_stall(_steady(20, start=5.0), [CHUNK] * 20, prebuffer=0.2) == 0.0


@pytest.mark.parametrize("late", [0.25, 0.5, 1.0])
def test_a_chunk_late_beyond_the_buffer_stalls_by_what_the_buffer_could_not_cover(
    late: float,
) -> None:
    prebuffer = 0.2
    arrivals = _steady(20)
    # Chunk 10 and, the stream being sequential, every chunk after it arrive ``late`` s late.
    arrivals[10:] = [t + late for t in arrivals[10:]]
    stall = playback_stall(arrivals, [CHUNK] * 20, prebuffer=prebuffer)
    # The player is silent once, for the lateness minus the buffer; the chunks after the late
    # one keep the same pace, so they do not stall again.
    assert stall == pytest.approx(late - prebuffer)
    # With no buffer at all the stall is the whole lateness.
    assert playback_stall(arrivals, [CHUNK] * 20, prebuffer=0.0) == pytest.approx(late)


@pytest.mark.parametrize("late", [0.05, 0.15, 0.2])
def test_the_prebuffer_absorbs_a_late_chunk_up_to_its_own_length(late: float) -> None:
    arrivals = _steady(20)
    arrivals[10:] = [t + late for t in arrivals[10:]]
    assert playback_stall(arrivals, [CHUNK] * 20, prebuffer=0.2) == NO_STALL
    # The same lateness without the buffer is heard.
    assert playback_stall(arrivals, [CHUNK] * 20, prebuffer=0.0) == pytest.approx(late)


def test_a_burst_of_queued_audio_covers_a_long_gap_after_it() -> None:
    """A 0.6 s gap alone would look bad; 0.5 s already buffered plus the prebuffer cover it."""
    arrivals = [0.0] * 5 + [0.6, 0.7, 0.8]
    assert playback_stall(arrivals, [CHUNK] * 8, prebuffer=0.2) == 0.0
    # One more late chunk beyond what was buffered is heard: 0.5 + 0.2 s covered, 0.9 s waited.
    arrivals = [0.0] * 5 + [0.9]
    assert playback_stall(arrivals, [CHUNK] * 6, prebuffer=0.2) == pytest.approx(0.2)


def test_many_slightly_late_chunks_add_up() -> None:
    """Chunks of 0.1 s every 0.12 s: no gap is large, but the 0.2 s buffer drains after 10
    chunks and every later chunk leaves the player waiting 20 ms."""
    arrivals = _steady(20, every=0.12)
    assert max(b - a for a, b in zip(arrivals, arrivals[1:], strict=False)) < 0.15
    assert playback_stall(arrivals, [CHUNK] * 20, prebuffer=0.2) == pytest.approx(9 * 0.02)


def test_chunk_lengths_come_from_the_durations_not_the_arrivals() -> None:
    """Longer chunks buffer more: 0.3 s chunks every 0.3 s never stall; 0.1 s chunks do."""
    arrivals = _steady(10, every=0.3)
    assert playback_stall(arrivals, [0.3] * 10, prebuffer=0.0) == NO_STALL
    assert playback_stall(arrivals, [0.1] * 10, prebuffer=0.0) == pytest.approx(9 * 0.2)


# --------------------------------------------------------------------------------------------
# pct: nearest rank
# --------------------------------------------------------------------------------------------


def test_pct_of_nothing_is_none() -> None:
    assert pct([], 50) is None


def test_pct_is_the_nearest_rank_whatever_the_order() -> None:
    values = [float(v) for v in range(1, 101)]
    random.Random(7).shuffle(values)
    assert pct(values, 50) == 50.0
    assert pct(values, 95) == 95.0
    assert pct(values, 99) == 99.0
    assert pct(values, 100) == 100.0
    assert pct(values, 0) == 1.0  # clamped to the smallest


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([7.0], 99, 7.0),
        ([1.0, 2.0], 50, 1.0),  # a measured value, never an interpolation (1.5)
        ([5.0, 1.0, 4.0, 2.0, 3.0], 50, 3.0),  # the median of an odd count: rank ceil(2.5) = 3
        ([10.0, 20.0, 30.0, 40.0], 25, 10.0),
        ([10.0, 20.0, 30.0, 40.0], 26, 20.0),  # just above a rank boundary: the next value
        ([10.0, 20.0, 30.0, 40.0], 95, 40.0),
    ],
)
def test_pct_small_samples(values: list[float], q: float, expected: float) -> None:
    assert pct(values, q) == expected


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        # Rank q/100 * n with a fraction: the nearest rank is the ceiling. round() would give
        # rank 2 (banker's rounding of 2.5) and 1 (of 1.04), one value too low each time.
        ([5.0, 1.0, 4.0, 2.0, 3.0], 50, 3.0),
        ([10.0, 20.0, 30.0, 40.0], 26, 20.0),
        ([float(v) for v in range(1, 21)], 99, 20.0),  # rank 19.8 -> 20
        ([float(v) for v in range(1, 11)], 95, 10.0),  # rank 9.5 -> 10
        ([float(v) for v in range(1, 101)], 95, 95.0),  # a whole rank stays as it is
    ],
)
def test_benchlib_percentile_is_the_nearest_rank(
    values: list[float], q: float, expected: float
) -> None:
    assert percentile(values, q) == expected
    assert pct(values, q) == expected  # the load test reuses it


def test_benchlib_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(percentile([], 95))


# --------------------------------------------------------------------------------------------
# pause_windows: over-limit gaps that end at the same moment across streams
# --------------------------------------------------------------------------------------------


def _turn(client: int, late_gaps: list[tuple[float, float]]) -> TurnResult:
    return TurnResult(client=client, started=0.0, status="OK", total=10.0, late_gaps=late_gaps)


def test_no_late_gaps_no_pause() -> None:
    assert pause_windows([]) == []
    assert pause_windows([_turn(1, []), _turn(2, [])]) == []


def test_gaps_ending_in_the_same_quarter_second_are_one_pause() -> None:
    # 30 streams end a gap between 10.00 and 10.24 s: the server stopped; two strays elsewhere.
    # Gaps of 0.30..0.58 s and one of 2 s, which moves the mean but not the median (0.445 s).
    together = [
        _turn(i, [(10.0 + i * 0.008, 2.0 if i == 29 else 0.3 + i * 0.01)]) for i in range(30)
    ]
    strays = [_turn(100, [(3.1, 0.2)]), _turn(101, [(20.6, 0.4)])]
    windows = pause_windows([*strays, *together])
    assert windows == [
        {"t": 3.0, "streams": 1, "median_gap_ms": 200.0},
        {"t": 10.0, "streams": 30, "median_gap_ms": pytest.approx(445.0)},
        {"t": 20.5, "streams": 1, "median_gap_ms": 400.0},
    ]


def test_pause_windows_keeps_the_busiest_windows_in_time_order() -> None:
    results = [
        *[_turn(i, [(1.1, 0.2)]) for i in range(2)],  # window 1.0: 2 streams
        *[_turn(i, [(5.3, 0.2)]) for i in range(5)],  # window 5.25: 5 streams
        *[_turn(i, [(2.6, 0.2)]) for i in range(4)],  # window 2.5: 4 streams
        _turn(9, [(7.9, 0.2)]),  # window 7.75: 1 stream
        _turn(20, [(2.9, 0.2)]),  # window 2.75: 1 stream
    ]
    windows = pause_windows(results, top=2)
    assert [(w["t"], w["streams"]) for w in windows] == [(2.5, 4), (5.25, 5)]
    # One-second windows: 2.6 and 2.9 now end in the same window.
    wide = pause_windows(results, window=1.0, top=5)
    assert [(w["t"], w["streams"]) for w in wide] == [(1.0, 2), (2.0, 5), (5.0, 5), (7.0, 1)]


def test_a_stream_counts_once_per_window() -> None:
    # One stream's gaps of 0.16 s end at 10.00 and 10.16 s: one stream stalled, twice.
    windows = pause_windows([_turn(1, [(10.0, 0.16), (10.16, 0.16)])])
    assert [w["streams"] for w in windows] == [1]


def test_the_median_takes_each_streams_largest_gap_in_the_window_once() -> None:
    # Stream A has three gaps ending in the 10.0 s window (0.2, 0.9, 0.3 s), B and C one each.
    # Per stream the largest: 0.9, 0.4, 0.5 -> median 0.5 s. Counting every gap would give
    # five values (0.2, 0.3, 0.4, 0.5, 0.9) and a median of 0.4 s.
    stream_a = _turn(1, [(10.0, 0.2), (10.1, 0.9), (10.2, 0.3)])
    stream_b, stream_c = _turn(2, [(10.05, 0.4)]), _turn(3, [(10.15, 0.5)])
    assert pause_windows([stream_a, stream_b, stream_c]) == [
        {"t": 10.0, "streams": 3, "median_gap_ms": 500.0}
    ]


def test_a_streams_gaps_in_different_windows_count_in_each() -> None:
    windows = pause_windows([_turn(1, [(10.0, 0.2), (10.3, 0.25)])])
    assert windows == [
        {"t": 10.0, "streams": 1, "median_gap_ms": 200.0},
        {"t": 10.25, "streams": 1, "median_gap_ms": 250.0},
    ]


def test_two_turns_of_one_client_are_two_streams() -> None:
    """A client runs its turns one after another: each turn is its own stream."""
    windows = pause_windows([_turn(7, [(10.0, 0.2)]), _turn(7, [(10.1, 0.3)])])
    assert [w["streams"] for w in windows] == [2]


def test_a_listener_asks_again_only_once_the_answer_has_been_heard() -> None:
    # Stream over at 3.2 s; playback began 0.2 s after the first chunk at 0.4 s and lasts 9.2 s.
    heard = TurnResult(client=0, started=0.0, status="OK", total=3.2, first_audio=0.4)
    heard.audio_seconds = 9.2
    assert listening_left(heard, prebuffer=0.2) == pytest.approx(0.4 + 0.2 + 9.2 - 3.2)
    heard.stall = 0.5  # a stall pushes the end of playback out by as much
    assert listening_left(heard, prebuffer=0.2) == pytest.approx(7.1)
    slow = TurnResult(client=0, started=0.0, status="OK", total=12.0, first_audio=0.4)
    slow.audio_seconds = 9.2  # the stream outlasted the playback: nothing left to wait for
    assert listening_left(slow, prebuffer=0.2) == 0.0
    silent = TurnResult(client=0, started=0.0, status="OK", total=1.0)
    assert listening_left(silent, prebuffer=0.2) == 0.0
