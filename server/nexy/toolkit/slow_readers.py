"""``slow_readers.py``: many clients that read one message a second must not starve a good one.

N StreamAudio turns with long replies are opened from N separate connections that read one
message per second; meanwhile a well-behaved client runs sequential short turns. The report:
the share of good turns admitted (goal ≥ 95 %), their time to first audio, and how the slow
streams ended.

The slow connections come from another source address (127.0.0.2, through
:class:`nexy.toolkit.source_relay.SourceRelay`), so that a server with per-address caps can
tell them apart from the good client.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc

from nexy.toolkit.calls import QUICK_PROMPT, commit, run_turn, slow_prompt, stub_for
from nexy.toolkit.connection import Target
from nexy.toolkit.source_relay import SourceRelay

ADMITTED_GOAL = 0.95
# Each connection its own TCP socket (channels to one target share one by default), and no
# window growth: a slow client on a poor link keeps the 64 KiB HTTP/2 window.
SLOW_CHANNEL_OPTIONS = (("grpc.use_local_subchannel_pool", 1), ("grpc.http2.bdp_probe", 0))


@dataclass(frozen=True, slots=True)
class SlowOptions:
    streams: int = 300
    good: int = 100
    read_every_s: float = 1.0
    source: str = "127.0.0.2"
    prompt_chars: int = 2400
    open_wait_s: float = 15.0


@dataclass
class SlowResult:
    """Good turns admitted and their first-audio times; how the slow streams fared."""

    good_admitted: int = 0
    good_total: int = 0
    good_refusals: Counter[str] = field(default_factory=Counter)
    ttfa_s: list[float] = field(default_factory=list)
    slow_outcomes: Counter[str] = field(default_factory=Counter)
    slow_started: int = 0
    source: str = ""

    @staticmethod
    def _ms(seconds: float | None) -> str:
        return "n/a" if seconds is None else f"{seconds * 1000:.0f} ms"

    @property
    def admitted_share(self) -> float:
        return self.good_admitted / self.good_total if self.good_total else 0.0

    def lines(self) -> list[str]:
        times = sorted(self.ttfa_s)
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))] if times else None
        median = statistics.median(times) if times else None
        return [
            f"slow readers from {self.source}: {self.slow_started} got a first message; "
            f"endings {dict(self.slow_outcomes)}",
            f"good client: {self.good_admitted}/{self.good_total} admitted "
            f"({self.admitted_share:.0%}), refusals {dict(self.good_refusals)}",
            f"good client time to first audio: median {self._ms(median)}, p95 {self._ms(p95)}",
        ]


def _raise_fd_limit() -> None:
    """Three sockets per slow stream (client, relay in, relay out) exceed a 1024-fd default."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _next(call: Any, stop: asyncio.Event) -> Any:
    """The next message, EOF, or None once ``stop`` is set (then the call is cancelled)."""
    read = asyncio.ensure_future(call.read())
    halt = asyncio.ensure_future(stop.wait())
    await asyncio.wait({read, halt}, return_when=asyncio.FIRST_COMPLETED)
    halt.cancel()
    if read.done():
        return read.result()
    call.cancel()
    read.cancel()
    with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
        await read  # our own cancel of the pending read; the caller was not cancelled
    return None


async def _slow_stream(
    where: Target, options: SlowOptions, started: asyncio.Event, stop: asyncio.Event
) -> tuple[str, bool]:
    """One slow reader: (how it ended, whether it got a first message)."""
    channel = where.channel(SLOW_CHANNEL_OPTIONS)
    call: Any = stub_for(channel).StreamAudio(commit(slow_prompt(options.prompt_chars)))
    got_first = False
    try:
        while (message := await _next(call, stop)) is not None:
            if message is grpc.aio.EOF:
                return (await call.code()).name, got_first
            got_first = True
            started.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), options.read_every_s)
        return "still open (cancelled by the tool)", got_first
    except grpc.aio.AioRpcError as exc:
        return exc.code().name, got_first
    finally:
        await channel.close()


async def _good_client(where: Target, options: SlowOptions, result: SlowResult) -> None:
    channel = where.channel()
    stub = stub_for(channel)
    try:
        for _ in range(options.good):
            turn = await run_turn(stub, commit(QUICK_PROMPT), where.timeout)
            result.good_total += 1
            if turn.ended and turn.first_audio_s is not None:
                result.good_admitted += 1
                result.ttfa_s.append(turn.first_audio_s)
            else:
                result.good_refusals[turn.code.name if turn.code else "no status"] += 1
    finally:
        await channel.close()


async def run_slow_readers(where: Target, options: SlowOptions) -> SlowResult:
    """Open the slow streams, run the good client beside them, then close everything."""
    _raise_fd_limit()
    result = SlowResult(source=options.source)
    relay = SourceRelay(where, options.source)
    slow_target = await relay.target()
    stop, first = asyncio.Event(), asyncio.Event()
    slow = [
        asyncio.create_task(_slow_stream(slow_target, options, first, stop))
        for _ in range(options.streams)
    ]
    try:
        with contextlib.suppress(TimeoutError):  # give the slow streams time to fill the server
            await asyncio.wait_for(first.wait(), options.open_wait_s)
        await asyncio.sleep(min(options.open_wait_s, 3.0))
        await _good_client(where, options, result)
    finally:
        stop.set()
        for outcome, got_first in await asyncio.gather(*slow):
            result.slow_outcomes[outcome] += 1
            result.slow_started += got_first
        await relay.close()
    return result
