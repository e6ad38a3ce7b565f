"""Cluster-wide coordination through Redis: single-flight, device concurrency, limits, interrupts.

Keys (``<prefix>`` is ``coordination.key_prefix``; the scripts are in ``scripts.py``):

- ``<prefix>:session:<session_id>`` = the claim token, ``PX`` lease: single-flight per session.
- ``<prefix>:device:<hardware_id>`` sorted set of ``"<token> <session_id>"`` scored by expiry
  (Redis server ms): the device's running turns, for its concurrency limit and for interrupts.
- ``<prefix>:rate:…`` and ``<prefix>:quota:…``: see ``redis_limits.py``.
- channel ``<prefix>:interrupts``: ``{"h": device, "o": origin replica, "m": [members]}``.

A turn's lease is renewed by one loop per replica while the turn runs and deleted when it ends;
a replica that dies stops renewing, so its sessions and device slots free up within the lease.

Interrupts: the receiving replica cancels its own turns of the device at once, then one script
reads the device's set and publishes it. Every replica's listener cancels the turns it runs whose
tokens are listed. The reply is that set plus the local turns: the sessions interrupted anywhere,
known after one round trip without waiting for other replicas to answer, and "started before the
interrupt" is decided by Redis (registered or not) rather than by comparing replicas' clocks.

Every claim is first recorded in a ``LocalCoordination`` mirror, which keeps single-flight and
device concurrency per replica while Redis is unreachable; turns are never refused for an outage.
Turns admitted during an outage are registered when Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from nexy.components import READY, ComponentStatus, State
from nexy.config import CoordinationSettings, LimitsSettings
from nexy.coordination.base import Claim, InterruptHandler, device_busy, duplicate_session
from nexy.coordination.local import LocalCoordination
from nexy.coordination.redis_limits import RedisDeviceLimits
from nexy.coordination.scripts import CLAIM, INTERRUPT, KEEP, RELEASE
from nexy.coordination.store import FAILURES, RedisStore, Unavailable
from nexy.limits import DeviceLimiter

log = logging.getLogger(__name__)

LEASE_SECONDS = 15.0  # how long a dead replica's sessions and device slots stay taken
PROBE_FIRST_SECONDS = 0.2  # retry delays while Redis is away: doubling up to the cap
PROBE_MAX_SECONDS = 5.0
LISTEN_POLL_SECONDS = 1.0  # how often a quiet listener checks for an outage seen elsewhere
KEEP_BATCH = 200  # claims renewed per script call


class RedisCoordination:
    """The ``Coordination`` backend for more than one replica."""

    name = "redis"

    def __init__(
        self,
        settings: CoordinationSettings,
        limits: LimitsSettings,
        *,
        lease_seconds: float = LEASE_SECONDS,
        replica_id: str | None = None,
    ) -> None:
        self._store = RedisStore(
            settings.redis_url.get_secret_value(),
            settings.key_prefix,
            settings.operation_timeout_seconds,
        )
        self._limits = RedisDeviceLimits(self._store, limits)
        self._local = LocalCoordination(limiter=self._limits.fallback)
        self._lease_ms = max(1, int(lease_seconds * 1000))
        self._renew_every = lease_seconds / 3
        self.replica_id = replica_id or uuid.uuid4().hex
        self._channel = self._store.key("interrupts")
        self._claim = self._store.script(CLAIM)
        self._keep = self._store.script(KEEP)
        self._release = self._store.script(RELEASE)
        self._interrupt = self._store.script(INTERRUPT)
        self._subscribed = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[None]] = set()  # background releases
        self._unreleased: dict[str, Claim] = {}  # ended while Redis was away; cleared later
        self._closed = False

    @property
    def limiter(self) -> DeviceLimiter:
        return self._limits

    async def start(self) -> None:
        """Connect and subscribe; an unreachable Redis degrades the component, never fails it."""
        await self._store.probe()
        self._loops = [
            asyncio.create_task(self._listen(), name="coordination-listener"),
            asyncio.create_task(self._maintain(), name="coordination-leases"),
        ]
        if self._store.available:
            # Interrupts published before the subscription exists would be missed.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._store.timeout * 4):
                    await self._subscribed.wait()

    def status(self) -> ComponentStatus:
        if self._store.down_reason is not None:
            return ComponentStatus(
                State.DEGRADED,
                f"redis unreachable ({self._store.down_reason}): coordinating this replica's "
                "turns only",
            )
        if not self._subscribed.is_set():
            return ComponentStatus(State.DEGRADED, "not subscribed to interrupts yet")
        return READY

    async def close(self) -> None:
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        # Turns have drained by now; free what is left so no session waits out its lease.
        for claim in self._local.claims():
            self.release(claim)
        self._closed = True  # a turn that outlives this is released locally (its lease ends it)
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self._store.timeout * 2)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._store.close()

    async def claim(self, hardware_id: str, session_id: str, max_per_device: int | None) -> Claim:
        claim = self._local.claim_now(hardware_id, session_id, max_per_device)
        if not self._store.available:
            return claim
        limit = max_per_device or 0
        keys = self._keys(claim)
        # From here the claim may exist in Redis (even a timed-out call may have run there).
        claim.shared = True
        try:
            verdict = await self._store.run(
                self._claim, keys, [claim.token, self._lease_ms, limit, _member(claim)]
            )
        except Unavailable:
            return claim  # degraded: the replica's own check is all there is
        except BaseException:
            self.release(claim)  # cancelled mid-call: do not leave the session held
            raise
        if verdict == "ok":
            return claim
        claim.shared = False  # refused: nothing was written
        self._local.release(claim)
        if verdict == "duplicate":
            raise duplicate_session(session_id)
        raise device_busy(limit)

    def release(self, claim: Claim) -> None:
        if claim.released:
            return
        self._local.release(claim)
        if claim.shared:
            self._release_remote(claim)

    def on_interrupt(self, handler: InterruptHandler) -> None:
        self._local.on_interrupt(handler)

    async def interrupt(self, hardware_id: str) -> list[str]:
        cancelled = set(self._local.cancel(hardware_id, None))
        with contextlib.suppress(Unavailable):
            members = await self._store.run(
                self._interrupt,
                [self._store.key("device", hardware_id)],
                [self._channel, hardware_id, self.replica_id],
            )
            cancelled.update(member.split(" ", 1)[1] for member in members)
        return sorted(cancelled)

    def _keys(self, claim: Claim) -> list[str]:
        return [
            self._store.key("session", claim.session_id),
            self._store.key("device", claim.hardware_id),
        ]

    def _release_remote(self, claim: Claim) -> None:
        if self._closed:
            return
        if not self._store.available:
            self._unreleased[claim.token] = claim
            return
        self._spawn(self._release_now(claim))

    async def _release_now(self, claim: Claim) -> None:
        try:
            await self._store.run(self._release, self._keys(claim), [claim.token, _member(claim)])
        except Unavailable:
            self._unreleased[claim.token] = claim  # the lease would clear it; sooner is better

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen(self) -> None:
        """The replica's one subscriber: resubscribes after any failure, with backoff."""
        delay = PROBE_FIRST_SECONDS
        while True:
            pubsub = self._store.pubsub()
            try:
                async with asyncio.timeout(self._store.timeout):
                    await pubsub.subscribe(self._channel)
                    # Only the confirmation proves that later publications reach this replica.
                    confirmed: dict[str, Any] | None = None
                    while confirmed is None or confirmed.get("type") != "subscribe":
                        confirmed = await pubsub.get_message(timeout=self._store.timeout)
                outages = self._store.outages
                self._subscribed.set()  # recovery itself is the command client's probe to declare
                delay = PROBE_FIRST_SECONDS
                # An outage noticed by a command may have left this connection silently dead.
                while self._store.outages == outages:
                    message = await pubsub.get_message(timeout=LISTEN_POLL_SECONDS)
                    if message is not None and message.get("type") == "message":
                        self._deliver(message.get("data"))
            except FAILURES as exc:
                self._store.failed(exc)
            finally:
                self._subscribed.clear()
                with contextlib.suppress(*FAILURES):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, PROBE_MAX_SECONDS)

    def _deliver(self, data: object) -> None:
        """Cancel the listed turns this replica runs (another replica received the interrupt)."""
        try:
            news = json.loads(str(data))
            if news["o"] == self.replica_id:
                return  # this replica cancelled its turns when it received the call
            tokens = frozenset(str(member).split(" ", 1)[0] for member in news["m"])
            hardware_id = str(news["h"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed interrupt message on %s", self._channel)
            return
        self._local.cancel(hardware_id, tokens)

    async def _maintain(self) -> None:
        """Renew leases while Redis answers; probe it with backoff while it does not."""
        delay = PROBE_FIRST_SECONDS
        while True:
            if self._store.available:
                delay = PROBE_FIRST_SECONDS
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._renew_every):
                        await self._store.went_down.wait()  # an outage cuts the wait short
                if self._store.available:
                    await self._renew()
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, PROBE_MAX_SECONDS)
            if await self._store.probe():
                await self._renew()  # register outage-time turns, clear late releases

    async def _renew(self) -> None:
        """Renew running turns' leases, register outage-time turns, clear late releases."""
        late, self._unreleased = list(self._unreleased.values()), {}
        for claim in late:
            self._release_remote(claim)
        claims = self._local.claims()
        for start in range(0, len(claims), KEEP_BATCH):
            batch = claims[start : start + KEEP_BATCH]
            keys: list[str] = []
            args: list[object] = [self._lease_ms]
            for claim in batch:
                keys += self._keys(claim)
                args += [claim.token, _member(claim)]
            try:
                held = await self._store.run(self._keep, keys, args)
            except Unavailable:
                return
            for claim, ok in zip(batch, held, strict=True):
                claim.shared = claim.shared or bool(ok)
                if claim.released and claim.shared:
                    self._release_remote(claim)  # ended while its lease was being renewed


def _member(claim: Claim) -> str:
    return f"{claim.token} {claim.session_id}"
