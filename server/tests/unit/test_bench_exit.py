"""Benchmarks exit non-zero when any turn failed: numbers over failed turns mean nothing."""

from __future__ import annotations

import pytest
from scripts.benchlib import Tally, Turn, exit_code, turn_failed

GOOD = Turn(first_audio=0.2, total=1.0, text="Hi.", action="", ended="end_message")


@pytest.mark.parametrize(
    ("turn", "failed"),
    [
        (GOOD, False),
        (Turn(0.2, 1.0, "Hi.", "", "error_message"), True),  # spoke, then ended in an error
        (Turn(None, 1.0, "Hi.", "", "end_message"), True),  # ended normally but said nothing
        (Turn(0.2, 1.0, "Hi.", "", ""), True),  # the stream stopped without an end message
    ],
)
def test_a_turn_fails_unless_it_ends_normally_with_audio(turn: Turn, failed: bool) -> None:
    assert turn_failed(turn) is failed


def test_exit_code_is_zero_only_without_failures(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(0, 12) == 0
    assert capsys.readouterr().err == ""
    assert exit_code(2, 12, "audio messages") == 1
    assert capsys.readouterr().err == "2 of 12 audio messages failed\n"


def test_tally_counts_every_turn_and_measures_only_good_ones() -> None:
    tally = Tally()
    assert tally.add(GOOD) is True
    assert tally.exit_code() == 0
    assert tally.add(Turn(None, 0.1, "", "", "error_message")) is False
    assert (tally.turns, tally.failed) == (2, 1)
    assert tally.exit_code() == 1
