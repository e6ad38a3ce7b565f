"""Waiting for what the server does after the client already has its answer.

The server sends a call's status before its interceptors finish (the log line, the metrics) and
before background work drains, so a test that checks those waits for them, with a bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait until the predicate holds; fail after the timeout."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)
