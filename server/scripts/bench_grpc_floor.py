#!/usr/bin/env python3
"""Benchmark: what one streamed audio message costs in gRPC itself, with no pipeline at all.

    python server/scripts/bench_grpc_floor.py [--streams 300] [--messages 100] \\
        [--interval-ms 50] [--message-bytes 9600] [--write docs/BENCHMARKS.md]

A bare ``grpc.aio`` server (a child process) implements ``StreamAudio`` by writing the same
pre-built audio message (``--message-bytes``, by default 9,600 bytes: a 100 ms wire chunk at
48 kHz) every ``--interval-ms``; this process reads ``--streams`` such streams at once through
one ``grpc.aio`` channel. Both processes' CPU time is read around the run and divided by the
messages delivered. A second run with the same streams and sleeps but no writes gives the cost
of the sleeping alone, so the difference is the price of a message on each side: the floor
under any Python gRPC server's per-chunk cost, and what a load generator on the same machine
takes from the server. The measurement lives in ``loadtest/floor.py``, which
``load_test.py --floor`` runs too; this script is its command line and the child server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)
import grpc
from benchlib import exit_code, write_section
from loadtest.floor import (
    CAP_MESSAGES,
    CAP_STREAMS,
    MAX_BYTES,
    MIN_BYTES,
    WIRE_BYTES,
    Run,
    measure,
    message_seconds,
    net_cost,
    serve,
)


def report(args: argparse.Namespace, writes: Run, sleeps: Run) -> str:
    net = net_cost(writes, sleeps)
    rate = (writes.messages or 1) / writes.seconds
    size = args.message_bytes
    sized = "" if size == WIRE_BYTES else f" --message-bytes {size}"
    return "\n".join(
        [
            f"### gRPC floor: {args.streams} streams × {args.messages} messages of {size:,} bytes",
            "",
            f"Command: `python server/scripts/bench_grpc_floor.py --streams {args.streams} "
            f"--messages {args.messages} --interval-ms {args.interval_ms:g}{sized}`  ",
            f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"grpcio {grpc.__version__}; server and reader share the machine (loopback).",
            "",
            f"| per {message_seconds(size) * 1000:g} ms audio message | CPU µs |",
            "|---|---|",
            f"| bare `grpc.aio` server, `context.write` | {net.server_us:.0f} |",
            f"| `grpc.aio` reader (a load generator's floor) | {net.reader_us:.0f} |",
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
    parser.add_argument(
        "--message-bytes",
        type=int,
        default=WIRE_BYTES,
        help="bytes of audio per message (even; 9600 = 100 ms at 48 kHz)",
    )
    parser.add_argument("--write", type=Path, help="put the report into this Markdown file")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the child server's port
    parser.add_argument("--no-write", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    interval = args.interval_ms / 1000
    if args.serve is not None:
        asyncio.run(
            serve(args.serve, args.messages, interval, not args.no_write, args.message_bytes)
        )
        return 0
    if not (1 <= args.streams <= CAP_STREAMS and 1 <= args.messages <= CAP_MESSAGES):
        parser.error(f"--streams must be 1..{CAP_STREAMS} and --messages 1..{CAP_MESSAGES}")
    if not (MIN_BYTES <= args.message_bytes <= MAX_BYTES and args.message_bytes % 2 == 0):
        parser.error(f"--message-bytes must be even and {MIN_BYTES:,}..{MAX_BYTES:,}")
    writes = measure(args.streams, args.messages, interval, True, args.message_bytes)
    sleeps = measure(args.streams, args.messages, interval, False, args.message_bytes)
    text = report(args, writes, sleeps)
    print(text)
    if args.write is not None:
        write_section(args.write, text, "bench_grpc_floor")
    # Every stream must deliver every message; fewer means streams broke off early.
    expected = args.streams * args.messages
    return exit_code(expected - writes.messages, expected, "audio messages")


if __name__ == "__main__":
    sys.exit(main())
