"""Admission refuses new turns while the event loop runs late (it is overloaded)."""

from __future__ import annotations

import asyncio
import time

import pytest

from nexy.events import ErrorKind
from nexy.loop_lag import LoopLag
from nexy.turn.tracker import AdmissionError, TurnTracker


class FixedLag(LoopLag):
    def __init__(self, ms: float) -> None:
        super().__init__()
        self.ms = ms

    def recent_ms(self) -> float:
        return self.ms


async def test_a_loop_blocked_by_work_reads_late_and_recovers() -> None:
    lag = LoopLag(interval=0.01, window=5)
    lag.start()
    try:
        await asyncio.sleep(0.08)
        assert lag.recent_ms() < 10  # an idle loop is on time
        time.sleep(0.2)  # the loop's one thread busy: every callback waits
        await asyncio.sleep(0.015)
        assert lag.recent_ms() > 20
        await asyncio.sleep(0.15)  # five on-time probes later the window is clear again
        assert lag.recent_ms() < 10
    finally:
        await lag.close()


async def test_admission_refuses_while_the_loop_is_late_and_admits_again_after() -> None:
    lag = FixedLag(60)
    tracker = TurnTracker(10, loop_lag=lag, max_loop_lag_ms=25)
    with pytest.raises(AdmissionError) as refused:
        await tracker.admit("DEVICE", "s1")
    assert refused.value.kind is ErrorKind.RESOURCE_EXHAUSTED
    assert refused.value.reason == "server_busy"
    assert refused.value.message.startswith("SERVER_BUSY") and "retry" in refused.value.message
    assert tracker.active == 0
    lag.ms = 3
    handle = await tracker.admit("DEVICE", "s1")
    assert tracker.active == 1
    tracker.release(handle)


async def test_a_zero_threshold_turns_the_check_off() -> None:
    tracker = TurnTracker(10, loop_lag=FixedLag(10_000), max_loop_lag_ms=0)
    tracker.release(await tracker.admit("DEVICE", "s1"))
