"""Token usage reports: the record and the sink seam (the durable outbox implements it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
