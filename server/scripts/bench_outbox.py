#!/usr/bin/env python3
"""Benchmark: what the durable write path costs per write, on SQLite and on PostgreSQL.

    python server/scripts/bench_outbox.py [--writes 3000] [--callers 60] [--postgres [DSN]]
        [--save before.json] [--before before.json] [--write docs/BENCHMARKS.md]

Puts ``--writes`` writes into a fresh outbox in the mix a finished turn makes (the turn record,
its token usage, the memory update with the exchange) for ``--devices`` devices, from
``--callers`` concurrent callers, each writing its turns one after the other as the turn journal
does; then waits until the outbox has applied everything. Prints the process CPU time per write
(all threads: the event loop, the outbox's worker thread, aiosqlite's), writes per second from
the first put to the drained queue, and the latency of ``put`` (on local disk). With
``--postgres`` the database server's own CPU is not counted (it is another process). The run
fails (exit 1) unless every turn and usage row is stored once and each device's recent window
holds its last six exchanges, in order.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)
from benchlib import exit_code, percentile, write_section
from sqlalchemy import text

from nexy.storage import AddTurn, AddUsage, Database, Exchange, Outbox, Repository, TurnRecord
from nexy.storage.ops import UpdateMemory, WriteOp
from nexy.usage import UsageRecord

LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PROMPT = "What will the weather be like in Moscow tomorrow, and should I take an umbrella?"
REPLY = (
    "Tomorrow in Moscow it will be cloudy, around twelve degrees, with light rain likely after "
    "lunch. Better take the umbrella: the chance of rain rises to about sixty percent by the "
    "evening, and the wind picks up to eight metres per second. The morning stays drier, so "
    "plan the walk for the first half of the day."
)


@dataclass
class Result:
    """One backend's run."""

    backend: str
    writes: int
    callers: int
    cpu_us_per_write: float
    writes_per_s: float
    put_p50_ms: float
    put_p99_ms: float
    failed: int = 0


def device_id(turn: int, devices: int) -> str:
    return str(uuid.UUID(int=turn % devices))


def turn_writes(turn: int, devices: int) -> list[WriteOp]:
    """What one finished turn queues, in the journal's order."""
    device, session = device_id(turn, devices), str(uuid.uuid4())
    record = TurnRecord(
        session_id=session,
        hardware_id=device,
        prompt=f"{PROMPT} #{turn}",
        reply_text=REPLY,
        outcome="completed",
        total_ms=2100.0,
        llm_provider="scripted",
        tts_provider="scripted",
        first_text_ms=180.0,
        first_audio_ms=420.0,
    )
    return [
        AddTurn(record),
        AddUsage(UsageRecord(device, session, "server", 850, 120, "gpt-4o-mini")),
        UpdateMemory(device, exchange=Exchange(f"{PROMPT} #{turn}", REPLY)),
    ]


async def _put_all(outbox: Outbox, turns: range, devices: int, callers: int) -> list[float]:
    latencies: list[float] = []
    queue = iter(turns)

    async def caller() -> None:
        for turn in queue:  # the shared iterator hands each turn to one caller
            for op in turn_writes(turn, devices):
                started = time.perf_counter()
                await outbox.put(op)
                latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(caller() for _ in range(callers)))
    return latencies


async def _drained(outbox: Outbox) -> None:
    while outbox.pending():  # noqa: ASYNC110 - the outbox has no "empty" event to wait on
        await asyncio.sleep(0.005)


async def _count(database: Database, table: str) -> int:
    async with database.session() as session:
        return int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def _wrong_windows(repository: Repository, turns: range, devices: int) -> int:
    """Devices whose recent exchanges are not their last six turns, each once, in order."""
    expected: dict[str, list[str]] = {}
    for turn in turns:
        expected.setdefault(device_id(turn, devices), []).append(f"{PROMPT} #{turn}")
    wrong = 0
    for device, prompts in expected.items():
        recent = (await repository.load_memory(device)).recent
        wrong += [exchange.user for exchange in recent] != prompts[-6:]
    return wrong


async def run(backend: str, url: str, schema: str | None, args: argparse.Namespace) -> Result:
    turns = args.writes // 3
    warmup = 20
    with tempfile.TemporaryDirectory(prefix="nexy-bench-outbox-") as folder:
        database = Database(url, schema=schema)
        await database.start()
        repository = Repository(database)
        outbox = Outbox(repository, Path(folder) / "outbox.db")
        await outbox.start()
        try:
            # Warm the pool, the statement caches and the spool file; not measured.
            await _put_all(outbox, range(-warmup, 0), args.devices, args.callers)
            await _drained(outbox)
            cpu, wall = time.process_time(), time.perf_counter()
            latencies = await _put_all(outbox, range(turns), args.devices, args.callers)
            await _drained(outbox)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            stored_turns = await _count(database, "turns") - warmup
            stored_usage = await _count(database, "token_usage") - warmup
            wrong = await _wrong_windows(repository, range(-warmup, turns), args.devices)
        finally:
            await outbox.close()
            if schema is not None:
                async with database.engine.begin() as connection:
                    await connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await database.close()
    writes = turns * 3
    failed = abs(stored_turns - turns) + abs(stored_usage - turns) + wrong
    ms = [latency * 1000 for latency in latencies]
    return Result(
        backend,
        writes,
        args.callers,
        cpu / writes * 1e6,
        writes / wall,
        percentile(ms, 50),
        percentile(ms, 99),
        failed,
    )


def report(results: list[Result], before: list[Result]) -> str:
    lines = [
        "| backend | writes | callers | CPU µs/write | writes/s | put p50 ms | put p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.backend} | {r.writes} | {r.callers} | {r.cpu_us_per_write:.0f} "
        f"| {r.writes_per_s:.0f} | {r.put_p50_ms:.2f} | {r.put_p99_ms:.2f} |"
        for r in results
    ]
    if before:
        summary = "; ".join(
            f"{r.backend} {r.cpu_us_per_write:.0f} µs/write, {r.writes_per_s:.0f} writes/s, "
            f"put p50 {r.put_p50_ms:.2f} ms, p99 {r.put_p99_ms:.2f} ms"
            for r in before
        )
        what = "Before batching (one transaction and one spool commit per write)"
        lines += ["", f"{what}: {summary}."]
    return "\n".join(lines)


async def measure(args: argparse.Namespace) -> list[Result]:
    results = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="nexy-bench-outbox-db-") as folder:
            url = f"sqlite+aiosqlite:///{folder}/nexy.db"
            results.append(await run("sqlite", url, None, args))
    if args.postgres:
        schema = f"nexy_bench_outbox_{uuid.uuid4().hex[:8]}"
        results.append(await run("postgresql", args.postgres, schema, args))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description="Nexy outbox write-path benchmark")
    parser.add_argument("--writes", type=int, default=3000, help="writes to put (3 per turn)")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--callers", type=int, default=60, help="concurrent callers")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=LOCAL_POSTGRES,
        metavar="DSN",
        help=f"also run on PostgreSQL (default DSN {LOCAL_POSTGRES}; a fresh schema)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run")
    parser.add_argument("--save", type=Path, help="save the results as JSON (for --before)")
    parser.add_argument("--before", type=Path, help="JSON of an earlier run, reported as before")
    parser.add_argument("--write", type=Path, help="update this file's bench_outbox section")
    args = parser.parse_args()
    if args.writes < 3 or args.callers < 1 or args.devices < 1:
        parser.error("need --writes >= 3, --callers >= 1, --devices >= 1")
    results = asyncio.run(measure(args))
    before = []
    if args.before:
        before = [Result(**item) for item in json.loads(args.before.read_text(encoding="utf-8"))]
    text_report = report(results, before)
    print(text_report)
    if args.save:
        args.save.write_text(json.dumps([asdict(r) for r in results], indent=1), encoding="utf-8")
    if args.write:
        write_section(args.write, text_report, name="bench_outbox")
    failed = sum(r.failed for r in results)
    return exit_code(failed, sum(r.writes for r in results), "writes (missing or duplicated)")


if __name__ == "__main__":
    sys.exit(main())
