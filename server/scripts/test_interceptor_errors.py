#!/usr/bin/env python3
"""Interceptor errors: gRPC statuses for deadline, unreachable, cancel, invalid request;
error metrics and log lines.

    python server/scripts/test_interceptor_errors.py [HOST] [PORT] [--http-port N]
        [--server-log FILE] [--closed-port N] [--tls] [--timeout SECONDS]

Defaults to localhost 50051 (HTTP 8080; 443 for both with TLS). deadline → DEADLINE_EXCEEDED
(a long StreamAudio with a 200 ms deadline), unreachable → UNAVAILABLE (a closed port on the
same host: a free local port, or --closed-port, default 1 for remote hosts), cancel mid-stream →
CANCELLED, invalid request → INVALID_ARGUMENT; /metrics before and after must show
nexy_grpc_requests_total and nexy_stream_errors_total grown (absent metric = failure); with
--server-log, the server's log must hold a line for the failed call (matched by the
x-request-id the script sends). Exit code: 0 passed, 1 a check failed, 2 usage error or
unreachable.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)

from nexy.toolkit.cli import add_http_port, http_of, run_script
from nexy.toolkit.connection import Target
from nexy.toolkit.interceptors import run_interceptor_errors
from nexy.toolkit.lang import say
from nexy.toolkit.results import Report


def _options(parser: argparse.ArgumentParser) -> None:
    add_http_port(parser, "/metrics")
    parser.add_argument("--server-log", type=Path, help="the server's log file, to find the line")
    parser.add_argument("--closed-port", type=int, help="a port with no listener on HOST")


async def _suite(args: argparse.Namespace, where: Target, report: Report) -> None:
    await run_interceptor_errors(
        where,
        http_of(where, args),
        report,
        server_log=args.server_log,
        unreachable_port=args.closed_port,
    )


def main(argv: list[str] | None = None) -> int:
    return run_script(
        __doc__ or "",
        _suite,
        argv=argv,
        configure=_options,
        success=say(
            "All error handling checks passed", "Все проверки обработки ошибок прошли успешно"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
