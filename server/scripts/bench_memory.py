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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the nexy package

from benchlib import percentile, write_section  # noqa: E402

from nexy.memory.service import MemoryService  # noqa: E402
from nexy.storage import Database, Exchange, Outbox, Repository  # noqa: E402

HARDWARE_ID = "BENCH-MEMORY-0000-000000000000"


async def measure(reads: int) -> list[float]:
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
            timings = []
            for _ in range(reads):
                started = time.perf_counter()
                context = await memory.read_context(HARDWARE_ID)
                timings.append(time.perf_counter() - started)
            assert "topic number 49" in context.facts[-1]
            return timings
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
    text = report(asyncio.run(measure(args.reads)))
    print(text)
    if args.write:
        write_section(args.write, text, name="bench_memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
