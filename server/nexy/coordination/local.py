"""In-process coordination: the behaviour of one replica on its own (no Redis configured).

It is also the Redis backend's local mirror: every claim is recorded here first, so single-flight
and device concurrency hold at least within the replica whatever state Redis is in.
"""

from __future__ import annotations

from nexy.components import READY, ComponentStatus
from nexy.config import LimitsSettings
from nexy.coordination.base import (
    Claim,
    InterruptHandler,
    device_busy,
    duplicate_session,
)
from nexy.limits import DeviceLimiter, DeviceLimits


class LocalCoordination:
    """Claims, device limits and interrupts kept in this process's memory."""

    name = "local"

    def __init__(
        self, limits: LimitsSettings | None = None, *, limiter: DeviceLimiter | None = None
    ) -> None:
        self._limiter = limiter or DeviceLimits(limits or LimitsSettings())
        self._sessions: dict[str, Claim] = {}
        self._devices: dict[str, set[Claim]] = {}
        self._handlers: list[InterruptHandler] = []

    @property
    def limiter(self) -> DeviceLimiter:
        return self._limiter

    async def start(self) -> None:
        """Nothing to connect to."""

    def status(self) -> ComponentStatus:
        return READY

    async def close(self) -> None:
        """Nothing to let go of: claims end with their turns."""

    def claims(self) -> list[Claim]:
        """Every claim held now (the Redis backend renews these)."""
        return list(self._sessions.values())

    def claim_now(self, hardware_id: str, session_id: str, max_per_device: int | None) -> Claim:
        """Synchronous claim: no await between the checks and the update, so it is atomic."""
        if session_id in self._sessions:
            raise duplicate_session(session_id)
        device = self._devices.get(hardware_id, set())
        if max_per_device is not None and len(device) >= max_per_device:
            raise device_busy(max_per_device)
        claim = Claim(hardware_id, session_id)
        self._sessions[session_id] = claim
        self._devices.setdefault(hardware_id, set()).add(claim)
        return claim

    async def claim(self, hardware_id: str, session_id: str, max_per_device: int | None) -> Claim:
        return self.claim_now(hardware_id, session_id, max_per_device)

    def release(self, claim: Claim) -> None:
        claim.released = True
        if self._sessions.get(claim.session_id) is claim:
            del self._sessions[claim.session_id]
        device = self._devices.get(claim.hardware_id)
        if device is not None:
            device.discard(claim)
            if not device:
                del self._devices[claim.hardware_id]

    def on_interrupt(self, handler: InterruptHandler) -> None:
        self._handlers.append(handler)

    def cancel(self, hardware_id: str, tokens: frozenset[str] | None) -> list[str]:
        """Run every registered canceller (normally one tracker); the sessions they cancelled."""
        cancelled: set[str] = set()
        for handler in self._handlers:
            cancelled.update(handler(hardware_id, tokens))
        return sorted(cancelled)

    async def interrupt(self, hardware_id: str) -> list[str]:
        return self.cancel(hardware_id, None)
