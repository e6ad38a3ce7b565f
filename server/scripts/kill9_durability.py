#!/usr/bin/env python3
"""kill -9 right after end_message: how many turns reach the database?

    python server/scripts/kill9_durability.py [--storage sqlite|postgres] [--turns 100]
                                              [--write docs/BENCHMARKS.md]

Starts a real `nexy-server serve` (scripted providers, loopback), runs one COMMIT per start and
SIGKILLs the server the moment end_message arrives; then restarts it once more, waits for the
outbox to drain and counts the turns stored. PostgreSQL runs in a fresh schema of the local
`test` database (trust auth), dropped afterwards. See nexy.toolkit.durability.
Exit code 0 when no turn was lost.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)
from benchlib import write_section

from nexy.toolkit.durability import Report, run


def _section(report: Report, turns: int) -> str:
    return "\n".join(
        [
            f"### {report.storage}: {turns} turns, SIGKILL after each end_message",
            "",
            "| sent | without end_message | recorded | lost | median restart (spawn to /ready) |",
            "|---|---|---|---|---|",
            f"| {len(report.sent)} | {report.failed} | {report.recorded} | {report.lost} "
            f"| {report.median_restart_s:.2f} s |",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--storage", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--write", type=Path, help="put the result into this Markdown file")
    args = parser.parse_args(argv)
    report = run("postgresql" if args.storage == "postgres" else "sqlite", args.turns)
    print("\n".join(report.lines()))
    if args.write is not None:
        write_section(args.write, _section(report, args.turns), f"kill9_{args.storage}")
    return 0 if report.lost == 0 and report.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
