"""Tests for the bounded worker-thread-to-coroutine hand-off shared by the embedded engines."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from nexy.providers.handoff import End, Handoff


async def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Poll ``condition`` from the loop (the worker is a thread, so there is nothing to await)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def drain(handoff: Handoff[int]) -> tuple[list[int], End]:
    items: list[int] = []
    while not isinstance(item := await asyncio.wait_for(handoff.get(), 5.0), End):
        items.append(item)
    return items, item


class Worker:
    """A worker thread that delivers ``count`` items, counting the ones accepted, then finishes."""

    def __init__(self, handoff: Handoff[int], count: int, error: str = "") -> None:
        self.handoff, self.count, self.error = handoff, count, error
        self.accepted = 0
        self.refused_after = -1.0  # seconds the refused deliver() took
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for index in range(self.count):
            began = time.monotonic()
            if not self.handoff.deliver(index):
                self.refused_after = time.monotonic() - began
                break
            self.accepted += 1
        self.handoff.finish(self.error)

    async def join(self, timeout: float = 2.0) -> None:
        await wait_until(lambda: not self.thread.is_alive(), timeout)


async def test_items_arrive_in_order_then_the_end_marker() -> None:
    handoff: Handoff[int] = Handoff(capacity=3, stall_seconds=5.0)
    worker = Worker(handoff, 200)
    items, end = await drain(handoff)
    await worker.join()
    assert items == list(range(200))
    assert end == End() and not end.error
    assert not handoff.cancelled


async def test_worker_cannot_get_more_than_capacity_ahead() -> None:
    handoff: Handoff[int] = Handoff(capacity=3, stall_seconds=5.0)
    worker = Worker(handoff, 10)
    await wait_until(lambda: worker.accepted == 3)
    await asyncio.sleep(0.2)  # nothing is read, so the worker stays blocked on the fourth item
    assert worker.accepted == 3 and worker.thread.is_alive()
    assert await handoff.get() == 0  # taking one frees exactly one slot
    await wait_until(lambda: worker.accepted == 4)
    await asyncio.sleep(0.1)
    assert worker.accepted == 4
    items, end = await drain(handoff)
    assert items == list(range(1, 10)) and end == End()
    await worker.join()


async def test_stall_timeout_aborts_the_job() -> None:
    handoff: Handoff[int] = Handoff(capacity=1, stall_seconds=0.1)
    worker = Worker(handoff, 5, error="aborted")  # nobody reads until the worker gives up
    await worker.join()
    assert worker.accepted == 1
    assert 0.09 <= worker.refused_after < 1.0
    assert handoff.cancelled
    assert await drain(handoff) == ([0], End("aborted"))


async def test_cancel_wakes_a_waiting_worker() -> None:
    handoff: Handoff[int] = Handoff(capacity=1, stall_seconds=30.0)
    worker = Worker(handoff, 5)
    await wait_until(lambda: worker.accepted == 1)
    await asyncio.sleep(0.1)  # the worker is now waiting for room for the second item
    handoff.cancel()
    await worker.join(timeout=1.0)  # far sooner than the 30 s stall timeout
    assert worker.accepted == 1 and worker.refused_after < 1.0
    assert handoff.cancelled
    assert await drain(handoff) == ([0], End())


async def test_slots_released_by_cancel_never_carry_items() -> None:
    handoff: Handoff[int] = Handoff(capacity=1, stall_seconds=30.0)
    assert handoff.deliver(0)
    for _ in range(3):  # every cancel() releases a slot; none of them may be used
        handoff.cancel()
    began = time.monotonic()
    assert not any(handoff.deliver(index) for index in range(1, 6))
    assert time.monotonic() - began < 1.0  # refused at once, not after the stall timeout
    handoff.finish()
    assert await drain(handoff) == ([0], End())


@pytest.mark.parametrize("error", ["", "synthesis failed"])
async def test_end_marker_carries_the_error_or_none(error: str) -> None:
    handoff: Handoff[int] = Handoff(capacity=2, stall_seconds=5.0)
    worker = Worker(handoff, 2, error=error)
    items, end = await drain(handoff)
    await worker.join()
    assert items == [0, 1]
    assert end == End(error) and bool(end.error) is bool(error)


async def test_end_marker_never_waits_for_room() -> None:
    handoff: Handoff[int] = Handoff(capacity=1, stall_seconds=30.0)
    worker = Worker(handoff, 1, error="late failure")  # fills the buffer, then finishes
    await worker.join(timeout=1.0)
    assert await drain(handoff) == ([0], End("late failure"))


async def test_only_the_first_finish_counts() -> None:
    handoff: Handoff[int] = Handoff(capacity=1, stall_seconds=5.0)
    handoff.finish("first")
    handoff.finish("second")
    assert await handoff.get() == End("first")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(handoff.get(), 0.1)


def test_a_closed_event_loop_cancels_the_job() -> None:
    async def make() -> Handoff[int]:
        return Handoff(capacity=2, stall_seconds=5.0)

    loop = asyncio.new_event_loop()
    handoff = loop.run_until_complete(make())
    loop.close()
    assert not handoff.deliver(1)  # must not raise: nobody is listening any more
    assert handoff.cancelled
    handoff.finish("ignored")  # nor may the end marker


async def test_the_queue_never_overflows_under_cancel_churn() -> None:
    # put_nowait runs as a loop callback: a QueueFull there would reach the exception handler.
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    rng = random.Random(7)
    try:
        for _ in range(40):
            capacity = rng.randint(1, 3)
            handoff: Handoff[int] = Handoff(capacity=capacity, stall_seconds=5.0)
            worker = Worker(handoff, 50)
            taken = [await handoff.get() for _ in range(rng.randint(0, 5))]
            for _ in range(rng.randint(1, 3)):
                handoff.cancel()
            items, end = await drain(handoff)
            await worker.join()
            assert taken + items == list(range(worker.accepted))
            assert end == End()
            assert worker.accepted <= len(taken) + capacity  # no slot freed by cancel() was used
    finally:
        loop.set_exception_handler(None)
    assert errors == []


@pytest.mark.parametrize(("capacity", "stall"), [(0, 1.0), (1, 0.0), (1, -1.0)])
async def test_rejects_a_zero_capacity_or_stall(capacity: int, stall: float) -> None:
    with pytest.raises(ValueError):
        Handoff[int](capacity, stall)
