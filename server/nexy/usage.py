"""Token usage reports: the record, the sink seam, and the interim in-process sink.

Durable storage of usage arrives with the storage layer; until then the sink keeps recent
records in a bounded buffer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from nexy.components import READY, ComponentStatus


@dataclass(frozen=True, slots=True)
class UsageRecord:
    hardware_id: str
    session_id: str
    source: str
    input_tokens: int
    output_tokens: int
    model: str


class UsageSink(Protocol):
    async def record(self, usage: UsageRecord) -> None:
        """Return only once the record is stored or safely queued."""
        ...


class MemoryUsageSink:
    """The most recent records, oldest dropped first."""

    def __init__(self, keep: int = 10_000) -> None:
        self.recent: deque[UsageRecord] = deque(maxlen=keep)

    async def start(self) -> None:
        return None

    def status(self) -> ComponentStatus:
        return READY

    async def close(self) -> None:
        return None

    async def record(self, usage: UsageRecord) -> None:
        self.recent.append(usage)
