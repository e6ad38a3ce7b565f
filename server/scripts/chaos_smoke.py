#!/usr/bin/env python3
"""Chaos smoke: the server survives abuse and degrades gracefully.

    python server/scripts/chaos_smoke.py [HOST] [PORT] [--http-port N] [--tls] [--timeout SECONDS]

Defaults to localhost 50051 (HTTP 8080; 443 for both with TLS). A burst of concurrent turns
(each must end normally or with RESOURCE_EXHAUSTED), immediate cancels, InterruptSession
mid-turn, malformed and oversized requests (a >16 MiB message only on loopback), a COLLECT
storm; then /health 200, /status active_turns back to 0, provider breaker states, and a normal
turn. Provider failures cannot be injected remotely; their visible effects are what is checked.
Exit code: 0 passed, 1 a check failed, 2 usage error or unreachable.
"""

from __future__ import annotations

import argparse
import sys

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)

from nexy.toolkit.chaos import run_chaos
from nexy.toolkit.cli import add_http_port, http_of, run_script
from nexy.toolkit.connection import Target
from nexy.toolkit.lang import say
from nexy.toolkit.results import Report


async def _suite(args: argparse.Namespace, where: Target, report: Report) -> None:
    await run_chaos(where, http_of(where, args), report)


def main(argv: list[str] | None = None) -> int:
    return run_script(
        __doc__ or "",
        _suite,
        argv=argv,
        configure=lambda parser: add_http_port(parser, "/health and /status"),
        success=say(
            "The server survived the chaos: all checks passed",
            "Сервер пережил хаос: все проверки прошли успешно",
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
