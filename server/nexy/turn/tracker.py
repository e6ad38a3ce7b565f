"""Which turns are running on this replica: admission, and cancelling them on interrupt.

The replica's own limits are checked here: its turn limit and the turns per client connection
and per remote address (a TCP peer only ever reaches one replica, so these are per replica by
nature). What must hold across replicas (single-flight per session, the device's concurrent
turns, rate and quotas, interrupts from any replica) is asked of the coordination backend, which
is in-process unless Redis is configured.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from nexy.coordination.base import Claim, Coordination
from nexy.coordination.local import LocalCoordination
from nexy.events import ErrorKind, TurnError
from nexy.limits import AdmissionError, DeviceLimiter

__all__ = ["SHUTDOWN", "AdmissionError", "TurnHandle", "TurnTracker", "peer_address"]

INTERRUPTED = TurnError(ErrorKind.CANCELLED, "interrupted")
SHUTDOWN = TurnError(ErrorKind.UNAVAILABLE, "the server is shutting down")


def peer_address(peer: str) -> str:
    """The remote address of a gRPC peer without its port: "ipv4:1.2.3.4:5678" → "ipv4:1.2.3.4"."""
    if peer.startswith(("ipv4:", "ipv6:")):
        return peer.rsplit(":", 1)[0]
    return peer  # unix sockets and the like have no port to strip


@dataclass(eq=False, slots=True)
class TurnHandle:
    """One admitted turn; ``interrupt()`` cancels its owner task."""

    hardware_id: str
    session_id: str
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[object] | None = None
    interrupted: bool = False
    claim: Claim | None = None
    peer: str = ""
    # What the client is told when the turn is interrupted (InterruptSession or shutdown).
    reason: TurnError = INTERRUPTED

    def interrupt(self, reason: TurnError = INTERRUPTED) -> None:
        if not self.interrupted:
            self.reason = reason
        self.interrupted = True
        if self.task is not None:
            self.task.cancel()


class TurnTracker:
    """Bookkeeping of this replica's active turns.

    Admission order: shutting down, the replica's turn limit, the client connection's and the
    remote address's turns, the device's rate and quotas, a session already running, the
    device's concurrent turns. A turn refused after the device limits counted it is refunded,
    so only admitted turns use up rate and quota.
    """

    def __init__(
        self,
        max_concurrent_turns: int,
        *,
        max_turns_per_device: int | None = None,
        device_limits: DeviceLimiter | None = None,
        coordination: Coordination | None = None,
        max_turns_per_connection: int = 0,
        max_turns_per_address: int = 0,
    ) -> None:
        self._max = max_concurrent_turns
        self._max_per_device = max_turns_per_device
        self._device_limits = device_limits
        self._coordination: Coordination = coordination or LocalCoordination()
        self._coordination.on_interrupt(self._cancel)
        self._handles: set[TurnHandle] = set()
        self._by_device: dict[str, set[TurnHandle]] = {}
        self._admitting = 0  # admissions waiting on the backend hold a slot of the limit
        self._peers = _PeerCount(max_turns_per_connection, max_turns_per_address)
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active(self) -> int:
        return len(self._handles)

    @property
    def capacity(self) -> int:
        return self._max

    def active_for(self, hardware_id: str) -> int:
        return len(self._by_device.get(hardware_id, ()))

    async def admit(self, hardware_id: str, session_id: str, peer: str = "") -> TurnHandle:
        """Register a turn or raise AdmissionError (see the class docstring for the order)."""
        if self._closed:
            raise AdmissionError(ErrorKind.UNAVAILABLE, SHUTDOWN.message, "shutting_down")
        if len(self._handles) + self._admitting >= self._max:
            raise AdmissionError(
                ErrorKind.RESOURCE_EXHAUSTED,
                f"STREAM_LIMIT_EXCEEDED: the server is at its limit of {self._max} "
                "concurrent turns, please retry shortly",
                "stream_limit",
            )
        # Counted before the backend is asked: a burst on one connection cannot slip past.
        self._peers.take(peer)
        self._admitting += 1
        try:
            claim = await self._claim(hardware_id, session_id)
        except BaseException:
            self._peers.give_back(peer)
            raise
        finally:
            self._admitting -= 1
        handle = TurnHandle(hardware_id, session_id, claim=claim, peer=peer)
        self._handles.add(handle)
        self._by_device.setdefault(hardware_id, set()).add(handle)
        self._idle.clear()
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

    def stop_admitting(self) -> None:
        """Refuse every new turn from now on (shutdown): UNAVAILABLE, "shutting down"."""
        self._closed = True

    async def wait_idle(self, timeout: float) -> bool:  # noqa: ASYNC109 - a grace period
        """Wait up to ``timeout`` s until no turn runs; whether none does."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            pass
        return not self._handles

    def interrupt_all(self, reason: TurnError) -> int:
        """Interrupt every turn of this replica with ``reason``; how many there were."""
        for handle in list(self._handles):
            handle.interrupt(reason)
        return len(self._handles)

    def release(self, handle: TurnHandle) -> None:
        if handle not in self._handles:
            return  # released already: a second release must not give back a peer slot twice
        self._handles.discard(handle)
        self._peers.give_back(handle.peer)
        if not self._handles:
            self._idle.set()
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


class _PeerCount:
    """Turns per client connection (gRPC peer string) and per remote address; 0 = no limit."""

    def __init__(self, per_connection: int, per_address: int) -> None:
        self._per_connection = per_connection
        self._per_address = per_address
        self._connections: dict[str, int] = {}
        self._addresses: dict[str, int] = {}

    def take(self, peer: str) -> None:
        """Count one turn for the peer, or raise AdmissionError without counting it."""
        if not peer:
            return  # in-process callers (tests, tools) have no peer
        address = peer_address(peer)
        if self._per_connection and self._connections.get(peer, 0) >= self._per_connection:
            raise AdmissionError(
                ErrorKind.RESOURCE_EXHAUSTED,
                "STREAM_LIMIT_EXCEEDED: this connection already runs "
                f"{self._per_connection} turns, please wait for one to finish",
                "connection_limit",
            )
        if self._per_address and self._addresses.get(address, 0) >= self._per_address:
            raise AdmissionError(
                ErrorKind.RESOURCE_EXHAUSTED,
                "STREAM_LIMIT_EXCEEDED: too many turns are running from your network address, "
                "please retry shortly",
                "address_limit",
            )
        self._connections[peer] = self._connections.get(peer, 0) + 1
        self._addresses[address] = self._addresses.get(address, 0) + 1

    def give_back(self, peer: str) -> None:
        if peer:
            _decrement(self._connections, peer)
            _decrement(self._addresses, peer_address(peer))


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)  # no entry per idle peer: the maps stay as small as the load
