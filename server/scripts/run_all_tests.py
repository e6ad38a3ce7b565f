#!/usr/bin/env python3
"""Run the test levels in order and print a summary table.

    python server/scripts/run_all_tests.py [--level unit|storage|integration|e2e|smoke|all]
                                           [pytest_args ...]

unit, storage, integration and e2e are pytest folders (extra arguments go to pytest). smoke
starts a local `nexy-server serve` itself (free loopback ports, a temporary data folder,
scripted providers and short limits, see nexy.toolkit.local_server.SMOKE_ENV), waits for /ready,
runs every toolkit script of the testing guide against it and stops it. all = every level.
Exit code 0 only when every selected level passed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)

from nexy.toolkit.lang import say
from nexy.toolkit.local_server import LocalServer, local_server

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "server" / "scripts"
TESTS = ROOT / "server" / "tests"

PYTEST_LEVELS = ("unit", "storage", "integration", "e2e")
LEVELS = (*PYTEST_LEVELS, "smoke")
# The smoke level: each script with the port it takes (gRPC, or HTTP for the health check).
SMOKE_SCRIPTS = (
    ("grpc_smoke", "grpc"),
    ("check_grpc_health", "http"),
    ("test_full_pipeline_e2e", "grpc"),
    ("test_full_chain_client", "grpc"),
    ("test_mcp_full_integration", "grpc"),
    ("test_welcome_audio", "grpc"),
    ("grpc_contract_tests", "grpc"),
    ("test_interceptor_errors", "grpc"),
    ("test_backpressure", "grpc"),
    ("chaos_smoke", "grpc"),
    ("fuzz_smoke", "grpc"),
    ("slow_readers", "grpc"),
)
_HTTP_AWARE = {
    "test_welcome_audio",
    "test_interceptor_errors",
    "test_backpressure",
    "chaos_smoke",
    "fuzz_smoke",
}
# Small bounded rounds of the abuse tools (the full 5,000 requests / 300 streams are the
# lead's matrix, see docs/OPERATIONS.md "Reliability"): each stays well under a minute.
_SMOKE_ARGS = {
    "fuzz_smoke": ["--requests", "600", "--concurrency", "4"],
    "slow_readers": ["--streams", "30", "--good", "20"],
}
SCRIPT_TIMEOUT_S = 300


@dataclass
class LevelResult:
    level: str
    code: int
    seconds: float

    @property
    def verdict(self) -> str:
        if self.code == 0:
            return say("passed", "успешно")
        return say("no tests", "нет тестов") if self.code == 5 else say("FAILED", "ОШИБКА")


def run_level(level: str, extra: list[str]) -> LevelResult:
    print(f"\n=== {level} ===", flush=True)
    started = time.perf_counter()
    command = [sys.executable, "-m", "pytest", str(TESTS / level), "-q", *extra]
    code = subprocess.call(command, cwd=ROOT)
    return LevelResult(level, code, time.perf_counter() - started)


def smoke_command(script: str, port_kind: str, server: LocalServer) -> list[str]:
    """The command line the guide would use, pointed at the local server."""
    port = server.http_port if port_kind == "http" else server.grpc_port
    command = [sys.executable, str(SCRIPTS / f"{script}.py"), "127.0.0.1", str(port)]
    if script == "check_grpc_health":
        command += ["--grpc-port", str(server.grpc_port), "--require-updates"]
    if script in _HTTP_AWARE:
        command += ["--http-port", str(server.http_port)]
    if script == "test_interceptor_errors":
        command += ["--server-log", str(server.log_path)]
    if script == "fuzz_smoke":
        command += ["--pid", str(server.process.pid)]
    return command + _SMOKE_ARGS.get(script, [])


def run_smoke() -> list[LevelResult]:
    """Start a local server, run every toolkit script against it, stop it."""
    print("\n=== smoke ===", flush=True)
    started = time.perf_counter()
    try:
        with local_server(cwd=ROOT) as server:
            ports = f"gRPC 127.0.0.1:{server.grpc_port}, HTTP 127.0.0.1:{server.http_port}"
            print(
                say(
                    f"local server: {ports}, data {server.data}",
                    f"локальный сервер: {ports}, данные {server.data}",
                ),
                flush=True,
            )
            results = [_run_script(name, kind, server) for name, kind in SMOKE_SCRIPTS]
            if any(r.code != 0 for r in results):
                _print_server_problems(server)
            return results
    except RuntimeError as exc:  # the server never became ready: one failed row says why
        print(f"smoke: {exc}", file=sys.stderr, flush=True)
        return [LevelResult("smoke (server)", 1, time.perf_counter() - started)]


def _print_server_problems(server: LocalServer) -> None:
    """The server's warnings and errors: the per-call INFO lines would bury them."""
    lines = [
        line
        for line in server.log_tail(100_000).splitlines()
        if " WARNING " in line or " ERROR " in line or "Traceback" in line
    ]
    print(
        say(
            "\n--- server log: warnings and errors ---",
            "\n--- журнал сервера: предупреждения и ошибки ---",
        ),
        flush=True,
    )
    print("\n".join(lines[-30:]) or say("(none)", "(нет)"), flush=True)


def _run_script(name: str, kind: str, server: LocalServer) -> LevelResult:
    print(f"\n--- {name} ---", flush=True)
    started = time.perf_counter()
    try:
        code = subprocess.call(
            smoke_command(name, kind, server), cwd=ROOT, timeout=SCRIPT_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        print(
            say(
                f"{name}: no result within {SCRIPT_TIMEOUT_S} s",
                f"{name}: нет результата за {SCRIPT_TIMEOUT_S} с",
            ),
            flush=True,
        )
        code = 1
    return LevelResult(f"smoke/{name}", code, time.perf_counter() - started)


def summary(results: list[LevelResult]) -> str:
    width = max([12, *(len(r.level) + 1 for r in results)])
    head = (say("level", "уровень"), say("result", "итог"), say("seconds", "секунд"))
    lines = [f"{head[0]:<{width}} {head[1]:<10} {head[2]:>8}", "-" * (width + 20)]
    lines += [f"{r.level:<{width}} {r.verdict:<10} {r.seconds:>8.1f}" for r in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--level", choices=[*LEVELS, "all"], default="all")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest")
    args = parser.parse_args(argv)
    levels = LEVELS if args.level == "all" else (args.level,)
    results: list[LevelResult] = []
    for level in levels:
        if level == "smoke":
            results += run_smoke()
        else:
            results.append(run_level(level, args.pytest_args))
    print("\n" + summary(results))
    failed = [r.level for r in results if r.code != 0]
    listed = ", ".join(failed)
    if failed:
        print(say(f"\nfailed: {listed}", f"\nне прошли: {listed}"))
    else:
        print(say("\nall levels passed", "\nвсе уровни пройдены"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
