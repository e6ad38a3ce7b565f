"""Token usage reports: the record and the sink seam (the durable outbox implements it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from nexy.providers.llm.base import TokenMeter

# Sources of the token_usage rows the server measures itself; clients report their own.
TURN_SOURCE = "server"  # the model's reply in a turn
MEMORY_SOURCE = "server-memory"  # the model reading a finished exchange for memory facts


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


def usage_from_meter(
    meter: TokenMeter, hardware_id: str, session_id: str, source: str
) -> UsageRecord | None:
    """The row for what ``meter`` counted, or None when the model reported nothing."""
    if not meter.reported:
        return None
    return UsageRecord(
        hardware_id=hardware_id,
        session_id=session_id,
        source=source,
        input_tokens=meter.input_tokens,
        output_tokens=meter.output_tokens,
        model=meter.model,
    )
