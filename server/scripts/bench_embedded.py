#!/usr/bin/env python3
"""Benchmark the embedded defaults: local LLM + intents, Piper/eSpeak speech, no network.

    python server/scripts/bench_embedded.py [--rounds 10] [--write docs/BENCHMARKS.md]

Starts `nexy-server serve` with no configuration (exactly what `make run` serves) on loopback and
prints: time to the first audio byte for a question the model answers and for a local intent
("Open Safari", with its action), the greeting's first chunk (cold: a text never synthesized
before; cached: the default greeting), and whether 10 concurrent turns all complete.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)
import grpc
from benchlib import Turn, exit_code, run_turn, running_server, turn_failed, write_section

from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc


async def welcome_first_chunk(
    stub: pb_grpc.StreamingServiceStub, text: str, language: str = ""
) -> float:
    started = time.perf_counter()
    request = pb.WelcomeRequest(text=text, language=language)
    async for response in stub.GenerateWelcomeAudio(request, timeout=30):
        if response.HasField("audio_chunk"):
            return time.perf_counter() - started
    raise RuntimeError("welcome audio had no audio chunk")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


async def measure(rounds: int) -> tuple[str, list[Turn]]:
    """The report, and every turn it timed (the greetings raise when they fail)."""
    server = running_server({}, ready_timeout=120)
    async with server as port, grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.StreamingServiceStub(channel)
        hello = [await run_turn(stub, "Hello, who are you?") for _ in range(rounds)]
        safari = [await run_turn(stub, "Open Safari") for _ in range(rounds)]
        cold = [await welcome_first_chunk(stub, f"Welcome back, number {i}!") for i in range(5)]
        cached = [await welcome_first_chunk(stub, "") for _ in range(rounds)]
        # The default greeting under another cache key ("en-US"): its full cold synthesis.
        full = [await welcome_first_chunk(stub, "", f"en-US-{i}") for i in range(3)]
        questions = [f"Tell me a fact about the number {i}." for i in range(10)]
        started = time.perf_counter()
        concurrent = await asyncio.gather(*(run_turn(stub, q) for q in questions))
        wall = time.perf_counter() - started
    text = report(hello, safari, cold, cached, full, concurrent, wall)
    return text, [*hello, *safari, *concurrent]


def report(
    hello: list[Turn],
    safari: list[Turn],
    cold: list[float],
    cached: list[float],
    full: list[float],
    concurrent: list[Turn],
    wall: float,
) -> str:
    def median_first(turns: list[Turn]) -> float:
        return statistics.median(t.first_audio or float("inf") for t in turns)

    ok = sum(not turn_failed(t) for t in concurrent)
    return "\n".join(
        [
            "| measure | median ms | runs | note |",
            "|---|---|---|---|",
            f'| "Hello, who are you?" → first audio byte | {ms(median_first(hello))} '
            f'| {len(hello)} | reply: "{hello[0].text.strip()}" |',
            f'| "Open Safari" → first audio byte | {ms(median_first(safari))} | {len(safari)} '
            f'| action: `{safari[0].action}`; said: "{safari[0].text.strip()}" |',
            f"| greeting first chunk, cold (new text) | {ms(statistics.median(cold))} "
            f"| {len(cold)} | synthesized in full first (metadata carries the real duration) |",
            f"| greeting first chunk, cached | {ms(statistics.median(cached))} | {len(cached)} "
            "| the default greeting is synthesized at start-up |",
            f"| default greeting (3.6 s of speech) synthesized cold | "
            f"{ms(statistics.median(full))} | {len(full)} | what start-up pays once |",
            f"| 10 concurrent turns | {ms(wall)} (wall) | 10 | {ok}/10 ended with "
            "`end_message` and audio |",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Nexy embedded-defaults benchmark")
    parser.add_argument("--rounds", type=int, default=10, help="runs per median")
    parser.add_argument(
        "--write", type=Path, help="replace the bench_embedded section of this file"
    )
    args = parser.parse_args()
    text, turns = asyncio.run(measure(args.rounds))
    print(text)
    if args.write:
        write_section(args.write, text, name="bench_embedded")
    return exit_code(sum(map(turn_failed, turns)), len(turns))


if __name__ == "__main__":
    sys.exit(main())
