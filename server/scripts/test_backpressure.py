#!/usr/bin/env python3
"""Backpressure: per-device and global concurrent-turn limits, rate limit, idle timeout.

    python server/scripts/test_backpressure.py [HOST] [PORT] [--http-port N] [--slow] [--tls]
                                               [--timeout SECONDS]

Defaults to localhost 50051 (HTTP 8080; 443 for both with TLS). Reads the limits from /status
(limits: max_concurrent_turns, max_turns_per_device, device_burst, device_requests_per_minute,
idle_timeout_seconds) and provokes each one: a limit that is not advertised, or too large to
provoke safely (more than 16 parallel turns, a burst over 30, an idle timeout over 60 s without
--slow), is skipped with a line saying so. Every probe uses a fresh device id; a final turn
from another device must succeed. Exit code: 0 passed, 1 a check failed, 2 usage error or
unreachable.
"""

from __future__ import annotations

import argparse
import sys

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)

from nexy.toolkit.backpressure import run_backpressure
from nexy.toolkit.cli import add_http_port, http_of, run_script
from nexy.toolkit.connection import Target
from nexy.toolkit.lang import say
from nexy.toolkit.results import Report


def _options(parser: argparse.ArgumentParser) -> None:
    add_http_port(parser, "/status (the advertised limits)")
    parser.add_argument(
        "--slow", action="store_true", help="also run probes that take minutes (idle > 60 s)"
    )


async def _suite(args: argparse.Namespace, where: Target, report: Report) -> None:
    await run_backpressure(where, http_of(where, args), report, slow=args.slow)


def main(argv: list[str] | None = None) -> int:
    return run_script(
        __doc__ or "",
        _suite,
        argv=argv,
        configure=_options,
        success=say("All backpressure checks passed", "Все проверки backpressure прошли успешно"),
    )


if __name__ == "__main__":
    sys.exit(main())
