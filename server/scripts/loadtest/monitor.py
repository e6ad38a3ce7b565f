"""The state the clients and the monitor share, and the once-a-second sample of the run."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass, field

import aiohttp

from .samplers import LoopLag, ProcessProbe, fetch_active_turns
from .target import Target, grpc_address
from .turns import TurnResult


@dataclass(slots=True)
class Sample:
    """One second of the run as the monitor saw it."""

    t: float
    turns_done: int
    turns_per_s: int
    in_flight: int
    errors: int
    rss_mb: float | None
    server_cpu: float | None
    server_main_thread_cpu: float | None  # the asyncio loop's thread
    server_other_threads_cpu: float | None  # gRPC core, database and other threads
    client_cpu: float | None
    client_loop_lag_ms: float
    server_active: int | None
    status_rtt_ms: float | None  # /status round trip: the server loop's responsiveness


@dataclass(slots=True)
class RunState:
    """Shared between the clients and the monitor (one event loop, so no locks)."""

    run_start: float
    stop_at: float
    max_turns: int
    warmup_turns: int
    probe: ProcessProbe
    results: list[TurnResult] = field(default_factory=list)
    started: int = 0
    in_flight: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    warm_rss_mb: float | None = None
    warm_at_s: float | None = None
    load_at_start: list[float] = field(
        default_factory=lambda: [round(x, 2) for x in os.getloadavg()]
    )

    def may_start(self) -> bool:
        return time.perf_counter() < self.stop_at and self.started < self.max_turns

    def record(self, result: TurnResult) -> None:
        self.results.append(result)
        if not result.ok:
            self.errors[result.status] += 1


async def monitor(
    state: RunState,
    target: Target,
    http: aiohttp.ClientSession,
    lag: LoopLag,
    samples: list[Sample],
    quiet: bool,
) -> None:
    """Once a second: sample, append to the series, print a progress line."""
    own = ProcessProbe(os.getpid())
    base = f"http://{grpc_address(target.host, target.http_port or 0)}"
    previous_done = 0
    tick = 0
    while True:
        tick += 1
        # Absolute deadlines: a slow /status answer must not make the series drift.
        await asyncio.sleep(max(0.0, state.run_start + tick - time.perf_counter()))
        active, rtt = None, None
        if target.http_port:
            with suppress(TimeoutError):
                active, rtt = await asyncio.wait_for(fetch_active_turns(http, base), 0.9)
        threads = state.probe.main_thread_cpu()
        done = len(state.results)
        sample = Sample(
            t=round(time.perf_counter() - state.run_start, 3),
            turns_done=done,
            turns_per_s=done - previous_done,
            in_flight=state.in_flight,
            errors=sum(state.errors.values()),
            rss_mb=state.probe.rss_mb(),
            server_cpu=state.probe.cpu_percent(),
            server_main_thread_cpu=round(threads[0], 1) if threads else None,
            server_other_threads_cpu=round(threads[1], 1) if threads else None,
            client_cpu=own.cpu_percent(),
            client_loop_lag_ms=round(lag.take() * 1000, 2),
            server_active=active,
            status_rtt_ms=round(rtt * 1000, 2) if rtt is not None else None,
        )
        previous_done = done
        samples.append(sample)
        if not quiet:
            print(progress_line(sample), flush=True)


def progress_line(s: Sample) -> str:
    def opt(value: float | None, fmt: str) -> str:
        return "  n/a" if value is None else format(value, fmt)

    return (
        f"t={s.t:6.1f}s turns={s.turns_done:6d} (+{s.turns_per_s:4d}/s) "
        f"in_flight={s.in_flight:4d} errors={s.errors:4d} rss={opt(s.rss_mb, '7.1f')} MB "
        f"srv_cpu={opt(s.server_cpu, '4.0f')}% (loop {opt(s.server_main_thread_cpu, '3.0f')}%) "
        f"gen_cpu={opt(s.client_cpu, '4.0f')}% gen_lag={s.client_loop_lag_ms:5.1f} ms "
        f"active={opt(s.server_active, '4d')} status_rtt={opt(s.status_rtt_ms, '6.1f')} ms"
    )
