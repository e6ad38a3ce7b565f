"""WaitWatch: a wait over its limit ends, other cancellations pass, one timer per stream."""

from __future__ import annotations

import asyncio

import pytest

from nexy.providers.wait_watch import WaitWatch


async def waited(watch: WaitWatch, limit: float, seconds: float) -> str:
    watch.begin(limit)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        if watch.expired():
            return "expired"
        raise
    finally:
        watch.end()
    return "done"


async def test_a_wait_over_its_limit_ends_and_others_do_not() -> None:
    watch = WaitWatch()
    assert await waited(watch, 0.5, 0.01) == "done"
    assert await waited(watch, 0.05, 1.0) == "expired"
    assert await waited(watch, 0.5, 0.01) == "done"  # the task is usable after a timeout
    watch.close()


async def test_time_between_waits_does_not_count() -> None:
    watch = WaitWatch()
    for _ in range(3):
        assert await waited(watch, 0.3, 0.0) == "done"
        await asyncio.sleep(0.4)  # longer than the limit, but not a wait
    watch.close()


async def test_a_cancellation_from_elsewhere_is_not_taken_for_a_timeout() -> None:
    async def worker() -> str:
        watch = WaitWatch()
        try:
            return await waited(watch, 5.0, 5.0)
        finally:
            watch.close()

    task = asyncio.create_task(worker())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_many_short_waits_share_one_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    original = loop.call_at

    def counted(when: float, callback, *args):  # type: ignore[no-untyped-def]
        if getattr(callback, "__self__", None).__class__ is WaitWatch:
            armed.append(when)
        return original(when, callback, *args)

    monkeypatch.setattr(loop, "call_at", counted)
    watch = WaitWatch()
    for _ in range(200):
        assert await waited(watch, 10.0, 0) == "done"
    watch.close()
    assert len(armed) == 1


async def test_a_shorter_limit_after_a_longer_one_is_kept() -> None:
    watch = WaitWatch()
    assert await waited(watch, 30.0, 0) == "done"  # the timer is set 30 s ahead
    assert await waited(watch, 0.05, 1.0) == "expired"  # and moved for this wait
    watch.close()
