"""Which turns are running on this replica: admission, single-flight per session, interrupts."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nexy.events import ErrorKind

if TYPE_CHECKING:  # nexy.limits imports AdmissionError from here
    from nexy.limits import DeviceLimiter


class AdmissionError(Exception):
    """A turn refused before any work; carries the status kind and the client-facing text."""

    def __init__(self, kind: ErrorKind, message: str, reason: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.reason = reason  # short label for the rejections metric


@dataclass(eq=False, slots=True)
class TurnHandle:
    """One admitted turn; ``interrupt()`` cancels its owner task."""

    hardware_id: str
    session_id: str
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[object] | None = None
    interrupted: bool = False

    def interrupt(self) -> None:
        self.interrupted = True
        if self.task is not None:
            self.task.cancel()


class TurnTracker:
    """In-process bookkeeping of active turns (cluster-wide coordination wraps this).

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
    ) -> None:
        self._max = max_concurrent_turns
        self._max_per_device = max_turns_per_device
        self._device_limits = device_limits
        self._by_session: dict[str, TurnHandle] = {}
        self._by_device: dict[str, set[TurnHandle]] = {}

    @property
    def active(self) -> int:
        return len(self._by_session)

    @property
    def capacity(self) -> int:
        return self._max

    def active_for(self, hardware_id: str) -> int:
        return len(self._by_device.get(hardware_id, ()))

    def admit(self, hardware_id: str, session_id: str) -> TurnHandle:
        """Register a turn or raise AdmissionError (see the class docstring for the order)."""
        if len(self._by_session) >= self._max:
            raise AdmissionError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"STREAM_LIMIT_EXCEEDED: the server is at its limit of {self._max} "
                "concurrent turns, please retry shortly",
                "stream_limit",
            )
        if self._device_limits is not None:
            self._device_limits.check(hardware_id)
        try:
            self._check_in_flight(hardware_id, session_id)
        except AdmissionError:
            if self._device_limits is not None:
                self._device_limits.refund(hardware_id)
            raise
        handle = TurnHandle(hardware_id, session_id)
        self._by_session[session_id] = handle
        self._by_device.setdefault(hardware_id, set()).add(handle)
        return handle

    def _check_in_flight(self, hardware_id: str, session_id: str) -> None:
        if session_id in self._by_session:
            raise AdmissionError(
                ErrorKind.ALREADY_EXISTS,
                f"session {session_id} already has a turn in progress",
                "duplicate_session",
            )
        limit = self._max_per_device
        if limit is not None and self.active_for(hardware_id) >= limit:
            raise AdmissionError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"DEVICE_TURN_LIMIT_EXCEEDED: this device already has {limit} turn(s) in "
                "progress; wait for one to finish or interrupt it",
                "device_turns",
            )

    def release(self, handle: TurnHandle) -> None:
        if self._by_session.get(handle.session_id) is handle:
            del self._by_session[handle.session_id]
        device = self._by_device.get(handle.hardware_id)
        if device is not None:
            device.discard(handle)
            if not device:
                del self._by_device[handle.hardware_id]

    def interrupt(self, hardware_id: str) -> list[str]:
        """Cancel every turn of the device that started before now; their session ids."""
        now = time.monotonic()
        targets = [h for h in self._by_device.get(hardware_id, ()) if h.started <= now]
        for handle in targets:
            handle.interrupt()
        return sorted(handle.session_id for handle in targets)
