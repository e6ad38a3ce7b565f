"""The coordination seam: what must hold across every replica, not just this process.

Three things are cluster-wide (SPEC §10): single-flight per session, per-device limits (concurrent
turns, request rate and quotas) and interrupts. A ``Coordination`` backend provides them; the turn
tracker keeps the per-replica part (its own handles and the replica's turn limit) and asks the
backend for the rest. ``LocalCoordination`` does it in process (one replica is the whole cluster);
``RedisCoordination`` shares it through Redis and falls back to the local behaviour when Redis is
unreachable.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from nexy.components import ComponentStatus
from nexy.events import ErrorKind
from nexy.limits import AdmissionError, DeviceLimiter


def _token() -> str:
    return uuid.uuid4().hex


@dataclass(eq=False, slots=True)
class Claim:
    """One admitted turn as the coordination backend knows it.

    The token tells this claim apart from any later turn with the same session id, so a late
    release or a late interrupt never touches a turn it was not meant for.
    """

    hardware_id: str
    session_id: str
    token: str = field(default_factory=_token)
    shared: bool = False  # may be in the shared store (release must clear it there)
    released: bool = False


InterruptHandler = Callable[[str, frozenset[str] | None], list[str]]
"""Cancel this replica's turns of a device and return their session ids.

Called with the device and either ``None`` (every turn that started before now) or the claim
tokens another replica listed (exactly the turns that were registered when it was asked).
"""


class Coordination(Protocol):
    """A coordination backend; also a component (start, status, close)."""

    @property
    def limiter(self) -> DeviceLimiter:
        """Per-device request rate and quotas, shared as widely as this backend reaches."""
        ...

    async def start(self) -> None: ...

    def status(self) -> ComponentStatus: ...

    async def close(self) -> None: ...

    async def claim(self, hardware_id: str, session_id: str, max_per_device: int | None) -> Claim:
        """Register a turn, or raise AdmissionError (session already running, device busy)."""
        ...

    def release(self, claim: Claim) -> None:
        """Forget a finished turn; never blocks (shared stores are updated in the background)."""
        ...

    def on_interrupt(self, handler: InterruptHandler) -> None:
        """Register the replica's canceller; interrupts from any replica arrive through it."""
        ...

    async def interrupt(self, hardware_id: str) -> list[str]:
        """Cancel the device's running turns everywhere; the session ids that were cancelled."""
        ...


def duplicate_session(session_id: str) -> AdmissionError:
    return AdmissionError(
        ErrorKind.ALREADY_EXISTS,
        f"session {session_id} already has a turn in progress",
        "duplicate_session",
    )


def device_busy(limit: int) -> AdmissionError:
    return AdmissionError(
        ErrorKind.RESOURCE_EXHAUSTED,
        f"DEVICE_TURN_LIMIT_EXCEEDED: this device already has {limit} turn(s) in "
        "progress; wait for one to finish or interrupt it",
        "device_turns",
    )
