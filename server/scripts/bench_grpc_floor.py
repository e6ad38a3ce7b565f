#!/usr/bin/env python3
"""Benchmark: what one streamed audio message costs in gRPC itself, with no pipeline at all.

    python server/scripts/bench_grpc_floor.py [--streams 300] [--messages 100] \\
        [--interval-ms 50] [--write docs/BENCHMARKS.md]

A bare ``grpc.aio`` server (a child process) implements ``StreamAudio`` by writing the same
pre-built 100 ms audio message (9,600 bytes, exactly what a turn sends) every ``--interval-ms``;
this process reads ``--streams`` such streams at once through one ``grpc.aio`` channel. Both
processes' CPU time is read around the run and divided by the messages delivered. A second run
with the same streams and sleeps but no writes gives the cost of the sleeping alone, so the
difference is the price of a message on each side: the floor under any Python gRPC server's
per-chunk cost, and what a load generator on the same machine takes from the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)
import grpc
import psutil
from benchlib import exit_code, free_port, write_section

from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc

SAMPLES = 4800  # 100 ms at 48 kHz: one full wire chunk
MESSAGE = pb.StreamResponse(
    audio_chunk=pb.AudioChunk(
        audio_data=b"\x01\x02" * SAMPLES,
        dtype="int16",
        shape=[SAMPLES],
        sample_rate=48000,
        channels=1,
    )
)


class _FloorServicer(pb_grpc.StreamingServiceServicer):
    def __init__(self, messages: int, interval: float, write: bool) -> None:
        self._messages, self._interval, self._write = messages, interval, write

    async def StreamAudio(  # noqa: N802 - the generated base class fixes the name
        self, request: pb.StreamRequest, context: grpc.aio.ServicerContext
    ) -> None:
        for _ in range(self._messages):
            if self._write:
                await context.write(MESSAGE)
            await asyncio.sleep(self._interval)
        await context.write(pb.StreamResponse(end_message="done"))


async def _serve(port: int, messages: int, interval: float, write: bool) -> None:
    server = grpc.aio.server()
    pb_grpc.add_StreamingServiceServicer_to_server(
        _FloorServicer(messages, interval, write), server
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


async def _read_streams(port: int, streams: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.StreamingServiceStub(channel)
        request = pb.StreamRequest(prompt="floor", hardware_id="bench-floor", session_id="s")

        async def one() -> int:
            # HasField: a message-typed field reads as truthy even when unset (the end message).
            stream = stub.StreamAudio(request)
            return sum([1 async for response in stream if response.HasField("audio_chunk")])

        return sum(await asyncio.gather(*(one() for _ in range(streams))))


@dataclass(frozen=True)
class Run:
    messages: int
    seconds: float
    server_cpu: float
    client_cpu: float


def measure(streams: int, messages: int, interval: float, write: bool) -> Run:
    """One run against a fresh child server; CPU seconds of each side for the whole run."""
    port = free_port()
    command = [sys.executable, __file__, "--serve", str(port), "--messages", str(messages)]
    command += ["--interval-ms", str(interval * 1000)] + ([] if write else ["--no-write"])
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("the floor server did not start")
        server = psutil.Process(child.pid)
        server_before, client_before = server.cpu_times(), time.process_time()
        began = time.perf_counter()
        delivered = asyncio.run(_read_streams(port, streams))
        seconds = time.perf_counter() - began
        server_after, client_after = server.cpu_times(), time.process_time()
    finally:
        child.kill()
        child.wait()
    server_cpu = (server_after.user + server_after.system) - (
        server_before.user + server_before.system
    )
    return Run(delivered, seconds, server_cpu, client_after - client_before)


def report(args: argparse.Namespace, writes: Run, sleeps: Run) -> str:
    sent = writes.messages or 1
    server_us = (writes.server_cpu - sleeps.server_cpu) / sent * 1e6
    client_us = (writes.client_cpu - sleeps.client_cpu) / sent * 1e6
    rate = sent / writes.seconds
    return "\n".join(
        [
            f"### gRPC floor: {args.streams} streams × {args.messages} messages of 9,600 bytes",
            "",
            f"Command: `python server/scripts/bench_grpc_floor.py --streams {args.streams} "
            f"--messages {args.messages} --interval-ms {args.interval_ms:g}`  ",
            f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"grpcio {grpc.__version__}; server and reader share the machine (loopback).",
            "",
            "| per 100 ms audio message | CPU µs |",
            "|---|---|",
            f"| bare `grpc.aio` server, `context.write` | {server_us:.0f} |",
            f"| `grpc.aio` reader (a load generator's floor) | {client_us:.0f} |",
            "",
            f"{writes.messages} messages in {writes.seconds:.1f} s ({rate:.0f}/s); the same run "
            f"without writes cost the server {sleeps.server_cpu:.2f} s and the reader "
            f"{sleeps.client_cpu:.2f} s of CPU, which is subtracted above.",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--messages", type=int, default=100, help="per stream")
    parser.add_argument("--interval-ms", type=float, default=50.0, help="between writes")
    parser.add_argument("--write", type=Path, help="put the report into this Markdown file")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child server's port
    parser.add_argument("--no-write", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    interval = args.interval_ms / 1000
    if args.serve is not None:
        asyncio.run(_serve(args.serve, args.messages, interval, not args.no_write))
        return 0
    if not (1 <= args.streams <= 2000 and 1 <= args.messages <= 10000):
        parser.error("--streams must be 1..2000 and --messages 1..10000")
    writes = measure(args.streams, args.messages, interval, write=True)
    sleeps = measure(args.streams, args.messages, interval, write=False)
    text = report(args, writes, sleeps)
    print(text)
    if args.write is not None:
        write_section(args.write, text, "bench_grpc_floor")
    # Every stream must deliver every message; fewer means streams broke off early.
    expected = args.streams * args.messages
    return exit_code(expected - writes.messages, expected, "audio messages")


if __name__ == "__main__":
    sys.exit(main())
