"""Real-time pacing for the scripted providers: sleep to absolute deadlines, so no drift."""

from __future__ import annotations

import asyncio


class Pacer:
    """Schedules events at ``start + offset`` seconds on the loop clock."""

    def __init__(self) -> None:
        self._start = asyncio.get_running_loop().time()

    async def until(self, offset_seconds: float) -> None:
        delay = self._start + offset_seconds - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
