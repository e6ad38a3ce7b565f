"""Per-device limits: token bucket, quotas and their markers, rollover, bounded table, order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from nexy.config import LimitsSettings
from nexy.events import ErrorKind
from nexy.limits import DeviceLimiter, DeviceLimits
from nexy.turn.tracker import AdmissionError, TurnHandle, TurnTracker


class FakeClock:
    def __init__(self) -> None:
        self.monotonic = 1000.0
        # A Wednesday, mid-month: day, ISO week and month can each roll separately.
        self.wall = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)

    def advance(self, seconds: float) -> None:
        self.monotonic += seconds
        self.wall += timedelta(seconds=seconds)

    def now(self) -> datetime:
        return self.wall


def make(clock: FakeClock, max_devices: int = 100_000, **settings: float) -> DeviceLimits:
    limits = LimitsSettings(**settings)  # type: ignore[arg-type]
    return DeviceLimits(limits, lambda: clock.monotonic, clock.now, max_devices=max_devices)


async def refusal(limits: DeviceLimits, device: str = "dev") -> AdmissionError:
    with pytest.raises(AdmissionError) as caught:
        await limits.check(device)
    return caught.value


async def test_burst_then_refusal_with_clear_rate_message() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=3, device_requests_per_minute=60)
    for _ in range(3):
        await limits.check("dev")
    error = await refusal(limits)
    assert error.kind == ErrorKind.RESOURCE_EXHAUSTED
    assert error.message.startswith("RATE_LIMIT_EXCEEDED")
    assert "retry in 1 s" in error.message
    assert error.reason == "device_rate"


async def test_bucket_refills_at_the_configured_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=2, device_requests_per_minute=30)  # one token per 2 s
    await limits.check("dev")
    await limits.check("dev")
    clock.advance(1.0)
    assert "retry in 1 s" in (await refusal(limits)).message
    clock.advance(1.0)
    await limits.check("dev")
    await refusal(limits)
    clock.advance(3600)  # a long pause refills to the burst, not beyond
    await limits.check("dev")
    await limits.check("dev")
    await refusal(limits)


async def test_devices_have_separate_buckets() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=1)
    await limits.check("a")
    await refusal(limits, "a")
    await limits.check("b")


async def test_refused_check_does_not_count() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=1, device_requests_per_minute=60, daily_turns=2)
    await limits.check("dev")
    await refusal(limits)  # rate: must not use up quota
    clock.advance(1.0)
    await limits.check("dev")
    clock.advance(1.0)
    assert (await refusal(limits)).kind == ErrorKind.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("setting", "marker", "reason"),
    [
        ("daily_turns", "daily limit exceeded", "daily_quota"),
        ("weekly_turns", "weekly limit exceeded", "weekly_quota"),
        ("monthly_turns", "monthly limit exceeded", "monthly_quota"),
    ],
)
async def test_quota_refusal_carries_the_client_marker(
    setting: str, marker: str, reason: str
) -> None:
    clock = FakeClock()
    limits = make(clock, **{setting: 2})
    await limits.check("dev")
    await limits.check("dev")
    error = await refusal(limits)
    assert error.kind == ErrorKind.PERMISSION_DENIED
    assert error.message.startswith(marker)
    assert error.reason == reason
    await limits.check("other")  # per device


async def test_quota_wins_over_rate_when_both_refuse() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=1, daily_turns=1)
    await limits.check("dev")
    assert (await refusal(limits)).message.startswith("daily limit exceeded")


async def test_daily_quota_rolls_over_at_utc_midnight() -> None:
    clock = FakeClock()
    limits = make(clock, daily_turns=1)
    await limits.check("dev")
    await refusal(limits)
    clock.wall = datetime(2025, 1, 15, 23, 59, 59, tzinfo=UTC)
    await refusal(limits)
    clock.wall = datetime(2025, 1, 16, 0, 0, 0, tzinfo=UTC)
    await limits.check("dev")


async def test_weekly_quota_rolls_over_on_monday() -> None:
    clock = FakeClock()
    limits = make(clock, weekly_turns=1)
    await limits.check("dev")
    clock.wall = datetime(2025, 1, 19, 23, 0, tzinfo=UTC)  # Sunday: same ISO week
    assert (await refusal(limits)).message.startswith("weekly limit exceeded")
    clock.wall = datetime(2025, 1, 20, 0, 0, tzinfo=UTC)  # Monday
    await limits.check("dev")


async def test_monthly_quota_rolls_over_on_the_first() -> None:
    clock = FakeClock()
    limits = make(clock, monthly_turns=1)
    await limits.check("dev")
    clock.wall = datetime(2025, 1, 31, 23, 0, tzinfo=UTC)
    assert (await refusal(limits)).message.startswith("monthly limit exceeded")
    clock.wall = datetime(2025, 2, 1, 0, 0, tzinfo=UTC)
    await limits.check("dev")


async def test_quota_periods_are_utc_whatever_the_zone_of_now() -> None:
    clock = FakeClock()
    limits = make(clock, daily_turns=1)
    clock.wall = datetime(2025, 1, 15, 23, 0, tzinfo=UTC)
    await limits.check("dev")
    # Still the 15th in New York, but already the 16th in UTC: a new day for the quota.
    clock.wall = datetime(2025, 1, 15, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    await limits.check("dev")


async def test_zero_quota_means_unlimited() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=1000, daily_turns=0, weekly_turns=0, monthly_turns=0)
    for _ in range(1000):
        await limits.check("dev")


async def test_refund_gives_back_token_and_quota() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=1, daily_turns=1)
    await limits.check("dev")
    await limits.refund("dev")
    await limits.check("dev")
    await limits.refund("unknown")  # harmless


async def test_device_table_is_bounded() -> None:
    clock = FakeClock()
    limits = make(clock, max_devices=3, device_burst=1, daily_turns=5)
    for index in range(10):
        await limits.check(f"dev-{index}")
    assert len(limits) == 3


async def test_blank_devices_are_dropped_before_the_cap() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=2, device_requests_per_minute=60)
    await limits.check("a")
    clock.advance(5)  # a's bucket is full again: it carries no state
    await limits.check("b")
    assert len(limits) == 1


async def test_devices_with_quota_use_are_kept() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=2, daily_turns=5)
    await limits.check("a")
    clock.advance(5)
    await limits.check("b")
    assert len(limits) == 2


async def test_device_limits_satisfies_the_protocol() -> None:
    limiter: DeviceLimiter = DeviceLimits(LimitsSettings())
    await limiter.check("dev")


# Admission order inside the tracker.


def tracker(clock: FakeClock, **settings: float) -> TurnTracker:
    limits = make(clock, **settings)
    return TurnTracker(2, max_turns_per_device=1, device_limits=limits)


async def test_global_limit_comes_first_and_counts_nothing() -> None:
    clock = FakeClock()
    turns = tracker(clock, device_burst=3)
    await turns.admit("a", "s1")
    await turns.admit("b", "s2")
    with pytest.raises(AdmissionError) as caught:
        await turns.admit("c", "s3")
    assert caught.value.message.startswith("STREAM_LIMIT_EXCEEDED")
    assert caught.value.reason == "stream_limit"


async def test_rate_and_quota_come_before_duplicate_session() -> None:
    clock = FakeClock()
    turns = tracker(clock, device_burst=1)
    await turns.admit("a", "s1")
    with pytest.raises(AdmissionError) as caught:
        await turns.admit("a", "s1")
    assert caught.value.reason == "device_rate"


async def test_duplicate_session_then_device_concurrency_refund_the_device() -> None:
    clock = FakeClock()
    turns = tracker(clock, device_burst=2, daily_turns=2)
    first = await turns.admit("a", "s1")
    with pytest.raises(AdmissionError) as duplicate:
        await turns.admit("a", "s1")
    assert duplicate.value.kind == ErrorKind.ALREADY_EXISTS
    with pytest.raises(AdmissionError) as busy:
        await turns.admit("a", "s2")
    assert busy.value.kind == ErrorKind.RESOURCE_EXHAUSTED
    assert busy.value.reason == "device_turns"
    assert turns.active_for("a") == 1
    turns.release(first)
    # Neither refusal used the bucket or the quota: the second turn of the day still fits.
    await turns.admit("a", "s2")
    assert turns.active_for("a") == 1 and turns.active == 1


async def test_tracker_without_device_limits_keeps_old_behaviour() -> None:
    turns = TurnTracker(5)
    for index in range(5):
        await turns.admit("a", f"s{index}")
    assert turns.active_for("a") == 5


class SlowLimiter:
    """A device limiter that answers after a pause, as a shared store does."""

    async def check(self, hardware_id: str) -> None:
        await asyncio.sleep(0.01)

    async def refund(self, hardware_id: str) -> None:
        return None


async def test_admissions_waiting_on_the_limiter_hold_a_slot_of_the_replica_limit() -> None:
    turns = TurnTracker(2, device_limits=SlowLimiter())
    results = await asyncio.gather(
        *(turns.admit(f"dev-{index}", f"s{index}") for index in range(4)), return_exceptions=True
    )
    admitted = [result for result in results if isinstance(result, TurnHandle)]
    refused = [result for result in results if isinstance(result, AdmissionError)]
    assert len(admitted) == 2 and turns.active == 2
    assert [error.reason for error in refused] == ["stream_limit", "stream_limit"]


async def test_interrupt_cancels_the_device_turns_that_are_running() -> None:
    turns = TurnTracker(5)
    first = await turns.admit("a", "s1")
    other = await turns.admit("b", "s2")
    assert await turns.interrupt("a") == ["s1"]
    assert first.interrupted and not other.interrupted
    turns.release(first)
    assert await turns.interrupt("a") == []
