"""Per-device request rate and quotas kept in Redis: a device's turns count on every replica.

One script checks and takes in a single step (no two replicas can both take the last token). Keys:
``<prefix>:rate:<device>`` is the token bucket (a hash: tokens, time of the last update in Redis
server milliseconds; it expires once it would be full again), and
``<prefix>:quota:<device>:<d|w|m>:<period>`` count the turns of the current UTC day, ISO week
and month (the period is part of the key, so a new period starts from zero by itself; the old key
expires a little after its period). While Redis is unreachable the in-process ``DeviceLimits``
answers instead: the limits then hold per replica, and turns are never refused for the outage.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from nexy.config import LimitsSettings
from nexy.coordination.scripts import RATE_CHECK, RATE_REFUND
from nexy.coordination.store import RedisStore, Unavailable
from nexy.limits import DeviceLimits, period_keys, quota_refusal, rate_refusal

# Each counter outlives its period by a margin; the period in the key ends its use anyway.
_COUNTER_TTL_SECONDS = (2 * 86_400, 8 * 86_400, 32 * 86_400)
_PERIOD_TAGS = ("d", "w", "m")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class RedisDeviceLimits:
    """A ``DeviceLimiter`` shared through Redis, with an in-process fallback."""

    def __init__(
        self,
        store: RedisStore,
        settings: LimitsSettings,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._now = now
        self._per_second = settings.device_requests_per_minute / 60.0
        self._burst = float(settings.device_burst)
        self._quotas = (settings.daily_turns, settings.weekly_turns, settings.monthly_turns)
        self._args = [
            repr(self._per_second / 1000.0),  # the script counts in Redis milliseconds
            settings.device_burst,
            *self._quotas,
            *_COUNTER_TTL_SECONDS,
        ]
        self._check = store.script(RATE_CHECK)
        self._refund = store.script(RATE_REFUND)
        self.fallback = DeviceLimits(settings)

    def _keys(self, hardware_id: str) -> list[str]:
        periods = period_keys(self._now())
        counters = [
            self._store.key("quota", hardware_id, tag, str(period))
            for tag, period in zip(_PERIOD_TAGS, periods, strict=True)
        ]
        return [self._store.key("rate", hardware_id), *counters]

    async def check(self, hardware_id: str) -> None:
        try:
            result = await self._store.run(self._check, self._keys(hardware_id), self._args)
        except Unavailable:
            await self.fallback.check(hardware_id)
            return
        verdict = result[0]
        if verdict == "quota":
            index = int(result[1]) - 1
            raise quota_refusal(index, self._quotas[index])
        if verdict == "rate":
            raise rate_refusal(float(result[1]), self._per_second, self._burst)

    async def refund(self, hardware_id: str) -> None:
        # A refund follows its check within one admission, so both almost always reach the same
        # store. If Redis went away in between, the Redis turn stays counted and the in-process
        # table gets a refund it may not need: either way off by one turn, for one outage.
        try:
            await self._store.run(self._refund, self._keys(hardware_id), self._args)
        except Unavailable:
            await self.fallback.refund(hardware_id)
