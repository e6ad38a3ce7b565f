"""Per-device admission limits: a request-rate token bucket and day/week/month turn quotas.

``DeviceLimiter`` is the seam: this module's ``DeviceLimits`` keeps the state in process; the
Redis coordination backend implements the same two methods so limits hold across replicas, and
builds its refusals with the helpers here so a client sees the same text whichever answered.
Periods are UTC calendar periods (ISO weeks start on Monday); a quota of 0 is off.

``AdmissionError`` lives here rather than in the tracker so that the coordination backends, which
the tracker imports, can raise it without an import cycle.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from nexy.config import LimitsSettings
from nexy.events import ErrorKind

DEFAULT_MAX_DEVICES = 100_000
RATE_MARKER = "RATE_LIMIT_EXCEEDED"
# The desktop client looks for these exact phrases to show its quota screen.
DAILY_MARKER = "daily limit exceeded"
WEEKLY_MARKER = "weekly limit exceeded"
MONTHLY_MARKER = "monthly limit exceeded"


class AdmissionError(Exception):
    """A turn refused before any work; carries the status kind and the client-facing text."""

    def __init__(self, kind: ErrorKind, message: str, reason: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.reason = reason  # short label for the rejections metric


class DeviceLimiter(Protocol):
    """Decides whether a device may start one more turn (async: a shared store may answer)."""

    async def check(self, hardware_id: str) -> None:
        """Count one turn for the device, or raise AdmissionError without counting it."""

    async def refund(self, hardware_id: str) -> None:
        """Undo the last successful ``check``: the turn was refused later in admission."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class _Period:
    name: str  # reason label for the rejections metric
    marker: str
    span: str  # how the message names the period


_PERIODS = (
    _Period("daily_quota", DAILY_MARKER, "today (UTC)"),
    _Period("weekly_quota", WEEKLY_MARKER, "this week (UTC, from Monday)"),
    _Period("monthly_quota", MONTHLY_MARKER, "this month (UTC)"),
)


def period_keys(now: datetime) -> tuple[int, int, int]:
    """One integer per period (day, ISO week, month) that changes exactly at its rollover."""
    utc = now.astimezone(UTC)
    iso = utc.isocalendar()
    return utc.toordinal(), iso.year * 100 + iso.week, utc.year * 100 + utc.month


def quota_refusal(index: int, quota: int) -> AdmissionError:
    """The refusal for period ``index`` (0 day, 1 week, 2 month) with its client marker."""
    period = _PERIODS[index]
    return AdmissionError(
        ErrorKind.PERMISSION_DENIED,
        f"{period.marker}: this device has used its {quota} turns for {period.span}",
        period.name,
    )


def rate_refusal(tokens: float, per_second: float, burst: float) -> AdmissionError:
    """The token-bucket refusal; says how long until one token is back."""
    wait = math.ceil((1.0 - tokens) / per_second)
    return AdmissionError(
        ErrorKind.RESOURCE_EXHAUSTED,
        f"{RATE_MARKER}: too many requests from this device (at most "
        f"{burst:g} at once, then {per_second * 60:g} per minute); retry in {wait} s",
        "device_rate",
    )


@dataclass(slots=True)
class _Device:
    tokens: float
    updated: float  # clock() when ``tokens`` was last brought up to date
    keys: tuple[int, int, int] = (0, 0, 0)
    counts: list[int] = field(default_factory=lambda: [0, 0, 0])


class DeviceLimits:
    """In-process DeviceLimiter; memory is bounded by an LRU table of devices."""

    def __init__(
        self,
        settings: LimitsSettings,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utc_now,
        max_devices: int = DEFAULT_MAX_DEVICES,
    ) -> None:
        self._rate = settings.device_requests_per_minute / 60.0  # tokens per second
        self._burst = float(settings.device_burst)
        self._quotas = (settings.daily_turns, settings.weekly_turns, settings.monthly_turns)
        self._clock = clock
        self._now = now
        self._max_devices = max_devices
        self._devices: OrderedDict[str, _Device] = OrderedDict()
        self._keys = (0, 0, 0)

    def __len__(self) -> int:
        return len(self._devices)

    async def check(self, hardware_id: str) -> None:
        device = self._device(hardware_id)
        self._roll(device, self._period_keys())
        # Quotas first: a device out of quota must not be told to "retry in a second".
        for index, quota in enumerate(self._quotas):
            if quota and device.counts[index] >= quota:
                raise quota_refusal(index, quota)
        self._refill(device)
        if device.tokens < 1.0:
            raise rate_refusal(device.tokens, self._rate, self._burst)
        device.tokens -= 1.0
        for index, quota in enumerate(self._quotas):
            if quota:
                device.counts[index] += 1

    async def refund(self, hardware_id: str) -> None:
        device = self._devices.get(hardware_id)
        if device is None:
            return  # evicted meanwhile: nothing left to give back
        self._refill(device)
        device.tokens = min(self._burst, device.tokens + 1.0)
        for index, quota in enumerate(self._quotas):
            if quota and device.counts[index] > 0:
                device.counts[index] -= 1

    def _device(self, hardware_id: str) -> _Device:
        device = self._devices.get(hardware_id)
        if device is not None:
            self._devices.move_to_end(hardware_id)
            return device
        self._forget_oldest()
        device = _Device(tokens=self._burst, updated=self._clock())
        self._devices[hardware_id] = device
        return device

    def _forget_oldest(self) -> None:
        """Make room for one device; drop the least recently seen one if it carries no state.

        A device with a full bucket and no quota use in the current periods is the same as an
        unseen one, so dropping it loses nothing. At the hard cap the oldest goes regardless:
        bounded memory matters more than the quota of a device unseen for that long.
        """
        if not self._devices:
            return
        oldest_id, oldest = next(iter(self._devices.items()))
        if len(self._devices) >= self._max_devices or self._is_blank(oldest):
            del self._devices[oldest_id]

    def _is_blank(self, device: _Device) -> bool:
        self._refill(device)
        self._roll(device, self._period_keys())
        return device.tokens >= self._burst and not any(device.counts)

    def _period_keys(self) -> tuple[int, int, int]:
        keys = period_keys(self._now())
        if keys != self._keys:
            self._keys = keys  # one shared tuple for every device: a third less memory
        return self._keys

    def _refill(self, device: _Device) -> None:
        now = self._clock()
        elapsed = max(0.0, now - device.updated)
        device.tokens = min(self._burst, device.tokens + elapsed * self._rate)
        device.updated = now

    @staticmethod
    def _roll(device: _Device, keys: tuple[int, int, int]) -> None:
        """Start a fresh count for every period that has rolled over since the last turn."""
        for index, key in enumerate(keys):
            if device.keys[index] != key:
                device.counts[index] = 0
        device.keys = keys
