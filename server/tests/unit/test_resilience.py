"""Tests for the resilience building blocks: the circuit breaker and the guarded stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator

import pytest

from nexy.config import TimeoutSettings
from nexy.providers.resilience import BreakerState, CircuitBreaker, guarded_stream


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Boom(Exception):
    """The error type the guard raises in these tests."""


class Source:
    """An async generator factory that records whether it was closed and how far it got."""

    def __init__(self, *, first_delay: float = 0.0, gap: float = 0.0, items: int = 3) -> None:
        self.first_delay, self.gap, self.items = first_delay, gap, items
        self.closed = False
        self.yielded = 0

    async def run(self) -> AsyncGenerator[int, None]:
        try:
            await asyncio.sleep(self.first_delay)
            for index in range(self.items):
                if index:
                    await asyncio.sleep(self.gap)
                self.yielded += 1
                yield index
        finally:
            self.closed = True


def limits(first: float = 0.2, total: float = 1.0, connect: float = 0.05) -> TimeoutSettings:
    return TimeoutSettings(connect_seconds=connect, first_output_seconds=first, total_seconds=total)


async def collect(stream: AsyncGenerator[int, None]) -> list[int]:
    return [item async for item in stream]


# --- the circuit breaker -----------------------------------------------------------------------


def state(breaker: CircuitBreaker) -> BreakerState:
    """The state, read through a call so each check reads it afresh (and mypy agrees)."""
    return breaker.state


def test_breaker_opens_after_consecutive_failures_only() -> None:
    breaker = CircuitBreaker(3, 10.0, clock=FakeClock())
    breaker.failure()
    breaker.failure()
    breaker.success()  # a success in between resets the count
    breaker.failure()
    breaker.failure()
    assert state(breaker) is BreakerState.CLOSED and breaker.allow()
    breaker.failure()
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allow()


def test_breaker_half_opens_after_reset_and_a_successful_trial_closes_it() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 10.0, clock=clock)
    breaker.failure()
    clock.now += 9.9
    assert state(breaker) is BreakerState.OPEN and not breaker.allow()
    clock.now += 0.1
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow()  # the one trial call
    assert not breaker.allow()  # others wait for its verdict
    breaker.success()
    assert state(breaker) is BreakerState.CLOSED and breaker.allow()


def test_a_failed_trial_reopens_for_a_full_reset_period() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(2, 10.0, clock=clock)
    breaker.failure()
    breaker.failure()
    clock.now += 10
    assert breaker.allow()
    breaker.failure()  # one failure is enough in half-open
    assert state(breaker) is BreakerState.OPEN
    clock.now += 9
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_a_released_trial_lets_the_next_call_try() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(1, 5.0, clock=clock)
    breaker.failure()
    clock.now += 5
    assert breaker.allow()
    breaker.release()  # the consumer went away before the member said anything
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow()


def test_breaker_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(0, 1.0)


# --- the guarded stream ------------------------------------------------------------------------


async def test_items_pass_through_and_the_source_is_closed() -> None:
    source = Source()
    assert await collect(guarded_stream(source.run(), limits(), what="m", error=Boom)) == [0, 1, 2]
    assert source.closed


async def test_first_output_timeout_fires_on_time_and_closes_the_source() -> None:
    source = Source(first_delay=10)
    began = time.monotonic()
    with pytest.raises(Boom, match=r"m: no output within 0.2 s"):
        await collect(guarded_stream(source.run(), limits(first=0.2), what="m", error=Boom))
    assert 0.18 <= time.monotonic() - began < 0.4
    assert source.closed and source.yielded == 0


async def test_a_slow_first_item_within_the_limit_is_fine_whatever_connect_says() -> None:
    # connect_seconds cannot be told apart from the first output in a plain generator, so the
    # guard does not apply it: only first_output_seconds bounds the first item.
    source = Source(first_delay=0.15)
    stream = guarded_stream(source.run(), limits(first=0.5, connect=0.01), what="m", error=Boom)
    assert await collect(stream) == [0, 1, 2]


async def test_total_timeout_counts_the_time_spent_waiting_for_the_source() -> None:
    source = Source(gap=0.1, items=10)
    began = time.monotonic()
    with pytest.raises(Boom, match=r"m: over 0.35 s in total"):
        await collect(guarded_stream(source.run(), limits(total=0.35), what="m", error=Boom))
    assert 0.33 <= time.monotonic() - began < 0.55
    assert source.closed and 3 <= source.yielded <= 4


async def test_time_the_consumer_holds_an_item_is_not_charged_to_the_source() -> None:
    source = Source(items=4)
    items = []
    async for item in guarded_stream(source.run(), limits(total=0.2), what="m", error=Boom):
        items.append(item)
        await asyncio.sleep(0.1)  # backpressure: 0.4 s in all, the source needs ~0
    assert items == [0, 1, 2, 3]


async def test_the_sources_own_timeout_error_is_not_mistaken_for_ours() -> None:
    async def failing() -> AsyncGenerator[int, None]:
        raise TimeoutError("socket read")
        yield 0

    with pytest.raises(TimeoutError, match="socket read"):
        await collect(guarded_stream(failing(), limits(), what="m", error=Boom))


async def test_an_early_close_by_the_consumer_closes_the_source() -> None:
    source = Source(items=5)
    stream = guarded_stream(source.run(), limits(), what="m", error=Boom)
    assert await anext(stream) == 0
    await stream.aclose()
    assert source.closed and source.yielded == 1


async def test_cancellation_closes_the_source_and_is_not_swallowed() -> None:
    source = Source(first_delay=10)

    async def consume() -> list[int]:
        return await collect(guarded_stream(source.run(), limits(first=5), what="m", error=Boom))

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert source.closed
