"""The server's health while ``fuzz_smoke.py`` runs: alive, memory (RSS), outbox rows."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from nexy.toolkit.connection import Target, http_get
from nexy.toolkit.promtext import total

HEALTH_EVERY_S = 1.0
DEAD_AFTER_FAILURES = 3  # consecutive unanswered /health polls: one slow answer is not a death
OUTBOX_METRICS = ("nexy_outbox_pending", "nexy_outbox_dead_letters", "nexy_outbox_refused_total")


def pid_alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (a dead child not yet reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def rss_kib(pid: int | None) -> int | None:
    """Resident memory of the process in KiB (VmRSS), None when unknown."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


async def health_ok(http: Target) -> bool:
    try:
        return (await http_get(http, "/health")).status == 200
    except Exception:  # any network failure means "not answering"; the reason is not needed
        return False


@dataclass
class Watch:
    """Polls /health (and the pid when known) until stopped; ``dead`` is set on a death."""

    http: Target
    pid: int | None = None
    deaths: int = 0
    polls: int = 0
    failed_polls: int = 0

    def __post_init__(self) -> None:
        self.dead = asyncio.Event()

    async def check(self) -> bool:
        """One poll; True when the server is alive."""
        self.polls += 1
        if self.pid is not None and not pid_alive(self.pid):
            return False
        ok = await health_ok(self.http)
        self.failed_polls += not ok
        return ok

    async def run(self, stop: asyncio.Event) -> None:
        misses = 0
        while not stop.is_set():
            misses = 0 if await self.check() else misses + 1
            gone = self.pid is not None and not pid_alive(self.pid)
            if gone or misses >= DEAD_AFTER_FAILURES:
                self.deaths = 1
                self.dead.set()
                return
            try:
                await asyncio.wait_for(stop.wait(), HEALTH_EVERY_S)
            except TimeoutError:
                continue


@dataclass
class Outbox:
    """The outbox gauges after the run; None = the server does not export that metric."""

    pending: float | None = None
    dead_letters: float | None = None
    refused: float | None = None
    waited_s: float = 0.0

    @property
    def stuck(self) -> float:
        return self.pending or 0.0

    def line(self) -> str:
        def show(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.0f}"

        return (
            f"outbox: pending {show(self.pending)} (after {self.waited_s:.0f} s), "
            f"dead letters {show(self.dead_letters)}, refused {show(self.refused)}"
        )


async def outbox_state(http: Target, settle_s: float) -> Outbox:
    """Read the outbox metrics, polling until nothing is pending or ``settle_s`` has passed."""
    started = time.monotonic()
    state = Outbox()
    while True:
        try:
            body = (await http_get(http, "/metrics")).text
        except Exception:  # the server is gone: the death is reported elsewhere
            return state
        pending, dead, refused = (total(body, name) for name in OUTBOX_METRICS)
        state = Outbox(pending, dead, refused, waited_s=time.monotonic() - started)
        if not state.pending or time.monotonic() - started >= settle_s:
            return state
        await asyncio.sleep(1.0)
