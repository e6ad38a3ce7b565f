"""Which turns are running on this replica: admission, and cancelling them on interrupt.

The replica's own turn limit is checked here; what must hold across replicas (single-flight per
session, the device's concurrent turns, rate and quotas, interrupts from any replica) is asked of
the coordination backend, which is in-process unless Redis is configured.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from nexy.coordination.base import Claim, Coordination
from nexy.coordination.local import LocalCoordination
from nexy.events import ErrorKind
from nexy.limits import AdmissionError, DeviceLimiter

__all__ = ["AdmissionError", "TurnHandle", "TurnTracker"]


@dataclass(eq=False, slots=True)
class TurnHandle:
    """One admitted turn; ``interrupt()`` cancels its owner task."""

    hardware_id: str
    session_id: str
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[object] | None = None
    interrupted: bool = False
    claim: Claim | None = None

    def interrupt(self) -> None:
        self.interrupted = True
        if self.task is not None:
            self.task.cancel()


class TurnTracker:
    """Bookkeeping of this replica's active turns.

    Admission order: the replica's turn limit, the device's rate and quotas, a session already
    running, the device's concurrent turns. A turn refused after the device limits counted it
    is refunded, so only admitted turns use up rate and quota.
    """

    def __init__(
        self,
        max_concurrent_turns: int,
        *,
        max_turns_per_device: int | None = None,
        device_limits: DeviceLimiter | None = None,
        coordination: Coordination | None = None,
    ) -> None:
        self._max = max_concurrent_turns
        self._max_per_device = max_turns_per_device
        self._device_limits = device_limits
        self._coordination: Coordination = coordination or LocalCoordination()
        self._coordination.on_interrupt(self._cancel)
        self._handles: set[TurnHandle] = set()
        self._by_device: dict[str, set[TurnHandle]] = {}
        self._admitting = 0  # admissions waiting on the backend hold a slot of the limit

    @property
    def active(self) -> int:
        return len(self._handles)

    @property
    def capacity(self) -> int:
        return self._max

    def active_for(self, hardware_id: str) -> int:
        return len(self._by_device.get(hardware_id, ()))

    async def admit(self, hardware_id: str, session_id: str) -> TurnHandle:
        """Register a turn or raise AdmissionError (see the class docstring for the order)."""
        if len(self._handles) + self._admitting >= self._max:
            raise AdmissionError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"STREAM_LIMIT_EXCEEDED: the server is at its limit of {self._max} "
                "concurrent turns, please retry shortly",
                "stream_limit",
            )
        self._admitting += 1
        try:
            claim = await self._claim(hardware_id, session_id)
        finally:
            self._admitting -= 1
        handle = TurnHandle(hardware_id, session_id, claim=claim)
        self._handles.add(handle)
        self._by_device.setdefault(hardware_id, set()).add(handle)
        return handle

    async def _claim(self, hardware_id: str, session_id: str) -> Claim:
        if self._device_limits is not None:
            await self._device_limits.check(hardware_id)
        try:
            return await self._coordination.claim(hardware_id, session_id, self._max_per_device)
        except AdmissionError:
            if self._device_limits is not None:
                await self._device_limits.refund(hardware_id)
            raise

    def release(self, handle: TurnHandle) -> None:
        self._handles.discard(handle)
        device = self._by_device.get(handle.hardware_id)
        if device is not None:
            device.discard(handle)
            if not device:
                del self._by_device[handle.hardware_id]
        if handle.claim is not None:
            self._coordination.release(handle.claim)

    async def interrupt(self, hardware_id: str) -> list[str]:
        """Cancel the device's turns that started before now, on every replica; their sessions."""
        return await self._coordination.interrupt(hardware_id)

    def _cancel(self, hardware_id: str, tokens: frozenset[str] | None) -> list[str]:
        """This replica's part of an interrupt: every turn before now, or the listed claims."""
        now = time.monotonic()
        targets = [
            handle
            for handle in self._by_device.get(hardware_id, ())
            if (
                handle.started <= now
                if tokens is None
                else handle.claim is not None and handle.claim.token in tokens
            )
        ]
        for handle in targets:
            handle.interrupt()
        return sorted(handle.session_id for handle in targets)
