"""How late the event loop runs: the signal admission uses to refuse before streams suffer.

A replica streams every turn on one event loop. The turn limit (``limits.max_concurrent_turns``)
is sized for one machine's speed, but the same replica gets slower when its neighbours on the
host get busy, and then a limit that fit a minute ago overloads it. An overloaded loop is late
for everything at once: every stream's next chunk, every call waiting to be accepted and every
refusal. Admitting more turns then only makes all of them later.

``LoopLag`` wakes every 50 ms and records how late it woke. While its mean lateness over the last
second is above ``limits.max_loop_lag_ms``, admission refuses new turns (``RESOURCE_EXHAUSTED``,
``SERVER_BUSY``), so the turns already admitted keep their pace and refusals stay quick. The mean,
not the worst, so that one short pause (a collection, a slow disk write) does not refuse a
second of turns; a loop that is late all the time is overloaded. A healthy loop is late by a
millisecond or two. The probe costs one timer per 50 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

INTERVAL_SECONDS = 0.05
WINDOW = 20  # probes: one second


class LoopLag:
    """The event loop's recent lateness, measured by a probe task."""

    def __init__(self, interval: float = INTERVAL_SECONDS, window: int = WINDOW) -> None:
        self._interval = interval
        self._late: deque[float] = deque(maxlen=window)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._probe(), name="nexy-loop-lag")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def recent_ms(self) -> float:
        """The mean lateness over the last second, in ms (0 before the first probe)."""
        return sum(self._late) / len(self._late) * 1000 if self._late else 0.0

    async def _probe(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            self._late.append(max(0.0, loop.time() - due))
