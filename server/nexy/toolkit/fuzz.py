"""``fuzz_smoke.py``: thousands of hostile requests, a server that must stay correct and alive.

Seeded cases from :mod:`nexy.toolkit.fuzz_families` run with bounded concurrency as raw bytes
through generic calls; every answer is classified (:mod:`nexy.toolkit.fuzz_report`). Meanwhile
a watcher polls ``/health`` (and the pid) and a canary turn measures time to first audio
before, during and after the fuzz; at the end RSS and the outbox metrics are read.

The canary is a normal user beside an abusive one, so it connects from another source address
(127.0.0.2, through :class:`nexy.toolkit.source_relay.SourceRelay`): the server's per-address
cap (``limits.max_turns_per_address``) keeps the fuzzer from taking every turn slot, as it keeps
one abusive network from starving the others in production. Against a server whose per-address
cap is not below its global limit the fuzz can still fill every slot and the canary is refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from nexy.toolkit.calls import QUICK_PROMPT, commit, run_turn, stub_for
from nexy.toolkit.connection import Target
from nexy.toolkit.fuzz_cases import INTERRUPT, STREAM_AUDIO, USAGE, WELCOME, Call, Case
from nexy.toolkit.fuzz_families import generate
from nexy.toolkit.fuzz_report import BAD, Canaries, Outcome, Tally, classify, mib
from nexy.toolkit.fuzz_watch import Outbox, Watch, outbox_state, rss_kib
from nexy.toolkit.source_relay import SourceRelay, relay_possible
from nexy.transport.grpc import streaming_pb2 as pb

SERVICE = "/streaming.StreamingService/"
RESPONSES: dict[str, Any] = {
    STREAM_AUDIO: pb.StreamResponse,
    WELCOME: pb.WelcomeResponse,
    INTERRUPT: pb.InterruptResponse,
    USAGE: pb.UsageResponse,
}
CHANNELS = 4
# Channels to one target share a TCP connection unless told otherwise; the canary must not ride
# on the fuzz's connection (per-connection caps would count it with the hostile calls).
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)
CANARIES_AROUND = 3  # canary turns before and after the fuzz
CANARY_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class FuzzOptions:
    requests: int = 5000
    concurrency: int = 16
    max_seconds: float = 600.0
    seed: int = 1
    call_timeout: float = 20.0
    canary_every: float = 2.0
    settle_seconds: float = 30.0
    max_prompt: int = 8000
    pid: int | None = None
    canary_source: str | None = "127.0.0.2"  # None: the canary shares the fuzz's address


@dataclass
class FuzzResult:
    tally: Tally
    canaries: Canaries
    deaths: int
    rss_before_kib: int | None
    rss_after_kib: int | None
    outbox: Outbox
    seconds: float
    canary_from: str = "the fuzz's own address"

    @property
    def failures(self) -> list[str]:
        """Why the run failed (empty: it passed)."""
        found = []
        if self.tally.count(BAD):
            found.append(f"{self.tally.count(BAD)} bad answers")
        if self.deaths:
            found.append("the server died")
        if self.outbox.stuck:
            found.append(f"{self.outbox.stuck:.0f} rows stuck in the outbox")
        for phase in ("during", "after"):
            if self.canaries.served(phase) < self.canaries.total(phase):
                found.append(f"normal turns not served {phase} the fuzz")
        return found

    def lines(self) -> list[str]:
        rate = self.tally.requests / self.seconds if self.seconds else 0.0
        head = f"{self.tally.requests} requests in {self.seconds:.0f} s ({rate:.0f}/s)"
        return [
            head,
            *self.tally.table(),
            f"canary from {self.canary_from}",
            *(self.canaries.line(phase) for phase in ("before", "during", "after")),
            f"process deaths: {self.deaths}",
            f"RSS before {mib(self.rss_before_kib)}, after {mib(self.rss_after_kib)}",
            self.outbox.line(),
        ]


async def _read(call: Any, cancel_at: float | None) -> tuple[list[bytes], bool]:
    """The raw messages of a stream; True when the tool cancelled it at ``cancel_at``."""
    loop = asyncio.get_running_loop()
    messages: list[bytes] = []
    while True:
        wait = None if cancel_at is None else cancel_at - loop.time()
        try:
            if wait is not None and wait <= 0:
                raise TimeoutError
            message = await asyncio.wait_for(call.read(), wait)
        except TimeoutError:
            call.cancel()
            return messages, True
        except grpc.aio.AioRpcError:
            return messages, False
        if message is grpc.aio.EOF:
            return messages, False
        messages.append(message)


def _describe(outcome: Outcome, raw: list[bytes]) -> None:
    """Decode the answers into the outcome: their kinds and their user-facing texts."""
    kind_of = RESPONSES[outcome.rpc]
    for data in raw:
        try:
            message = kind_of.FromString(data)
        except DecodeError:
            outcome.undecodable = True
            continue
        if outcome.rpc in (INTERRUPT, USAGE):
            outcome.texts.append(message.message)
            continue
        kind = message.WhichOneof("content") or ""
        outcome.kinds.append(kind)
        if kind in ("end_message", "error_message"):
            outcome.texts.append(getattr(message, kind))


async def run_call(channel: grpc.aio.Channel, call: Call, deadline_s: float) -> Outcome:
    """Send one raw request and collect what came back."""
    outcome = Outcome(call.rpc, "OK")
    method = SERVICE + call.rpc
    raw: list[bytes] = []
    try:
        if call.rpc in (INTERRUPT, USAGE):
            raw = [await channel.unary_unary(method)(call.payload, timeout=deadline_s)]
        else:
            started = asyncio.get_running_loop().time()
            cancel_at = None if call.cancel_after_s is None else started + call.cancel_after_s
            stream = channel.unary_stream(method)(call.payload, timeout=deadline_s)
            raw, outcome.cancelled_by_tool = await _read(stream, cancel_at)
            code = await stream.code()
            outcome.code, outcome.details = code.name, await stream.details() or ""
    except grpc.aio.AioRpcError as exc:
        outcome.code, outcome.details = exc.code().name, exc.details() or ""
    _describe(outcome, raw)
    return outcome


async def _run_case(channel: grpc.aio.Channel, case: Case, tally: Tally, deadline_s: float) -> None:
    async def one(call: Call) -> None:
        outcome = await run_call(channel, call, deadline_s)
        verdict, reason = classify(outcome, call.must_refuse, frozenset())
        tally.add(case.family, outcome, verdict, reason)

    if case.parallel:
        await asyncio.gather(*(one(call) for call in case.calls))
    else:
        for call in case.calls:
            await one(call)


async def _fuzz(where: Target, options: FuzzOptions, tally: Tally, stop: asyncio.Event) -> None:
    """Workers draw cases until the request budget, the time limit or a death stops them."""
    channels = [where.channel(OWN_CONNECTION) for _ in range(CHANNELS)]
    cases: Iterator[Case] = generate(options.seed, options.max_prompt)
    planned = 0  # calls handed to workers so far: the budget counts requests, not cases
    deadline = time.monotonic() + options.max_seconds

    async def worker(index: int) -> None:
        nonlocal planned
        channel = channels[index % CHANNELS]
        while not stop.is_set() and time.monotonic() < deadline and planned < options.requests:
            case = next(cases)
            planned += len(case.calls)
            await _run_case(channel, case, tally, options.call_timeout)

    try:
        await asyncio.gather(*(worker(i) for i in range(options.concurrency)))
    finally:
        for channel in channels:
            await channel.close()


async def _canary(where: Target, canaries: Canaries, phase: str, deadline_s: float) -> None:
    channel = where.channel(OWN_CONNECTION)
    try:
        stub = stub_for(channel)
        result = await run_turn(stub, commit(QUICK_PROMPT), deadline_s)
        if result.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            # "Server full, retry shortly" is allowed once, as a client would; twice is a miss.
            canaries.retries[phase] += 1
            await asyncio.sleep(CANARY_RETRY_S)
            result = await run_turn(stub, commit(QUICK_PROMPT), deadline_s)
    finally:
        await channel.close()
    served = result.ended and result.first_audio_s is not None
    canaries.add(phase, result.first_audio_s if served else None, result.status())


async def _canaries_during(
    where: Target, options: FuzzOptions, canaries: Canaries, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        await _canary(where, canaries, "during", options.call_timeout)
        try:
            await asyncio.wait_for(stop.wait(), options.canary_every)
        except TimeoutError:
            continue


async def run_fuzz(grpc_target: Target, http: Target, options: FuzzOptions) -> FuzzResult:
    """The canary's relay around :func:`_run` (when its source address can reach the server)."""
    source = options.canary_source
    if source is None or not relay_possible(grpc_target.host, source):
        return await _run(grpc_target, grpc_target, http, options)
    relay = SourceRelay(grpc_target, source)
    try:
        result = await _run(grpc_target, await relay.target(), http, options)
    finally:
        await relay.close()
    result.canary_from = f"{source} (own address, through a relay)"
    return result


async def _run(
    grpc_target: Target, canary: Target, http: Target, options: FuzzOptions
) -> FuzzResult:
    """The whole run: canaries before, fuzz with watcher and canaries, then the aftermath."""
    started = time.monotonic()
    tally, canaries = Tally(), Canaries()
    watch = Watch(http, options.pid)
    for _ in range(CANARIES_AROUND):
        await _canary(canary, canaries, "before", options.call_timeout)
    rss_before = rss_kib(options.pid)
    stop = asyncio.Event()
    background = [
        asyncio.create_task(watch.run(stop)),
        asyncio.create_task(_canaries_during(canary, options, canaries, stop)),
    ]
    fuzz = asyncio.create_task(_fuzz(grpc_target, options, tally, watch.dead))
    try:
        await fuzz
    finally:
        stop.set()
        await asyncio.gather(*background)
    if not await watch.check():  # a death in the last second before the fuzz ended
        watch.deaths = 1
    outbox = Outbox()
    if not watch.deaths:
        outbox = await outbox_state(http, options.settle_seconds)
        for _ in range(CANARIES_AROUND):
            await _canary(canary, canaries, "after", options.call_timeout)
    return FuzzResult(
        tally,
        canaries,
        watch.deaths,
        rss_before,
        rss_kib(options.pid),
        outbox,
        time.monotonic() - started,
    )
