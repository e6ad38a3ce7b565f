#!/usr/bin/env python3
"""Run the test levels in order and print a summary table.

    python server/scripts/run_all_tests.py [--level unit|storage|integration|e2e|all]

Exit code 0 only when every selected level passed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "server" / "tests"
LEVELS = ("unit", "storage", "integration", "e2e")


@dataclass
class LevelResult:
    level: str
    code: int
    seconds: float

    @property
    def verdict(self) -> str:
        return {0: "passed", 5: "no tests"}.get(self.code, "FAILED")


def run_level(level: str, extra: list[str]) -> LevelResult:
    print(f"\n=== {level} ===", flush=True)
    started = time.perf_counter()
    command = [sys.executable, "-m", "pytest", str(TESTS / level), "-q", *extra]
    code = subprocess.call(command, cwd=ROOT)
    return LevelResult(level, code, time.perf_counter() - started)


def summary(results: list[LevelResult]) -> str:
    lines = [f"{'level':<12} {'result':<10} {'seconds':>8}", "-" * 32]
    lines += [f"{r.level:<12} {r.verdict:<10} {r.seconds:>8.1f}" for r in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", choices=[*LEVELS, "all"], default="all")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest")
    args = parser.parse_args(argv)
    levels = LEVELS if args.level == "all" else (args.level,)
    results = [run_level(level, args.pytest_args) for level in levels]
    print("\n" + summary(results))
    failed = [r.level for r in results if r.code != 0]
    print("\nall levels passed" if not failed else f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
