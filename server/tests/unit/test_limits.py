"""Per-device limits: token bucket, quotas and their markers, rollover, bounded table, order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from nexy.config import LimitsSettings
from nexy.events import ErrorKind
from nexy.limits import DeviceLimiter, DeviceLimits
from nexy.turn.tracker import AdmissionError, TurnTracker


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


def refusal(limits: DeviceLimits, device: str = "dev") -> AdmissionError:
    with pytest.raises(AdmissionError) as caught:
        limits.check(device)
    return caught.value


def test_burst_then_refusal_with_clear_rate_message() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=3, device_requests_per_minute=60)
    for _ in range(3):
        limits.check("dev")
    error = refusal(limits)
    assert error.kind == ErrorKind.RESOURCE_EXHAUSTED
    assert error.message.startswith("RATE_LIMIT_EXCEEDED")
    assert "retry in 1 s" in error.message
    assert error.reason == "device_rate"


def test_bucket_refills_at_the_configured_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=2, device_requests_per_minute=30)  # one token per 2 s
    limits.check("dev")
    limits.check("dev")
    clock.advance(1.0)
    assert "retry in 1 s" in refusal(limits).message
    clock.advance(1.0)
    limits.check("dev")
    refusal(limits)
    clock.advance(3600)  # a long pause refills to the burst, not beyond
    limits.check("dev")
    limits.check("dev")
    refusal(limits)


def test_devices_have_separate_buckets() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=1)
    limits.check("a")
    refusal(limits, "a")
    limits.check("b")


def test_refused_check_does_not_count() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=1, device_requests_per_minute=60, daily_turns=2)
    limits.check("dev")
    refusal(limits)  # rate: must not use up quota
    clock.advance(1.0)
    limits.check("dev")
    clock.advance(1.0)
    assert refusal(limits).kind == ErrorKind.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("setting", "marker", "reason"),
    [
        ("daily_turns", "daily limit exceeded", "daily_quota"),
        ("weekly_turns", "weekly limit exceeded", "weekly_quota"),
        ("monthly_turns", "monthly limit exceeded", "monthly_quota"),
    ],
)
def test_quota_refusal_carries_the_client_marker(setting: str, marker: str, reason: str) -> None:
    clock = FakeClock()
    limits = make(clock, **{setting: 2})
    limits.check("dev")
    limits.check("dev")
    error = refusal(limits)
    assert error.kind == ErrorKind.PERMISSION_DENIED
    assert error.message.startswith(marker)
    assert error.reason == reason
    limits.check("other")  # per device


def test_quota_wins_over_rate_when_both_refuse() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=1, daily_turns=1)
    limits.check("dev")
    assert refusal(limits).message.startswith("daily limit exceeded")


def test_daily_quota_rolls_over_at_utc_midnight() -> None:
    clock = FakeClock()
    limits = make(clock, daily_turns=1)
    limits.check("dev")
    refusal(limits)
    clock.wall = datetime(2025, 1, 15, 23, 59, 59, tzinfo=UTC)
    refusal(limits)
    clock.wall = datetime(2025, 1, 16, 0, 0, 0, tzinfo=UTC)
    limits.check("dev")


def test_weekly_quota_rolls_over_on_monday() -> None:
    clock = FakeClock()
    limits = make(clock, weekly_turns=1)
    limits.check("dev")
    clock.wall = datetime(2025, 1, 19, 23, 0, tzinfo=UTC)  # Sunday: same ISO week
    assert refusal(limits).message.startswith("weekly limit exceeded")
    clock.wall = datetime(2025, 1, 20, 0, 0, tzinfo=UTC)  # Monday
    limits.check("dev")


def test_monthly_quota_rolls_over_on_the_first() -> None:
    clock = FakeClock()
    limits = make(clock, monthly_turns=1)
    limits.check("dev")
    clock.wall = datetime(2025, 1, 31, 23, 0, tzinfo=UTC)
    assert refusal(limits).message.startswith("monthly limit exceeded")
    clock.wall = datetime(2025, 2, 1, 0, 0, tzinfo=UTC)
    limits.check("dev")


def test_quota_periods_are_utc_whatever_the_zone_of_now() -> None:
    clock = FakeClock()
    limits = make(clock, daily_turns=1)
    clock.wall = datetime(2025, 1, 15, 23, 0, tzinfo=UTC)
    limits.check("dev")
    # Still the 15th in New York, but already the 16th in UTC: a new day for the quota.
    clock.wall = datetime(2025, 1, 15, 20, 0, tzinfo=timezone(timedelta(hours=-5)))
    limits.check("dev")


def test_zero_quota_means_unlimited() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=1000, daily_turns=0, weekly_turns=0, monthly_turns=0)
    for _ in range(1000):
        limits.check("dev")


def test_refund_gives_back_token_and_quota() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=1, daily_turns=1)
    limits.check("dev")
    limits.refund("dev")
    limits.check("dev")
    limits.refund("unknown")  # harmless


def test_device_table_is_bounded() -> None:
    clock = FakeClock()
    limits = make(clock, max_devices=3, device_burst=1, daily_turns=5)
    for index in range(10):
        limits.check(f"dev-{index}")
    assert len(limits) == 3


def test_blank_devices_are_dropped_before_the_cap() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=2, device_requests_per_minute=60)
    limits.check("a")
    clock.advance(5)  # a's bucket is full again: it carries no state
    limits.check("b")
    assert len(limits) == 1


def test_devices_with_quota_use_are_kept() -> None:
    clock = FakeClock()
    limits = make(clock, device_burst=2, daily_turns=5)
    limits.check("a")
    clock.advance(5)
    limits.check("b")
    assert len(limits) == 2


def test_device_limits_satisfies_the_protocol() -> None:
    limiter: DeviceLimiter = DeviceLimits(LimitsSettings())
    limiter.check("dev")


# Admission order inside the tracker.


def tracker(clock: FakeClock, **settings: float) -> TurnTracker:
    limits = make(clock, **settings)
    return TurnTracker(2, max_turns_per_device=1, device_limits=limits)


def test_global_limit_comes_first_and_counts_nothing() -> None:
    clock = FakeClock()
    turns = tracker(clock, device_burst=3)
    turns.admit("a", "s1")
    turns.admit("b", "s2")
    with pytest.raises(AdmissionError) as caught:
        turns.admit("c", "s3")
    assert caught.value.message.startswith("STREAM_LIMIT_EXCEEDED")
    assert caught.value.reason == "stream_limit"


def test_rate_and_quota_come_before_duplicate_session() -> None:
    clock = FakeClock()
    turns = tracker(clock, device_burst=1)
    turns.admit("a", "s1")
    with pytest.raises(AdmissionError) as caught:
        turns.admit("a", "s1")
    assert caught.value.reason == "device_rate"


def test_duplicate_session_then_device_concurrency_refund_the_device() -> None:
    clock = FakeClock()
    turns = tracker(clock, device_burst=2, daily_turns=2)
    first = turns.admit("a", "s1")
    with pytest.raises(AdmissionError) as duplicate:
        turns.admit("a", "s1")
    assert duplicate.value.kind == ErrorKind.ALREADY_EXISTS
    with pytest.raises(AdmissionError) as busy:
        turns.admit("a", "s2")
    assert busy.value.kind == ErrorKind.RESOURCE_EXHAUSTED
    assert busy.value.reason == "device_turns"
    assert turns.active_for("a") == 1
    turns.release(first)
    # Neither refusal used the bucket or the quota: the second turn of the day still fits.
    turns.admit("a", "s2")
    assert turns.active_for("a") == 1 and turns.active == 1


def test_tracker_without_device_limits_keeps_old_behaviour() -> None:
    turns = TurnTracker(5)
    for index in range(5):
        turns.admit("a", f"s{index}")
    assert turns.active_for("a") == 5
