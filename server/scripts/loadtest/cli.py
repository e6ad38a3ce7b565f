"""The load test's command line: flags and their caps, the run, the report, the exit status.

``server/scripts/load_test.py`` is the thin front that calls ``main``; its docstring is the
usage. Exit status: 0 if every turn ended normally with audio, 1 if any did not (a refusal
counts) or, with ``--floor``, a floor stream broke off early, 2 if the run could not start
(argparse's usage errors are 2 as well).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from scripts.benchlib import write_section

from .floor import floor_failures, floor_for_run
from .report import render_chart, report
from .results import finite
from .run import run_load
from .target import acquire_target, pacing_of, parse_target

# Hard caps: whatever the flags say, a run cannot become a runaway.
CAP_CONCURRENCY = 2000
CAP_TURNS = 200_000
CAP_DURATION_S = 900.0

# Four sentences, ~150 characters: about 9 s of scripted audio, a typical spoken answer.
LONG_REPLY = (
    "It is mild and sunny today, about twenty degrees. "
    "A light breeze is coming from the west. "
    "Clouds may gather late in the evening. "
    "Tomorrow looks much the same."
)
# One sentence: the RSS mode wants many turns, not long ones.
SHORT_REPLY = "Sure, it is about twenty degrees outside."


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Bounded closed-loop load test of a Nexy server on loopback",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--spawn", action="store_true", help="start a server with scripted providers (default)"
    )
    where.add_argument("--target", help="HOST:PORT of a running server's gRPC (loopback only)")
    parser.add_argument("--http-port", type=int, help="the --target server's HTTP port")
    parser.add_argument("--pid", type=int, help="the --target server's pid, for RSS/CPU")
    parser.add_argument("--concurrency", type=int, default=50, help="closed-loop clients")
    parser.add_argument(
        "--duration", type=float, help="seconds of load (default 30; 170 in --rss-turns mode)"
    )
    parser.add_argument("--max-turns", type=int, default=100_000, help="turns at most")
    parser.add_argument(
        "--rss-turns",
        type=int,
        help="RSS mode: run this many short turns; compare RSS after warm-up and at the end",
    )
    parser.add_argument("--warmup-turns", type=int, default=500, help="RSS mode warm-up")
    parser.add_argument(
        "--channels", type=int, default=0, help="gRPC connections (0: one per client)"
    )
    parser.add_argument(
        "--ramp",
        type=float,
        help="seconds over which clients start (default 5, about one turn, so the load is "
        "steady rather than in waves; 1 in --rss-turns mode)",
    )
    parser.add_argument(
        "--back-to-back",
        action="store_true",
        help="start a client's next turn as soon as its stream ends, not once a listener would "
        "have heard the answer (always so in --rss-turns mode)",
    )
    parser.add_argument(
        "--retry-pause",
        type=float,
        default=1.0,
        help="seconds (±50 %%) a client refused with RESOURCE_EXHAUSTED waits before its next "
        "turn; the spawned server refuses only with --server-env NEXY_LIMITS__MAX_CONCURRENT_TURNS",
    )
    parser.add_argument(
        "--gap-limit-ms",
        type=float,
        default=150.0,
        help="count turns whose largest audio gap exceeds this (a wire chunk is <= 100 ms)",
    )
    parser.add_argument(
        "--prebuffer-ms",
        type=float,
        default=200.0,
        help="player jitter buffer for the stall measure: playback starts this long after "
        "the first chunk arrives",
    )
    pacing = parser.add_argument_group("scripted providers (spawned server only)")
    pacing.add_argument("--reply", help="the LLM's reply text (default depends on the mode)")
    pacing.add_argument("--llm-first-token-ms", type=float, default=150.0, help="ms")
    pacing.add_argument("--llm-chunks-per-second", type=float, default=30.0, help="stream pace")
    pacing.add_argument("--llm-chunk-chars", type=int, default=6, help="characters per chunk")
    pacing.add_argument("--tts-first-chunk-ms", type=float, default=40.0, help="ms per sentence")
    pacing.add_argument(
        "--tts-realtime-factor", type=float, help="default 1.0; 0.05 in --rss-turns mode"
    )
    pacing.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NEXY_KEY=VALUE",
        help="extra setting for the spawned server (repeatable), e.g. NEXY_CONFIG=extra.yaml",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="after the run, stream the same audio through a bare grpc.aio server "
        "(bench_grpc_floor.py) and compare CPU per second of audio",
    )
    out = parser.add_argument_group("output")
    out.add_argument("--json", type=Path, help="write every number and the per-second series")
    out.add_argument("--chart", type=Path, help="write a PNG of the run")
    out.add_argument("--write", type=Path, help="update the load_test section of this file")
    out.add_argument("--quiet", action="store_true", help="no per-second progress lines")
    args = parser.parse_args(argv)

    rss_mode = args.rss_turns is not None
    if args.duration is None:
        args.duration = 170.0 if rss_mode else 30.0
    if args.ramp is None:
        # Never longer than the run: a short smoke run should still use all its clients.
        args.ramp = min(1.0 if rss_mode else 5.0, args.duration / 2)
    if args.tts_realtime_factor is None:
        args.tts_realtime_factor = 0.05 if rss_mode else 1.0
    if args.reply is None:
        args.reply = SHORT_REPLY if rss_mode else LONG_REPLY
    if rss_mode:
        args.max_turns = args.rss_turns
        args.back_to_back = True  # many short turns; nobody listens to them
    else:
        args.warmup_turns = 0  # RSS baseline is taken at the start instead
    problems = []
    if not 1 <= args.concurrency <= CAP_CONCURRENCY:
        problems.append(f"--concurrency must be 1..{CAP_CONCURRENCY}")
    if not 0 < args.duration <= CAP_DURATION_S:
        problems.append(f"--duration must be in (0, {CAP_DURATION_S:.0f}] s")
    if not 1 <= args.max_turns <= CAP_TURNS:
        problems.append(f"--max-turns / --rss-turns must be 1..{CAP_TURNS}")
    if rss_mode and not 0 <= args.warmup_turns < args.max_turns:
        problems.append("--warmup-turns must be smaller than --rss-turns")
    if not 0 <= args.ramp <= args.duration:
        problems.append("--ramp must be between 0 and --duration")
    if args.target is not None:
        try:
            parse_target(args.target)  # refuse a non-loopback target before anything starts
        except ValueError as exc:
            problems.append(str(exc))
    if args.retry_pause < 0:
        problems.append("--retry-pause must be >= 0")
    if args.channels < 0:
        problems.append("--channels must be >= 0")
    if args.target is None and (args.http_port or args.pid):
        problems.append("--http-port and --pid go with --target")
    if args.target is not None and args.server_env:
        problems.append("--server-env only applies to a spawned server")
    for item in args.server_env:
        key, sep, _ = item.partition("=")
        # Only server settings: this must not become a way to change the child's PATH and such.
        if not sep or not key.startswith("NEXY_"):
            problems.append(f"--server-env wants NEXY_KEY=VALUE, got {item!r}")
    if problems:
        parser.error("; ".join(problems))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    async def run() -> dict[str, Any]:
        async with acquire_target(args, pacing_of(args)) as target:
            if not args.quiet:
                where = "spawned" if target.spawned else "target"
                print(
                    f"{where} server grpc={target.host}:{target.grpc_port} "
                    f"http={target.http_port} pid={target.pid}; concurrency={args.concurrency} "
                    f"duration={args.duration:g}s max_turns={args.max_turns}",
                    flush=True,
                )
            return await run_load(args, target)

    try:
        data = asyncio.run(run())
    except RuntimeError as exc:  # the server did not start, or the warm-up turn failed
        print(f"load_test: {exc}", file=sys.stderr)
        return 2
    floor_missing = 0
    if args.floor:
        # After the load, on a quiet machine: the spawned server has stopped by now.
        data["summary"]["floor"] = floor = floor_for_run(data["summary"], args.concurrency)
        floor_missing, floor_expected = floor_failures(floor)
        if floor_missing:
            print(f"{floor_missing} of {floor_expected} floor messages failed", file=sys.stderr)
    text = report(data)
    print()
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(finite(data), indent=1, allow_nan=False, default=str) + "\n"
        )
    if args.chart:
        title = text.splitlines()[0].removeprefix("### ")
        late = [(w, g) for turn in data["turns"] for w, g in turn.get("late_gaps", [])]
        render_chart(data["series"], args.chart, title, args.gap_limit_ms, late)
    if args.write:
        # Two sections, so that the RSS check does not overwrite the latency run (or vice versa).
        section = "load_test" if data["mode"] == "load" else "load_test_rss"
        write_section(args.write, text, name=section)
    failed = data["summary"]["turns"] - data["summary"]["ok"]
    return 1 if failed or floor_missing else 0
