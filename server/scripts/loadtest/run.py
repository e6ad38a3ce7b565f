"""The run itself: closed-loop clients, their bounded drain, and the warm-up / RSS phases."""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from typing import Any

import aiohttp
import grpc

from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc

from .monitor import RunState, Sample, monitor
from .results import collect
from .samplers import LoopLag, ProcessProbe, fetch_metrics
from .target import Target, grpc_address
from .turns import REFUSED, TurnResult, timed_turn

# Time bounds of a run (cli.py caps concurrency, turns and duration on the command line).
DRAIN_LIMIT_S = 30.0  # after the deadline, how long running turns may take to finish
TURN_DEADLINE_S = 60.0  # gRPC deadline of one turn

PROMPT = "What is the weather like today?"


async def client_loop(
    index: int,
    stub: pb_grpc.StreamingServiceStub,
    state: RunState,
    tag: str,
    args: argparse.Namespace,
) -> None:
    """One device until the deadline or the turn budget runs out: a listener asks again once
    its answer has been played (``--back-to-back``: as soon as the turn's stream ends)."""
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
        if result.ok and not args.back_to_back:
            await asyncio.sleep(listening_left(result, args.prebuffer_ms / 1000))
        elif result.status == REFUSED:
            # Told to retry shortly, as a person would: jittered, so refusals do not come in waves.
            await asyncio.sleep(random.uniform(0.5, 1.5) * args.retry_pause)
        elif not result.ok:
            # A failing server answers instantly; without a pause the loop would only spin.
            await asyncio.sleep(0.2)


def listening_left(result: TurnResult, prebuffer: float) -> float:
    """Seconds from the end of a turn's stream until its listener has heard all of it.

    The server streams faster than real time (sentences synthesize side by side), so a turn's
    stream ends long before its audio has been played: a person asks the next question only
    then. Playback starts ``prebuffer`` after the first chunk and lasts the audio plus any
    stall.
    """
    if result.first_audio is None:
        return 0.0
    heard_at = result.first_audio + prebuffer + result.audio_seconds + result.stall
    return max(0.0, heard_at - result.total)


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
            generator_start = time.process_time()  # this process, every thread (gRPC's too)
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
            generator_cpu = time.process_time() - generator_start
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
        generator_cpu,
        metrics_before,
        metrics_after,
    )
