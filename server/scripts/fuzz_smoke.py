#!/usr/bin/env python3
"""Fuzz smoke: thousands of hostile requests; the server must stay correct and alive.

    python server/scripts/fuzz_smoke.py [HOST] [PORT] [--http-port N] [--pid PID]
        [--requests 5000] [--concurrency 16] [--max-seconds 600] [--seed 1]
        [--launch sqlite|postgres|embedded-sqlite] [--postgres-url URL]

Loopback only (other hosts are refused). Seeded mutations of valid requests for all four RPCs,
sent as raw protobuf bytes: undecodable UTF-8, NUL and control characters, broken wire format,
oversized fields, odd voices and languages, alias ids, phases out of range, COLLECT storms,
random cancels, InterruptSession floods. Every answer is classified; a canary turn measures
time to first audio before/during/after; /health (and --pid) detect a death; RSS and the
outbox metrics are read at the end. --launch starts the server itself (then it knows the pid).
Exit code: 0 nothing bad, 1 a bad answer, a death, stuck outbox rows or unserved normal turns,
2 usage error or unreachable.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)

from nexy.toolkit.cli import add_http_port, grpc_precheck, http_of, run_script
from nexy.toolkit.connection import Target, http_get, target
from nexy.toolkit.fuzz import FuzzOptions, run_fuzz
from nexy.toolkit.fuzz_launch import KINDS, POSTGRES_URL, launched
from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, Report, failed, passed


def _configure(parser: argparse.ArgumentParser) -> None:
    add_http_port(parser, "/health, /status and /metrics")
    parser.add_argument("--requests", type=int, default=5000, help="hostile requests to send")
    parser.add_argument("--concurrency", type=int, default=16, help="cases in flight at once")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="stop after this long")
    parser.add_argument("--seed", type=int, default=1, help="the same seed sends the same cases")
    parser.add_argument("--pid", type=int, help="server process id: death and RSS checks")
    parser.add_argument("--canary-every", type=float, default=2.0, help="seconds between canaries")
    parser.add_argument(
        "--settle-seconds", type=float, default=30.0, help="wait for the outbox to drain"
    )
    parser.add_argument("--launch", choices=KINDS, help="start a local server of this kind")
    parser.add_argument("--postgres-url", default=POSTGRES_URL, help="for --launch postgres")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _precheck(args: argparse.Namespace, where: Target) -> Check | None:
    if not _loopback(where.host):
        detail = say(
            f"{where.host}: the fuzz runs against loopback only",
            f"{where.host}: fuzz запускается только против loopback",
        )
        return failed("fuzz.loopback", detail)
    return None if args.launch else await grpc_precheck(args, where)


async def _max_prompt(http: Target) -> int:
    """The server's prompt limit from /status, so "one past the limit" really is."""
    try:
        data = (await http_get(http, "/status")).data
        return int(data.get("limits", {}).get("max_prompt_chars", 8000))
    except Exception:  # an older server without limits in /status: the default is right
        return 8000


async def _fuzz(args: argparse.Namespace, where: Target, http: Target, pid: int | None) -> Check:
    options = FuzzOptions(
        requests=args.requests,
        concurrency=args.concurrency,
        max_seconds=args.max_seconds,
        seed=args.seed,
        canary_every=args.canary_every,
        settle_seconds=args.settle_seconds,
        max_prompt=await _max_prompt(http),
        pid=pid,
    )
    result = await run_fuzz(where, http, options)
    for line in result.lines():
        print(line, flush=True)
    if result.failures:
        return failed("fuzz", f"Fuzz: {'; '.join(result.failures)}")
    count = result.tally.requests
    return passed(
        "fuzz",
        say(
            f"Fuzz: {count} hostile requests, nothing bad",
            f"Fuzz: {count} враждебных запросов, ничего плохого",
        ),
    )


async def _suite(args: argparse.Namespace, where: Target, report: Report) -> None:
    if not args.launch:
        await report.run("fuzz", _fuzz(args, where, http_of(where, args), args.pid))
        return
    async with launched(args.launch, args.postgres_url) as server:
        report.note(f"{args.launch}: gRPC {server.grpc_port}, HTTP {server.http_port}")
        grpc = target("127.0.0.1", server.grpc_port, False, where.timeout)
        http = grpc.with_port(server.http_port)
        await report.run("fuzz", _fuzz(args, grpc, http, server.process.pid))


def main(argv: list[str] | None = None) -> int:
    return run_script(
        __doc__ or "",
        _suite,
        argv=argv,
        configure=_configure,
        precheck=_precheck,
        success=say(
            "Fuzz: the server withstood every hostile request",
            "Fuzz: сервер выдержал все враждебные запросы",
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
