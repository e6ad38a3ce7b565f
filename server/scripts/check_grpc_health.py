#!/usr/bin/env python3
"""Health/status checks: /health, /status, /updates/health, version agreement, open ports.

    python server/scripts/check_grpc_health.py [HOST] [PORT] [--grpc-port N] [--tls]
                                               [--require-updates] [--timeout SECONDS]

    python server/scripts/check_grpc_health.py localhost 8080
    python server/scripts/check_grpc_health.py nexy-server.canadacentral.cloudapp.azure.com 443

PORT is the HTTP port (default 8080; 443 means HTTPS). --grpc-port is checked for reachability
and gRPC health (default 50051, or 443 with TLS). /updates/health answering 404 means no update
feed is deployed: reported as skipped unless --require-updates. Exit code: 0 all checks passed,
1 a check failed, 2 usage error or the HTTP port is unreachable.
"""

from __future__ import annotations

import argparse
import sys

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)

from nexy.toolkit.cli import run_script
from nexy.toolkit.connection import DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, Target
from nexy.toolkit.health import http_precheck, run_health
from nexy.toolkit.results import Report


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--grpc-port", type=int, help="gRPC port (default 50051, 443 with TLS)")
    parser.add_argument(
        "--require-updates", action="store_true", help="fail when /updates/health is 404"
    )


async def _suite(args: argparse.Namespace, http: Target, report: Report) -> None:
    grpc_port = args.grpc_port or (http.port if http.tls else DEFAULT_GRPC_PORT)
    await run_health(http, report, grpc_port=grpc_port, require_updates=args.require_updates)


def main(argv: list[str] | None = None) -> int:
    return run_script(
        __doc__ or "",
        _suite,
        argv=argv,
        default_port=DEFAULT_HTTP_PORT,
        configure=_options,
        precheck=http_precheck,
    )


if __name__ == "__main__":
    sys.exit(main())
