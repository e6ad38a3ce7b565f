"""COLLECT buffering (newest wins, bounded, TTL) and COMMIT prompt merging."""

from __future__ import annotations

import pytest

from nexy.providers.llm.base import Image
from nexy.turn.collect import CollectStore, merge_prompt

KEY = ("HW", "s1")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_newest_chunk_wins_and_stale_ones_are_ignored():
    store = CollectStore(60, 10, 10_000)
    store.update(KEY, 1, "what", None)
    store.update(KEY, 2, "what time", None)
    store.update(KEY, 2, "stale", None)
    store.update(KEY, 1, "older", None)
    buffer = store.take(KEY)
    assert buffer is not None and buffer.text == "what time"
    assert store.take(KEY) is None


def test_newest_non_empty_screenshot_is_kept():
    store = CollectStore(60, 10, 10_000)
    first = Image(b"png", "image/png", 10, 20)
    store.update(KEY, 1, "a", first)
    store.update(KEY, 2, "ab", None)
    buffer = store.take(KEY)
    assert buffer is not None and buffer.screenshot is first


def test_ttl_expiry():
    clock = Clock()
    store = CollectStore(60, 10, 10_000, clock=clock)
    store.update(KEY, 1, "hello", None)
    clock.now = 61
    assert store.take(KEY) is None
    assert len(store) == 0


def test_bounded_in_number_and_bytes():
    store = CollectStore(60, 3, 10_000)
    for index in range(5):
        store.update(("HW", f"s{index}"), 1, "x", None)
    assert len(store) == 3 and store.take(("HW", "s0")) is None
    small = CollectStore(60, 100, 50)
    for index in range(5):
        small.update(("HW", f"s{index}"), 1, "y" * 20, None)
    assert len(small) == 2


@pytest.mark.parametrize(
    ("committed", "collected", "expected"),
    [
        ("hello world", "", "hello world"),
        ("", "hello", "hello"),
        ("hello world", "hello", "hello world"),
        ("hello", "hello world", "hello world"),
        ("the browser please", "open the", "open the browser please"),
        ("safari", "open", "open safari"),
        ("same", "same", "same"),
        ("  spaced  ", "", "spaced"),
    ],
)
def test_merge_prompt(committed, collected, expected):
    assert merge_prompt(committed, collected) == expected
