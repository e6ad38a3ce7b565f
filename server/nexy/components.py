"""The component lifecycle and the registry the application builds at start-up.

Every long-lived part (a provider, storage, coordination, the update feed) starts, reports a
status and closes the same way, and is found by the capability it provides ("llm", "tts", …).
The user's guide calls this the module coordinator and the universal module interface.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


class State(StrEnum):
    READY = "ready"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    state: State
    reason: str = ""


READY = ComponentStatus(State.READY)


@runtime_checkable
class Component(Protocol):
    """What every long-lived part offers the registry."""

    async def start(self) -> None: ...

    def status(self) -> ComponentStatus: ...

    async def close(self) -> None: ...


class StartupError(RuntimeError):
    """A required component could not start; the message says which and why."""


@dataclass(slots=True)
class _Entry:
    capability: str
    component: object
    required: bool
    status: ComponentStatus


class Registry:
    """Components by capability, started in registration order and closed in reverse."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._started: list[_Entry] = []

    def register(self, capability: str, component: object, *, required: bool = True) -> None:
        if capability in self._entries:
            raise ValueError(f"capability {capability!r} is already registered")
        pending = ComponentStatus(State.DOWN, "not started")
        self._entries[capability] = _Entry(capability, component, required, pending)

    def get(self, capability: str) -> object:
        try:
            return self._entries[capability].component
        except KeyError:
            raise LookupError(f"no component provides {capability!r}") from None

    def capabilities(self) -> list[str]:
        return list(self._entries)

    async def start_all(self) -> None:
        """Start all; a failed optional part degrades the server, a failed required one stops it."""
        for entry in self._entries.values():
            component = entry.component
            try:
                if isinstance(component, Component):
                    await component.start()
            except Exception as exc:  # a stage boundary: any start failure becomes a status
                reason = f"{type(exc).__name__}: {exc}"
                entry.status = ComponentStatus(State.DOWN, reason)
                if entry.required:
                    await self.close_all()
                    raise StartupError(f"{entry.capability} failed to start: {reason}") from exc
                log.warning("optional component %s is down: %s", entry.capability, reason)
                continue
            self._started.append(entry)
            entry.status = READY

    def status(self) -> dict[str, ComponentStatus]:
        """The live status of every component (components report their own once started)."""
        result: dict[str, ComponentStatus] = {}
        for name, entry in self._entries.items():
            component = entry.component
            live = entry in self._started and isinstance(component, Component)
            result[name] = (
                component.status() if isinstance(component, Component) and live else entry.status
            )
        return result

    def is_required(self, capability: str) -> bool:
        return self._entries[capability].required

    async def close_all(self) -> None:
        """Close started components in reverse order; one failing close does not stop the rest."""
        while self._started:
            entry = self._started.pop()
            component = entry.component
            try:
                if isinstance(component, Component):
                    await component.close()
            except Exception as exc:  # closing must reach every component
                log.error("closing %s failed: %s", entry.capability, type(exc).__name__)
            entry.status = ComponentStatus(State.DOWN, "closed")
