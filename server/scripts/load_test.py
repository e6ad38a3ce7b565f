#!/usr/bin/env python3
"""Bounded load test: N closed-loop clients against one Nexy server on this machine.

    python server/scripts/load_test.py --concurrency 300 --duration 60 \\
        [--json out.json] [--chart out.png] [--write docs/BENCHMARKS.md]
    python server/scripts/load_test.py --rss-turns 10000          # "RSS grows < 20 MB" check
    python server/scripts/load_test.py --target 127.0.0.1:50051 --http-port 8080 --pid 1234

By default it spawns its own server (``--spawn``) with the scripted providers paced in real time:
LLM first token ~150 ms then ~30 chunks/s of 6 characters, TTS first chunk ~40 ms and audio
produced at playback speed (real-time factor 1.0), so N concurrent turns are N people listening
at once. Each client has its own hardware_id and runs turns back to back; per turn it records
time to first text, time to first audio, the largest gap between audio chunks as received, the
playback stall a player with a small jitter buffer would suffer, and the outcome by gRPC status.
Every second it samples the server's RSS and CPU (psutil), ``/status`` active turns and its own
event-loop lag, and prints one progress line.

``--rss-turns N`` answers "RSS grows by less than X MB over N turns": short turns (one sentence,
TTS at 0.05 real time, 50 clients), RSS read at rest after ``--warmup-turns`` and again at rest
at the end, plus the slope of RSS against turns under load.

The report (stdout, and ``--write FILE`` into its ``load_test`` / ``load_test_rss`` section) has
p50/p95/p99 of each measure, errors by status, RSS start/end/max, CPU per turn, the server's own
view from ``/metrics``, and the moments when many streams stalled at once (whole-server pauses).
``--json`` keeps every number, the per-second series and every turn; ``--chart`` draws the run.
Exit status: 0 if every turn ended normally with audio, 1 if any did not, 2 if the run could not
start.

Safety: only loopback targets (127.0.0.0/8, ::1, localhost) are accepted, and concurrency, turns
and duration have hard caps; after the deadline no turn starts, and turns still running after a
bounded drain are cancelled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shlex
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the nexy package

from benchlib import running_server_process, write_section  # noqa: E402
from loadlib import (  # noqa: E402
    LoopLag,
    ProcessProbe,
    TurnResult,
    distribution_ms,
    fetch_active_turns,
    fetch_metrics,
    find_listener_pid,
    grpc_address,
    histogram_summary,
    metric_delta,
    parse_target,
    pause_windows,
    per_second_latency,
    render_chart,
    require_loopback,
    summarize_turns,
    timed_turn,
    turn_records,
)

from nexy.providers.tts.scripted import scripted_duration  # noqa: E402
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc  # noqa: E402

# Hard caps: whatever the flags say, a run cannot become a runaway.
CAP_CONCURRENCY = 2000
CAP_TURNS = 200_000
CAP_DURATION_S = 900.0
DRAIN_LIMIT_S = 30.0  # after the deadline, how long running turns may take to finish
TURN_DEADLINE_S = 60.0  # gRPC deadline of one turn

# Four sentences, ~150 characters: about 9 s of scripted audio, a typical spoken answer.
LONG_REPLY = (
    "It is mild and sunny today, about twenty degrees. "
    "A light breeze is coming from the west. "
    "Clouds may gather late in the evening. "
    "Tomorrow looks much the same."
)
# One sentence: the RSS mode wants many turns, not long ones.
SHORT_REPLY = "Sure, it is about twenty degrees outside."
PROMPT = "What is the weather like today?"


@dataclass(frozen=True, slots=True)
class Pacing:
    """The scripted providers' knobs for a spawned server."""

    reply: str
    llm_first_token_ms: float
    llm_chunks_per_second: float
    llm_chunk_chars: int
    tts_first_chunk_ms: float
    tts_realtime_factor: float

    def audio_seconds(self) -> float:
        # Approximate: the server splits the reply into segments roughly at sentence ends.
        sentences = [s for s in self.reply.replace("?", ".").replace("!", ".").split(".") if s]
        return sum(scripted_duration(s + ".") for s in sentences)


@dataclass(slots=True)
class Target:
    """Where the load goes, and what the samplers may look at."""

    host: str
    grpc_port: int
    http_port: int | None
    pid: int | None
    spawned: bool


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


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Bounded closed-loop load test of a Nexy server on loopback",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--spawn", action="store_true", help="start a server with scripted providers (default)"
    )
    where.add_argument("--target", help="HOST:PORT of a running server's gRPC (loopback only)")
    parser.add_argument("--http-port", type=int, help="the --target server's HTTP port")
    parser.add_argument("--pid", type=int, help="the --target server's pid, for RSS/CPU")
    parser.add_argument("--concurrency", type=int, default=50, help="closed-loop clients")
    parser.add_argument(
        "--duration", type=float, help="seconds of load (default 30; 170 in --rss-turns mode)"
    )
    parser.add_argument("--max-turns", type=int, default=100_000, help="turns at most")
    parser.add_argument(
        "--rss-turns",
        type=int,
        help="RSS mode: run this many short turns; compare RSS after warm-up and at the end",
    )
    parser.add_argument("--warmup-turns", type=int, default=500, help="RSS mode warm-up")
    parser.add_argument(
        "--channels", type=int, default=0, help="gRPC connections (0: one per client)"
    )
    parser.add_argument(
        "--ramp",
        type=float,
        help="seconds over which clients start (default 5, about one turn, so the load is "
        "steady rather than in waves; 1 in --rss-turns mode)",
    )
    parser.add_argument(
        "--gap-limit-ms",
        type=float,
        default=150.0,
        help="count turns whose largest audio gap exceeds this (a wire chunk is <= 100 ms)",
    )
    parser.add_argument(
        "--prebuffer-ms",
        type=float,
        default=100.0,
        help="player jitter buffer for the stall measure (two 50 ms scripted-engine chunks)",
    )
    pacing = parser.add_argument_group("scripted providers (spawned server only)")
    pacing.add_argument("--reply", help="the LLM's reply text (default depends on the mode)")
    pacing.add_argument("--llm-first-token-ms", type=float, default=150.0, help="ms")
    pacing.add_argument("--llm-chunks-per-second", type=float, default=30.0, help="stream pace")
    pacing.add_argument("--llm-chunk-chars", type=int, default=6, help="characters per chunk")
    pacing.add_argument("--tts-first-chunk-ms", type=float, default=40.0, help="ms per sentence")
    pacing.add_argument(
        "--tts-realtime-factor", type=float, help="default 1.0; 0.05 in --rss-turns mode"
    )
    pacing.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NEXY_KEY=VALUE",
        help="extra setting for the spawned server (repeatable), e.g. NEXY_CONFIG=extra.yaml",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--json", type=Path, help="write every number and the per-second series")
    out.add_argument("--chart", type=Path, help="write a PNG of the run")
    out.add_argument("--write", type=Path, help="update the load_test section of this file")
    out.add_argument("--quiet", action="store_true", help="no per-second progress lines")
    args = parser.parse_args(argv)

    rss_mode = args.rss_turns is not None
    if args.duration is None:
        args.duration = 170.0 if rss_mode else 30.0
    if args.ramp is None:
        # Never longer than the run: a short smoke run should still use all its clients.
        args.ramp = min(1.0 if rss_mode else 5.0, args.duration / 2)
    if args.tts_realtime_factor is None:
        args.tts_realtime_factor = 0.05 if rss_mode else 1.0
    if args.reply is None:
        args.reply = SHORT_REPLY if rss_mode else LONG_REPLY
    if rss_mode:
        args.max_turns = args.rss_turns
    else:
        args.warmup_turns = 0  # RSS baseline is taken at the start instead
    problems = []
    if not 1 <= args.concurrency <= CAP_CONCURRENCY:
        problems.append(f"--concurrency must be 1..{CAP_CONCURRENCY}")
    if not 0 < args.duration <= CAP_DURATION_S:
        problems.append(f"--duration must be in (0, {CAP_DURATION_S:.0f}] s")
    if not 1 <= args.max_turns <= CAP_TURNS:
        problems.append(f"--max-turns / --rss-turns must be 1..{CAP_TURNS}")
    if rss_mode and not 0 <= args.warmup_turns < args.max_turns:
        problems.append("--warmup-turns must be smaller than --rss-turns")
    if not 0 <= args.ramp <= args.duration:
        problems.append("--ramp must be between 0 and --duration")
    if args.target is not None:
        try:
            parse_target(args.target)  # refuse a non-loopback target before anything starts
        except ValueError as exc:
            problems.append(str(exc))
    if args.channels < 0:
        problems.append("--channels must be >= 0")
    if args.target is None and (args.http_port or args.pid):
        problems.append("--http-port and --pid go with --target")
    if args.target is not None and args.server_env:
        problems.append("--server-env only applies to a spawned server")
    for item in args.server_env:
        key, sep, _ = item.partition("=")
        # Only server settings: this must not become a way to change the child's PATH and such.
        if not sep or not key.startswith("NEXY_"):
            problems.append(f"--server-env wants NEXY_KEY=VALUE, got {item!r}")
    if problems:
        parser.error("; ".join(problems))
    return args


def spawn_env(args: argparse.Namespace, pacing: Pacing) -> dict[str, str]:
    """Settings of the spawned server: scripted providers, limits out of the test's way."""
    return {
        "NEXY_LLM__PROVIDER": "scripted",
        "NEXY_TTS__PROVIDER": "scripted",
        "NEXY_LLM__SCRIPTED__REPLY": json.dumps({"text": pacing.reply}),
        "NEXY_LLM__SCRIPTED__FIRST_TOKEN_MS": str(pacing.llm_first_token_ms),
        "NEXY_LLM__SCRIPTED__TOKENS_PER_SECOND": str(pacing.llm_chunks_per_second),
        "NEXY_LLM__SCRIPTED__CHUNK_CHARS": str(pacing.llm_chunk_chars),
        "NEXY_TTS__SCRIPTED__FIRST_CHUNK_MS": str(pacing.tts_first_chunk_ms),
        "NEXY_TTS__SCRIPTED__REALTIME_FACTOR": str(pacing.tts_realtime_factor),
        # Local intents would answer some prompts without the LLM; every turn must take one path.
        "NEXY_LLM__INTENTS__ENABLED": "false",
        "NEXY_LOGGING__LEVEL": "WARNING",
        # The test measures the pipeline, not admission control: no limit may refuse its turns.
        "NEXY_LIMITS__MAX_CONCURRENT_TURNS": str(max(300, 2 * args.concurrency + 10)),
        "NEXY_LIMITS__MAX_TURNS_PER_DEVICE": "4",
        "NEXY_LIMITS__DEVICE_BURST": "100000",
        "NEXY_LIMITS__DEVICE_REQUESTS_PER_MINUTE": "1000000",
        "NEXY_LIMITS__IDLE_TIMEOUT_SECONDS": "300",
        # Experiments (e.g. another wire sample rate) override the defaults above.
        **dict(item.split("=", 1) for item in args.server_env),
    }


@asynccontextmanager
async def acquire_target(args: argparse.Namespace, pacing: Pacing) -> AsyncIterator[Target]:
    """A spawned server (default) or the checked ``--target``."""
    if args.target is None:
        async with running_server_process(spawn_env(args, pacing)) as server:
            yield Target("127.0.0.1", server.grpc_port, server.http_port, server.pid, True)
        return
    host, port = parse_target(args.target)
    pid = args.pid if args.pid is not None else find_listener_pid(port)
    yield Target(require_loopback(host), port, args.http_port, pid, False)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


async def client_loop(
    index: int,
    stub: pb_grpc.StreamingServiceStub,
    state: RunState,
    tag: str,
    args: argparse.Namespace,
) -> None:
    """One device: turns back to back until the deadline or the turn budget runs out."""
    hardware_id = f"LOAD-{tag}-{index:05d}"  # own id: per-device limits stay independent
    await asyncio.sleep(random.uniform(0, args.ramp))  # a stampede at t=0 is not the test
    while state.may_start():
        state.started += 1
        state.in_flight += 1
        try:
            result = await timed_turn(
                stub,
                PROMPT,
                hardware_id,
                client=index,
                run_start=state.run_start,
                deadline_s=TURN_DEADLINE_S,
                prebuffer=args.prebuffer_ms / 1000,
                gap_limit=args.gap_limit_ms / 1000,
            )
        finally:
            state.in_flight -= 1
        state.record(result)
        if result.status == "CANCELLED_BY_TEST":
            return
        if not result.ok:
            # A refusing server answers instantly; without a pause the loop would only spin.
            await asyncio.sleep(0.2)


async def drive(
    state: RunState, stubs: list[pb_grpc.StreamingServiceStub], tag: str, args: argparse.Namespace
) -> None:
    """All clients until the deadline or the turn budget, then a bounded drain."""
    clients = [
        asyncio.create_task(client_loop(i, stubs[i % len(stubs)], state, tag, args))
        for i in range(args.concurrency)
    ]
    limit = max(0.0, state.stop_at - time.perf_counter()) + DRAIN_LIMIT_S
    _, pending = await asyncio.wait(clients, timeout=limit)
    for task in pending:
        task.cancel()  # recorded as CANCELLED_BY_TEST by timed_turn
    await asyncio.gather(*pending, return_exceptions=True)


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


async def run_load(args: argparse.Namespace, target: Target) -> dict[str, Any]:
    """Warm up, drive the clients, drain, and gather every number."""
    address = grpc_address(target.host, target.grpc_port)
    n_channels = args.concurrency if args.channels == 0 else min(args.channels, args.concurrency)
    # A local subchannel pool per channel: otherwise grpc quietly shares one TCP connection
    # between identical channels, and the test would measure a single multiplexed link.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [grpc.aio.insecure_channel(address, options=options) for _ in range(n_channels)]
    stubs = [pb_grpc.StreamingServiceStub(ch) for ch in channels]
    probe = ProcessProbe(target.pid)
    base = f"http://{grpc_address(target.host, target.http_port or 0)}"
    timeout = aiohttp.ClientTimeout(total=5)
    lag = LoopLag()
    samples: list[Sample] = []
    tag = uuid.uuid4().hex[:8]
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            warm = await timed_turn(
                stubs[0],
                PROMPT,
                f"LOAD-{tag}-warm",
                client=-1,
                run_start=time.perf_counter(),
                deadline_s=TURN_DEADLINE_S,
                prebuffer=0.1,
                gap_limit=args.gap_limit_ms / 1000,
            )
            if not warm.ok:
                raise RuntimeError(f"warm-up turn failed: {warm.status} {warm.detail}")
            metrics_before = await fetch_metrics(http, base) if target.http_port else {}
            rss_start = probe.rss_mb()
            cpu_start = probe.cpu_seconds()
            run_start = time.perf_counter()
            state = RunState(
                run_start=run_start,
                stop_at=run_start + args.duration,
                max_turns=args.max_turns,
                warmup_turns=args.warmup_turns,
                probe=probe,
            )
            lag_task = asyncio.create_task(lag.run())
            monitor_task = asyncio.create_task(
                monitor(state, target, http, lag, samples, args.quiet)
            )
            # RSS mode runs the warm-up turns as a phase of their own and samples RSS at rest
            # after it, so that the baseline and the final reading are taken in the same state
            # (no turn in flight) and in-flight buffers do not pass for growth or for savings.
            budgets = [args.max_turns]
            if args.rss_turns is not None and args.warmup_turns:
                budgets = [args.warmup_turns, args.max_turns]
            elapsed = 0.0
            for budget in budgets:
                phase_start = time.perf_counter()
                state.max_turns = budget
                await drive(state, stubs, tag, args)
                elapsed += time.perf_counter() - phase_start
                if budget != budgets[-1]:
                    await asyncio.sleep(1.0)  # let the drained turns' memory be released
                    state.warm_rss_mb = probe.rss_mb()
                    state.warm_at_s = time.perf_counter() - run_start
            await asyncio.sleep(1.0)  # one more sample after the drain, for RSS at rest
            monitor_task.cancel()
            lag_task.cancel()
            await asyncio.gather(monitor_task, lag_task, return_exceptions=True)
            rss_end = probe.rss_mb()
            cpu_end = probe.cpu_seconds()
            metrics_after = await fetch_metrics(http, base) if target.http_port else {}
    finally:
        for channel in channels:
            await channel.close()
    return collect(
        args,
        target,
        state,
        samples,
        lag,
        elapsed,
        (rss_start, rss_end),
        (cpu_start, cpu_end),
        metrics_before,
        metrics_after,
    )


def collect(
    args: argparse.Namespace,
    target: Target,
    state: RunState,
    samples: list[Sample],
    lag: LoopLag,
    elapsed: float,
    rss_bounds: tuple[float | None, float | None],
    cpu_bounds: tuple[float | None, float | None],
    metrics_before: dict[str, float],
    metrics_after: dict[str, float],
) -> dict[str, Any]:
    """Everything the report, the JSON file and the chart are made of."""
    results = state.results
    rss_start, rss_end = rss_bounds
    seconds = len(samples)
    series: dict[str, list[Any]] = {
        name: [getattr(s, name) for s in samples] for name in Sample.__dataclass_fields__
    }
    series.update(per_second_latency(results, seconds))
    rss_values = [v for v in series["rss_mb"] if v is not None]
    delta = metric_delta(metrics_before, metrics_after)
    server = {
        "first_text": histogram_summary(delta, "nexy_time_to_first_text_seconds"),
        "first_audio": histogram_summary(delta, "nexy_time_to_first_audio_seconds"),
        "turn_duration": histogram_summary(delta, "nexy_turn_duration_seconds"),
        "llm_first_output": histogram_summary(
            delta, "nexy_provider_first_output_seconds", {"kind": "llm", "provider": "scripted"}
        ),
        "tts_first_output": histogram_summary(
            delta, "nexy_provider_first_output_seconds", {"kind": "tts", "provider": "scripted"}
        ),
        "counters": {
            k: v
            for k, v in delta.items()
            if v and k.startswith(("nexy_turns_total", "nexy_stream_errors", "nexy_rejections"))
        },
    }
    busy = [s for s in samples if s.in_flight > 0]

    def busy_mean(name: str) -> float | None:
        values = [getattr(s, name) for s in busy if getattr(s, name) is not None]
        return statistics.fmean(values) if values else None

    # Client-measured minus server-measured time to first audio: what a turn spent before the
    # server's handler admitted it (gRPC accept queue, connection, client) on average.
    client_first = [r.first_audio for r in results if r.ok and r.first_audio is not None]
    before_admission = (
        statistics.fmean(client_first) * 1000 - server["first_audio"]["mean_ms"]
        if client_first and server["first_audio"]
        else None
    )
    per_chunk_ms = cpu_per(cpu_bounds, sum(r.chunks for r in results))
    per_chunk_us = per_chunk_ms * 1000 if per_chunk_ms is not None else None
    summary = summarize_turns(results, args.gap_limit_ms / 1000)
    summary.update(
        {
            "elapsed_s": round(elapsed, 2),
            "turns_per_s": round(len(results) / elapsed, 2) if elapsed else None,
            "rss_mb": {
                "start": rss_start,
                "end": rss_end,
                "max": max(rss_values) if rss_values else None,
                "growth": (rss_end - rss_start) if rss_start and rss_end else None,
                "after_warmup": state.warm_rss_mb,
                "warmup_reached_at_s": state.warm_at_s,
                "growth_after_warmup": (rss_end - state.warm_rss_mb)
                if rss_end and state.warm_rss_mb
                else None,
                "slope_mb_per_10k_turns": rss_slope(samples, args.warmup_turns),
            },
            "cpu_percent_mean_while_busy": {
                "server": busy_mean("server_cpu"),
                "server_main_thread": busy_mean("server_main_thread_cpu"),
                "server_other_threads": busy_mean("server_other_threads_cpu"),
                "generator": busy_mean("client_cpu"),
            },
            "status_rtt_ms_while_busy": distribution_ms(
                [s.status_rtt_ms / 1000 for s in busy if s.status_rtt_ms is not None]
            ),
            "status_timeouts_while_busy": sum(
                1 for s in busy if target.http_port and s.status_rtt_ms is None
            ),
            "before_admission_mean_ms": before_admission,
            "server_cpu_per_turn_ms": cpu_per(cpu_bounds, len(results)),
            "server_cpu_per_audio_chunk_us": per_chunk_us,
            "pause_windows": pause_windows(results),
            "server_active_mean_while_busy": busy_mean("server_active"),
            "generator_loop_lag_ms": distribution_ms(lag.samples),
        }
    )
    return {
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "mode": "rss" if args.rss_turns is not None else "load",
        "machine": {
            # Other work on the machine steals the same two cores: keep it next to the numbers.
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "load_average_at_start": state.load_at_start,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "config": {
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "max_turns": args.max_turns,
            "warmup_turns": args.warmup_turns,
            "channels": args.channels or args.concurrency,
            "prebuffer_ms": args.prebuffer_ms,
            "gap_limit_ms": args.gap_limit_ms,
            "spawned": target.spawned,
            "pacing": asdict(pacing_of(args)) if target.spawned else None,
            "server_env": args.server_env,
            "expected_audio_s": pacing_of(args).audio_seconds() if target.spawned else None,
        },
        "summary": summary,
        "server_metrics": server,
        "series": series,
        "turns": turn_records(results),
    }


def cpu_per(bounds: tuple[float | None, float | None], count: int) -> float | None:
    """Server CPU milliseconds per unit of work over the run (drain included, warm-up not)."""
    start, end = bounds
    if start is None or end is None or not count:
        return None
    return (end - start) / count * 1000


def rss_slope(samples: list[Sample], warmup_turns: int) -> float | None:
    """Least-squares MB per 10,000 turns after warm-up: growth that a short run can extrapolate."""
    points = [(s.turns_done, s.rss_mb) for s in samples if s.rss_mb is not None]
    points = [(x, y) for x, y in points if x >= max(warmup_turns, 1)]
    if len(points) < 3 or points[-1][0] == points[0][0]:
        return None
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    variance = sum((x - mean_x) ** 2 for x, _ in points)
    return covariance / variance * 10_000 if variance else None


def pacing_of(args: argparse.Namespace) -> Pacing:
    return Pacing(
        reply=args.reply,
        llm_first_token_ms=args.llm_first_token_ms,
        llm_chunks_per_second=args.llm_chunks_per_second,
        llm_chunk_chars=args.llm_chunk_chars,
        tts_first_chunk_ms=args.tts_first_chunk_ms,
        tts_realtime_factor=args.tts_realtime_factor,
    )


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def report(data: dict[str, Any]) -> str:
    """The markdown written to the terminal and to the load_test section."""
    s, cfg, srv = data["summary"], data["config"], data["server_metrics"]
    rss = s["rss_mb"]
    # The wire limit is 100 ms per chunk, but the server forwards what the engine yields as it
    # comes (50 ms pieces from the scripted engine): the real chunk length sets the gap scale.
    chunk_ms = (
        s["audio_seconds_mean"] / s["chunks_mean"] * 1000
        if s["audio_seconds_mean"] and s["chunks_mean"]
        else None
    )

    def num(value: float | None, fmt: str = ".1f") -> str:
        return (
            "n/a"
            if value is None or (isinstance(value, float) and math.isnan(value))
            else (format(value, fmt))
        )

    def row(name: str, dist: dict[str, Any]) -> str:
        cells = " | ".join(num(dist[k]) for k in ("p50", "p95", "p99", "max"))
        return f"| {name} | {dist['n']} | {cells} |"

    mode = data["mode"]
    title = (
        f"### Load test: RSS over {s['turns']} turns, {cfg['concurrency']} concurrent clients"
        if mode == "rss"
        else f"### Load test: {cfg['concurrency']} concurrent clients, {cfg['duration_s']:.0f} s"
    )
    lines = [title, "", f"Command: `python server/scripts/{data['command']}`  "]
    machine = data["machine"]
    lines.append(
        f"Machine: {machine['cpus']} CPUs, Python {machine['python']}, load average "
        f"{machine['load_average_at_start'][0]:.2f} at start, "
        f"{machine['load_average_at_end'][0]:.2f} at end (1 min); load generator and server "
        "share the machine (loopback)."
    )
    if cfg["pacing"]:
        p = cfg["pacing"]
        lines += [
            "",
            f"Spawned server, scripted providers in real time: LLM first token "
            f"{p['llm_first_token_ms']:.0f} ms, {p['llm_chunks_per_second']:.0f} chunks/s of "
            f"{p['llm_chunk_chars']} characters; TTS first chunk {p['tts_first_chunk_ms']:.0f} ms, "
            f"real-time factor {p['tts_realtime_factor']:g}; reply of {len(p['reply'])} characters "
            f"≈ {cfg['expected_audio_s']:.1f} s of audio."
            + (
                f" Extra server settings: {', '.join(cfg['server_env'])}."
                if cfg["server_env"]
                else ""
            ),
        ]
    lines += [
        "",
        f"Turns: {s['turns']} ({s['ok']} OK) in {s['elapsed_s']:.1f} s = "
        f"{num(s['turns_per_s'], '.1f')} turns/s; outcomes: "
        + ", ".join(f"{k} {v}" for k, v in s["by_status"].items()),
        "",
        "| per turn (OK turns), ms | n | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|---|",
        row("time to first text", s["first_text_ms"]),
        row("time to first audio", s["first_audio_ms"]),
        row("largest gap between audio chunks", s["max_gap_ms"]),
        row(f"playback stall ({cfg['prebuffer_ms']:.0f} ms buffer)", s["stall_ms"]),
        row("whole turn", s["turn_total_ms"]),
        "",
        f"Turns with a gap over {cfg['gap_limit_ms']:.0f} ms: {s['turns_gap_over_limit']}; "
        f"turns with any playback stall: {s['turns_with_stall']}; "
        f"mean audio per turn {num(s['audio_seconds_mean'], '.2f')} s in "
        f"{num(s['chunks_mean'], '.0f')} chunks ({num(chunk_ms, '.0f')} ms of audio each).",
        "",
        f"Server RSS: start {num(rss['start'])} MB, end {num(rss['end'])} MB, max "
        f"{num(rss['max'])} MB, growth {num(rss['growth'], '+.1f')} MB.",
    ]
    if mode == "rss":
        lines.append(
            f"At rest after the warm-up ({cfg['warmup_turns']} turns, at "
            f"{num(rss['warmup_reached_at_s'])} s): {num(rss['after_warmup'])} MB; at rest at "
            f"the end: {num(rss['end'])} MB; growth over the remaining "
            f"{s['turns'] - cfg['warmup_turns']} turns: "
            f"{num(rss['growth_after_warmup'], '+.1f')} MB. Least-squares slope of RSS under "
            f"load after the warm-up: {num(rss['slope_mb_per_10k_turns'], '+.1f')} MB per "
            "10,000 turns."
        )
    cpu, lag = s["cpu_percent_mean_while_busy"], s["generator_loop_lag_ms"]
    rtt = s["status_rtt_ms_while_busy"]
    lines += [
        "",
        f"Server CPU per turn {num(s['server_cpu_per_turn_ms'], '.1f')} ms, per audio chunk "
        f"received {num(s['server_cpu_per_audio_chunk_us'], '.0f')} µs. "
        f"CPU while busy (mean, % of one core): server {num(cpu['server'], '.0f')} (event-loop "
        f"thread {num(cpu['server_main_thread'], '.0f')}, other threads "
        f"{num(cpu['server_other_threads'], '.0f')}), load generator "
        f"{num(cpu['generator'], '.0f')}. Generator event-loop lag p99 {num(lag['p99'])} ms, max "
        f"{num(lag['max'])} ms (client-side delay that would inflate the measured gaps).",
        "",
        f"Server responsiveness while busy: /status round trip p50 {num(rtt['p50'])} ms, p95 "
        f"{num(rtt['p95'])} ms, max {num(rtt['max'])} ms ({s['status_timeouts_while_busy']} "
        f"over 900 ms); turns active in the server (mean of /status) "
        f"{num(s['server_active_mean_while_busy'], '.0f')} of {cfg['concurrency']} in flight; "
        f"mean wait before admission (client first audio − server first audio) "
        f"{num(s['before_admission_mean_ms'], '.0f')} ms.",
    ]
    if s["pause_windows"]:
        moments = "; ".join(
            f"t={w['t']:.2f} s: {w['streams']} streams, median {w['median_gap_ms']:.0f} ms"
            for w in s["pause_windows"]
        )
        lines += [
            "",
            f"Moments when most streams had a gap over {cfg['gap_limit_ms']:.0f} ms end in the "
            f"same 250 ms (a pause of the whole server, not of one stream): {moments}.",
        ]
    if srv["first_audio"]:

        def hist(name: str, h: dict[str, float]) -> str:
            # Means only: the server's buckets are too coarse (0.4 / 0.8 s) for useful quantiles.
            if not h:
                return f"| {name} | n/a | n/a |"
            return f"| {name} | {h['count']:.0f} | {h['mean_ms']:.1f} |"

        lines += [
            "",
            "Server's own view (/metrics histograms, this run only):",
            "",
            "| server-side | n | mean ms |",
            "|---|---|---|",
            hist("admission → first text sent", srv["first_text"]),
            hist("admission → first audio sent", srv["first_audio"]),
            hist("admission → end of turn", srv["turn_duration"]),
            hist("LLM provider first output", srv["llm_first_output"]),
            hist("TTS provider first output", srv["tts_first_output"]),
        ]
        if srv["counters"]:
            counters = ", ".join(f"{k} {v:.0f}" for k, v in srv["counters"].items())
            lines += ["", f"Counters: {counters}"]
    return "\n".join(lines)


def finite(value: Any) -> Any:
    """NaN and infinities become null: strict JSON readers reject them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    async def run() -> dict[str, Any]:
        async with acquire_target(args, pacing_of(args)) as target:
            if not args.quiet:
                where = "spawned" if target.spawned else "target"
                print(
                    f"{where} server grpc={target.host}:{target.grpc_port} "
                    f"http={target.http_port} pid={target.pid}; concurrency={args.concurrency} "
                    f"duration={args.duration:g}s max_turns={args.max_turns}",
                    flush=True,
                )
            return await run_load(args, target)

    try:
        data = asyncio.run(run())
    except RuntimeError as exc:  # the server did not start, or the warm-up turn failed
        print(f"load_test: {exc}", file=sys.stderr)
        return 2
    text = report(data)
    print()
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(finite(data), indent=1, allow_nan=False, default=str) + "\n"
        )
    if args.chart:
        title = text.splitlines()[0].removeprefix("### ")
        late = [(w, g) for turn in data["turns"] for w, g in turn.get("late_gaps", [])]
        render_chart(data["series"], args.chart, title, args.gap_limit_ms, late)
    if args.write:
        # Two sections, so that the RSS check does not overwrite the latency run (or vice versa).
        section = "load_test" if data["mode"] == "load" else "load_test_rss"
        write_section(args.write, text, name=section)
    failed = data["summary"]["turns"] - data["summary"]["ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
