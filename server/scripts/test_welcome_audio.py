#!/usr/bin/env python3
"""Welcome audio: GenerateWelcomeAudio format, metadata, the client's 5 s budget, the cache.

    python server/scripts/test_welcome_audio.py [HOST] [PORT] [--http-port N] [--tls]
                                                [--timeout SECONDS]

Defaults to localhost 50051. Checks the default greeting (empty text) and a fresh text:
metadata first (method, 48000 Hz, 1 channel, int16, duration_sec == samples / 48000), then
audio chunks, then end_message; a repeat of the same text is served from the cache (confirmed
by /metrics on --http-port when reachable, else by timing). Exit code: 0 passed, 1 a check
failed, 2 usage error or unreachable.
"""

from __future__ import annotations

import argparse
import sys

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)

from nexy.toolkit.cli import add_http_port, http_of, run_script
from nexy.toolkit.connection import Target
from nexy.toolkit.lang import say
from nexy.toolkit.results import Report
from nexy.toolkit.welcome import run_welcome


async def _suite(args: argparse.Namespace, where: Target, report: Report) -> None:
    await run_welcome(where, report, http_of(where, args))


def main(argv: list[str] | None = None) -> int:
    return run_script(
        __doc__ or "",
        _suite,
        argv=argv,
        configure=lambda parser: add_http_port(parser, "/metrics (cache hits)"),
        success=say(
            "All welcome audio checks passed", "Все проверки приветственного аудио прошли успешно"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
