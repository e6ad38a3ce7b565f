#!/usr/bin/env python3
"""Benchmark: how close a turn's audio comes to the ideal schedule, across provider timings.

    python server/scripts/bench_schedule.py [--at-once 4] [--write docs/BENCHMARKS.md]

Each case runs one turn through ``TurnRunner`` in this process with the scripted providers set
to one combination of LLM chunk size (4…64 characters), TTS time to first chunk (20…500 ms),
TTS real-time factor (0.05…0.5) and reply length (1…8 sentences), with and without a command
after the text. From the providers' own timing model it computes the ideal: every sentence's
synthesis starts the moment its last character arrives, all of them at once, and the turn ends
when the last sentence's audio and the reply's command exist. It prints, per case and worst
over all cases, end of turn ÷ ideal (goal ≤ 1.1) and first audio − ideal (goal ≤ 10 ms).
Cases run ``--at-once`` at a time; the providers sleep, so they hardly compete for the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)
from benchlib import exit_code, write_section
from schedule_model import Case, ideal

from nexy.config import Settings
from nexy.events import Action, AudioChunk, TurnEnd, TurnError, TurnEvent
from nexy.providers.factory import build_llm_chain, build_tts
from nexy.turn.actions import ActionPolicy
from nexy.turn.runner import TurnRequest, TurnRunner

CHUNKS = (4, 16, 64)
FIRST_MS = (20, 150, 500)
FACTORS = (0.05, 0.2, 0.5)
SENTENCES = (1, 3, 8)
MAX_RATIO, MAX_FIRST_MS = 1.1, 10.0


async def run_case(case: Case) -> tuple[float, float, bool]:
    """(first audio s, end of turn s, ok) for one turn with the case's timings."""
    settings = Settings(
        llm={
            "provider": "scripted",
            "scripted": {
                "reply": case.reply,
                "first_token_ms": case.llm_first_ms,
                "tokens_per_second": case.chunks_per_second,
                "chunk_chars": case.chunk_chars,
            },
            "intents": {"enabled": False},
        },
        tts={
            "provider": "scripted",
            "scripted": {"first_chunk_ms": case.tts_first_ms, "realtime_factor": case.factor},
        },
    )
    runner = TurnRunner(
        llm=build_llm_chain(settings),
        tts=build_tts(settings),
        policy=ActionPolicy(settings.actions),
        system_prompt="",
        turn=settings.turn,
        tts_settings=settings.tts,
    )
    out: asyncio.Queue[TurnEvent] = asyncio.Queue()
    began = time.perf_counter()
    task = asyncio.create_task(runner.run(TurnRequest("BENCH", "s", "go"), out))
    first = None
    acted = False
    while not isinstance(event := await out.get(), TurnEnd | TurnError):
        if isinstance(event, AudioChunk) and first is None:
            first = time.perf_counter() - began
        acted = acted or isinstance(event, Action)
    end = time.perf_counter() - began
    await task
    ok = isinstance(event, TurnEnd) and first is not None and acted == case.command
    return first or end, end, ok


def cases() -> list[Case]:
    grid = itertools.product(CHUNKS, FIRST_MS, FACTORS, SENTENCES, (False, True))
    return [Case(c, f, r, n, command) for c, f, r, n, command in grid]


async def sweep(at_once: int) -> list[tuple[Case, float, float, bool]]:
    gate = asyncio.Semaphore(at_once)

    async def one(case: Case) -> tuple[Case, float, float, bool]:
        async with gate:
            return (case, *await run_case(case))

    return list(await asyncio.gather(*(one(case) for case in cases())))


def report(results: list[tuple[Case, float, float, bool]], at_once: int) -> tuple[str, int]:
    rows, failed, lateness = [], 0, []
    worst_ratio, worst_first = 0.0, -1e9
    for case, first, end, ok in results:
        best = ideal(case)
        ratio, late_ms = end / best.end, (first - best.first_audio) * 1000
        failed += not ok
        worst_ratio, worst_first = max(worst_ratio, ratio), max(worst_first, late_ms)
        lateness.append(late_ms)
        rows.append(
            f"| {case.chunk_chars} | {case.tts_first_ms:.0f} | {case.factor:g} | "
            f"{case.sentences} | {'yes' if case.command else 'no'} | "
            f"{best.first_audio * 1000:.0f} | {first * 1000:.0f} | {best.end * 1000:.0f} | "
            f"{end * 1000:.0f} | {ratio:.2f} |"
        )
    met = worst_ratio <= MAX_RATIO and worst_first <= MAX_FIRST_MS
    text = "\n".join(
        [
            "### Schedule: end of turn and first audio against the ideal",
            "",
            f"Command: `python server/scripts/bench_schedule.py --at-once {at_once}`  ",
            f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
            f"{len(results)} cases ({failed} failed).",
            "",
            f"**Worst end of turn ÷ ideal: {worst_ratio:.2f}** (goal ≤ {MAX_RATIO}); "
            f"**worst first audio − ideal: {worst_first:.0f} ms** (goal ≤ {MAX_FIRST_MS:.0f} ms)"
            f" — {'met' if met else 'missed'}. First audio − ideal over the cases: median "
            f"{statistics.median(lateness):.0f} ms, {sum(t > MAX_FIRST_MS for t in lateness)} "
            f"of {len(lateness)} over {MAX_FIRST_MS:.0f} ms.",
            "",
            "<details><summary>Every case (times in ms)</summary>",
            "",
            "| LLM chunk | TTS first | RTF | sentences | command | ideal first | first | "
            "ideal end | end | end ÷ ideal |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "</details>",
        ]
    )
    return text, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--at-once", type=int, default=4, help="cases run concurrently")
    parser.add_argument("--write", type=Path, help="put the report into this Markdown file")
    args = parser.parse_args()
    if not 1 <= args.at_once <= 64:
        parser.error("--at-once must be 1..64")
    results = asyncio.run(sweep(args.at_once))
    text, failed = report(results, args.at_once)
    print(text)
    if args.write is not None:
        write_section(args.write, text, "bench_schedule")
    return exit_code(failed, len(results))


if __name__ == "__main__":
    sys.exit(main())
