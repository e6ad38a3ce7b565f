"""After a turn: the turn record and the memory update, written off the hot path.

The turn's record is put in the durable outbox (local disk, a few ms) by ``write_record`` before
the handler sends the terminal message, so a process killed right after ``end_message`` still
has it. Everything else (the record of a turn that ended without a terminal message, token
usage, the memory update) is handed to one owned worker, because the handler may be cancelled
the moment the client has its ``end_message``; ``close()`` drains what is left before shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

from nexy.components import READY, ComponentStatus, State
from nexy.providers.llm.base import MemoryContext, TokenMeter
from nexy.storage import AddTurn, Outbox, TurnRecord
from nexy.storage.records import Outcome
from nexy.usage import TURN_SOURCE, UsageRecord, usage_from_meter

log = logging.getLogger(__name__)

# How long a terminal message may wait for its turn's record to reach the local disk: longer
# means the spool is stuck, and the client is answered anyway (the worker finishes the write).
RECORD_WAIT_SECONDS = 1.0


class TurnMemory(Protocol):
    """What a turn needs from memory: one read before, one update after."""

    async def read_context(self, hardware_id: str) -> MemoryContext:
        """The device's facts and recent exchanges, read once within the read budget."""
        ...

    async def after_turn(self, hardware_id: str, prompt: str, reply: str, outcome: str) -> None:
        """Update the device's memory from what was said (durably queued before returning)."""
        ...


@dataclass(slots=True)
class TurnLog:
    """What actually reached the client during one turn; filled in as events are sent."""

    hardware_id: str
    session_id: str
    prompt: str
    llm_provider: str
    tts_provider: str
    spoken: list[str] = field(default_factory=list)
    action_json: str | None = None
    first_text_ms: float | None = None
    first_audio_ms: float | None = None
    outcome: Outcome = "interrupted"
    tokens: TokenMeter = field(default_factory=TokenMeter)
    # The record's outbox write, once started before the terminal message (see write_record).
    record_write: asyncio.Task[None] | None = None

    def usage(self) -> UsageRecord | None:
        """The model's token counts for this turn, if the model reported any."""
        return usage_from_meter(self.tokens, self.hardware_id, self.session_id, TURN_SOURCE)

    def record(self, total_ms: float) -> TurnRecord:
        return TurnRecord(
            session_id=self.session_id,
            hardware_id=self.hardware_id,
            prompt=self.prompt,
            reply_text="".join(self.spoken),
            outcome=self.outcome,
            total_ms=total_ms,
            llm_provider=self.llm_provider,
            tts_provider=self.tts_provider,
            action_json=self.action_json,
            first_text_ms=self.first_text_ms,
            first_audio_ms=self.first_audio_ms,
        )


class TurnJournal:
    """One worker writing finished turns; bounded, drained on close."""

    def __init__(self, outbox: Outbox, memory: TurnMemory, capacity: int = 1024) -> None:
        self._outbox = outbox
        self._memory = memory
        self._queue: asyncio.Queue[tuple[TurnLog, float]] = asyncio.Queue(capacity)
        self._worker: asyncio.Task[None] | None = None
        self.lost = 0  # turns that could not even be queued (the worker is hopelessly behind)

    async def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="turn-journal")

    def status(self) -> ComponentStatus:
        if self._worker is None or self._worker.done():
            return ComponentStatus(State.DOWN, "not running")
        if self.lost:
            return ComponentStatus(State.DEGRADED, f"{self.lost} turn records lost")
        return READY

    async def write_record(
        self, turn: TurnLog, total_ms: float, wait: float = RECORD_WAIT_SECONDS
    ) -> None:
        """Put the turn's record in the outbox now; returns once it is on disk (or after wait).

        The write is a task of its own: if the handler is cancelled or stops waiting, the write
        still completes and the worker checks its result instead of writing the record twice.
        """
        write = asyncio.ensure_future(self._outbox.put(AddTurn(turn.record(total_ms))))
        turn.record_write = write
        done, _ = await asyncio.wait([write], timeout=wait)
        if not done:
            log.warning(
                "turn record of session %s not on disk after %.1f s; answering anyway",
                turn.session_id,
                wait,
            )

    def submit(self, turn: TurnLog, total_ms: float) -> None:
        """Hand a finished turn over; never blocks (the handler may be being cancelled)."""
        try:
            self._queue.put_nowait((turn, total_ms))
        except asyncio.QueueFull:
            self.lost += 1
            log.error("turn journal full: record of session %s lost", turn.session_id)

    async def drain(self) -> None:
        """Wait until every submitted turn has been written (tests and shutdown)."""
        await self._queue.join()

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        if self._worker is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            log.warning("turn journal closed with %d turns unwritten", self._queue.qsize())
        self._worker.cancel()
        await asyncio.wait([self._worker])
        self._worker = None

    async def _run(self) -> None:
        while True:
            turn, total_ms = await self._queue.get()
            try:
                if not await _written(turn):
                    await self._outbox.put(AddTurn(turn.record(total_ms)))
                if (usage := turn.usage()) is not None:
                    await self._outbox.record(usage)
                reply = "".join(turn.spoken)
                await self._memory.after_turn(turn.hardware_id, turn.prompt, reply, turn.outcome)
            except Exception:  # one bad record must not stop the journal
                log.error("writing turn %s failed", turn.session_id)
            finally:
                self._queue.task_done()


async def _written(turn: TurnLog) -> bool:
    """Whether the record's early write (if there was one) reached the outbox."""
    write = turn.record_write
    if write is None:
        return False
    await asyncio.wait([write])  # never raises, and leaves this worker cancellable
    if write.cancelled() or write.exception() is not None:
        log.warning("early record of session %s failed; writing it again", turn.session_id)
        return False
    return True
