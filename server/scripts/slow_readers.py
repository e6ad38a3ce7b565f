#!/usr/bin/env python3
"""Slow readers: a well-behaved client keeps being served while many streams read slowly.

    python server/scripts/slow_readers.py [HOST] [PORT] [--streams 300] [--good 100]
        [--read-every 1.0] [--source 127.0.0.2] [--goal 0.95]

Loopback only. Opens --streams StreamAudio turns with long replies, each on its own connection
from the --source address (through a local relay: gRPC Python cannot bind a source address),
reading one message per --read-every seconds; meanwhile --good sequential short turns run from
127.0.0.1. Reports the share of good turns admitted (goal ≥ 95 %), their time to first audio,
and how the slow streams ended. Exit code: 0 goal met, 1 not met, 2 usage error or unreachable.
"""

from __future__ import annotations

import argparse
import sys

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)

from nexy.toolkit.cli import grpc_precheck, run_script
from nexy.toolkit.connection import Target
from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, Report, failed, verdict
from nexy.toolkit.slow_readers import ADMITTED_GOAL, SlowOptions, run_slow_readers

LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--streams", type=int, default=300, help="slow-reading streams")
    parser.add_argument("--good", type=int, default=100, help="turns of the good client")
    parser.add_argument("--read-every", type=float, default=1.0, help="seconds per slow read")
    parser.add_argument("--source", default="127.0.0.2", help="slow streams' source address")
    parser.add_argument("--goal", type=float, default=ADMITTED_GOAL, help="share to admit")


async def _precheck(args: argparse.Namespace, where: Target) -> Check | None:
    if where.host not in LOOPBACK:
        detail = say(
            f"{where.host}: slow readers run against loopback only",
            f"{where.host}: медленные читатели запускаются только против loopback",
        )
        return failed("slow.loopback", detail)
    return await grpc_precheck(args, where)


async def _check(args: argparse.Namespace, where: Target) -> Check:
    options = SlowOptions(
        streams=args.streams, good=args.good, read_every_s=args.read_every, source=args.source
    )
    result = await run_slow_readers(where, options)
    for line in result.lines():
        print(line, flush=True)
    share = f"{result.good_admitted}/{result.good_total} ({result.admitted_share:.0%})"
    return verdict(
        "slow.admitted",
        result.admitted_share >= args.goal,
        say(
            f"The good client was served next to {args.streams} slow streams: {share}",
            f"Хороший клиент обслужен рядом с {args.streams} медленными потоками: {share}",
        ),
        say(
            f"The good client was served in only {share} of turns (goal {args.goal:.0%})",
            f"Хороший клиент обслужен лишь в {share} ходов (цель {args.goal:.0%})",
        ),
    )


async def _suite(args: argparse.Namespace, where: Target, report: Report) -> None:
    report.step(
        say(
            f"{args.streams} slow readers and {args.good} turns of a good client",
            f"{args.streams} медленных читателей и {args.good} ходов хорошего клиента",
        )
    )
    await report.run("slow.admitted", _check(args, where))


def main(argv: list[str] | None = None) -> int:
    return run_script(__doc__ or "", _suite, argv=argv, configure=_configure, precheck=_precheck)


if __name__ == "__main__":
    sys.exit(main())
