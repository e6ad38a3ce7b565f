#!/usr/bin/env python3
"""Benchmark: what the per-turn memory read adds to a turn on SQLite.

    python server/scripts/bench_memory.py [--reads 2000] [--write docs/BENCHMARKS.md]

A device with a full memory (50 facts, 6 recent exchanges) in a fresh SQLite file; the memory
service's cache is disabled so every read goes to the database, exactly as the first turn of a
session does. Prints p50/p95/p99 of `MemoryService.read_context` (the call the turn makes).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)
from benchlib import exit_code, percentile, write_section

from nexy.memory.service import MemoryService
from nexy.storage import Database, Exchange, Outbox, Repository

HARDWARE_ID = "BENCH-MEMORY-0000-000000000000"


async def measure(reads: int) -> tuple[list[float], int]:
    """The time of each read, and how many reads failed (a timeout or an error)."""
    with tempfile.TemporaryDirectory(prefix="nexy-bench-memory-") as folder:
        database = Database(f"sqlite+aiosqlite:///{folder}/nexy.db")
        await database.start()
        repository = Repository(database)
        facts = [f"The user likes topic number {i}." for i in range(50)]
        recent = [Exchange(f"question {i}", f"answer {i}") for i in range(6)]
        await repository.save_memory(HARDWARE_ID, facts, recent)
        outbox = Outbox(repository, Path(folder) / "outbox.db")
        await outbox.start()
        memory = MemoryService(repository, outbox, cache_ttl_s=0.0)
        await memory.start()
        try:
            for _ in range(50):  # warm the connection pool and statement caches
                await memory.read_context(HARDWARE_ID)
            # A read that times out or fails returns no memory, quickly: it must not be timed.
            timings = []
            for _ in range(reads):
                started = time.perf_counter()
                context = await memory.read_context(HARDWARE_ID)
                elapsed = time.perf_counter() - started
                if context.facts and "topic number 49" in context.facts[-1]:
                    timings.append(elapsed)
            return timings, reads - len(timings)
        finally:
            await memory.close()
            await outbox.close()
            await database.close()


def report(timings: list[float]) -> str:
    ms = [t * 1000 for t in timings]
    return "\n".join(
        [
            "| reads | p50 ms | p95 ms | p99 ms |",
            "|---|---|---|---|",
            f"| {len(ms)} | {percentile(ms, 50):.3f} | {percentile(ms, 95):.3f} "
            f"| {percentile(ms, 99):.3f} |",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Nexy memory-read benchmark (SQLite)")
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--write", type=Path, help="update this file's bench_memory section")
    args = parser.parse_args()
    timings, failed = asyncio.run(measure(args.reads))
    text = report(timings)
    print(text)
    if args.write:
        write_section(args.write, text, name="bench_memory")
    return exit_code(failed, args.reads, "memory reads")


if __name__ == "__main__":
    sys.exit(main())
