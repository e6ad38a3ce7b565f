#!/usr/bin/env python3
"""Benchmark: CPU the turn pipeline spends per audio chunk, without gRPC, storage or a client.

    python server/scripts/bench_pipeline.py [--turns-at-once 60] [--seconds 15] \\
        [--tts-realtime-factor 1.0] [--write docs/BENCHMARKS.md]

``--turns-at-once`` turns run back to back through ``TurnRunner`` in this process, with the same
scripted providers as ``load_test.py`` (LLM first token 150 ms, 30 chunks/s of 6 characters; TTS
first chunk 40 ms, then audio at the given real-time factor), and a consumer that only counts
the events. Process CPU time divided by the chunks produced is the pipeline's own cost: LLM
stream, extraction, segmentation, synthesis through the provider chain, resampling 22.05 → 48
kHz, wire chunking and the queues between the stages. Compare it with ``load_test.py``'s CPU per
chunk to see what the transport and storage add, and with ``--tts-realtime-factor 0`` to see what
pacing (a wake-up of every stage per engine piece) costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)
from benchlib import exit_code, write_section

from nexy.components import Component
from nexy.config import Settings
from nexy.events import AudioChunk, TurnEnd, TurnError, TurnEvent
from nexy.providers.factory import build_llm_chain, build_tts
from nexy.turn.actions import ActionPolicy
from nexy.turn.prompt import system_prompt
from nexy.turn.runner import TurnRequest, TurnRunner

REPLY = (
    "Sure. Here is a longer answer that keeps going for a while, so the stream has plenty of "
    "audio. It has several sentences. Each one is spoken in turn. That is the end."
)


async def measure(turns_at_once: int, seconds: float, factor: float) -> tuple[int, int, float, int]:
    """(turns, chunks, CPU seconds, failed turns) for ``turns_at_once`` closed-loop runners."""
    settings = Settings(
        llm={
            "provider": "scripted",
            "scripted": {
                "reply": json.dumps({"text": REPLY}),
                "first_token_ms": 150,
                "tokens_per_second": 30,
                "chunk_chars": 6,
            },
            "intents": {"enabled": False},
        },
        tts={"provider": "scripted", "scripted": {"first_chunk_ms": 40, "realtime_factor": factor}},
    )
    llm, tts = build_llm_chain(settings), build_tts(settings)
    for provider in (llm, tts):
        if isinstance(provider, Component):
            await provider.start()
    runner = TurnRunner(
        llm=llm,
        tts=tts,
        policy=ActionPolicy(settings.actions),
        system_prompt=system_prompt(settings.actions.groups, settings.llm.system_prompt),
        turn=settings.turn,
        tts_settings=settings.tts,
    )
    deadline = time.monotonic() + seconds
    counts = {"turns": 0, "chunks": 0, "failed": 0}

    async def listener(index: int) -> None:
        while time.monotonic() < deadline:
            out: asyncio.Queue[TurnEvent] = asyncio.Queue(16)
            request = TurnRequest(f"bench-{index}", f"s-{index}-{counts['turns']}", "hello")
            turn = asyncio.create_task(runner.run(request, out))
            while not isinstance(event := await out.get(), TurnEnd | TurnError):
                counts["chunks"] += isinstance(event, AudioChunk)
            await turn
            counts["turns"] += 1
            counts["failed"] += isinstance(event, TurnError)

    began = time.process_time()
    await asyncio.gather(*(listener(i) for i in range(turns_at_once)))
    return counts["turns"], counts["chunks"], time.process_time() - began, counts["failed"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--turns-at-once", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--tts-realtime-factor", type=float, default=1.0)
    parser.add_argument("--write", type=Path, help="put the report into this Markdown file")
    args = parser.parse_args()
    if not (1 <= args.turns_at_once <= 1000 and 0 < args.seconds <= 600):
        parser.error("--turns-at-once must be 1..1000 and --seconds 0..600")
    turns, chunks, cpu, failed = asyncio.run(
        measure(args.turns_at_once, args.seconds, args.tts_realtime_factor)
    )
    per_chunk = cpu / max(chunks, 1) * 1e6
    text = "\n".join(
        [
            f"### Pipeline only: {args.turns_at_once} turns at once, TTS real-time factor "
            f"{args.tts_realtime_factor:g}",
            "",
            f"Command: `python server/scripts/bench_pipeline.py --turns-at-once "
            f"{args.turns_at_once} --seconds {args.seconds:g} --tts-realtime-factor "
            f"{args.tts_realtime_factor:g}`  ",
            f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}.",
            "",
            f"{turns} turns, {chunks} audio chunks, {cpu:.1f} s of CPU: **{per_chunk:.0f} µs per "
            f"chunk**, {cpu / max(turns, 1) * 1000:.1f} ms per turn.",
        ]
    )
    print(text)
    if args.write is not None:
        name = "bench_pipeline_paced" if args.tts_realtime_factor > 0 else "bench_pipeline_bulk"
        write_section(args.write, text, name)
    return exit_code(failed, turns)


if __name__ == "__main__":
    sys.exit(main())
