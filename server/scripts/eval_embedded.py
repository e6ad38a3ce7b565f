#!/usr/bin/env python3
"""Evaluate the embedded assistant: the evaluation set against a real server, scored (issue 12).

    python server/scripts/eval_embedded.py [HOST] [PORT] [--tls] [--timeout SECONDS]
        [--launch] [--set FILE] [--write docs/BENCHMARKS.md]

Runs every prompt of server/nexy/toolkit/eval_set.yaml (commands in English and Russian, open
questions, conversations on one device) one at a time, then one model question 10 times on a
fresh device, and prints a table per family and: action accuracy (command and arguments),
language match, replies with role markers or echoes, median and p95 time to first audio for
intents and for model answers, and turn 10's time to first audio against turn 1's.
--launch starts a server with the embedded defaults itself (local model, automatic speech);
--write replaces the "Embedded assistant evaluation" section of that file.
Exit code: 0 every goal met, 1 a goal missed, 2 usage error or unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)
from benchlib import write_section

from nexy.config import LimitsSettings
from nexy.toolkit.cli import grpc_precheck, run_script
from nexy.toolkit.connection import Target, target
from nexy.toolkit.eval_embedded import Progress, Score, load_eval_set, run_eval
from nexy.toolkit.eval_report import (
    Summary,
    failure_lines,
    family_table,
    goal_checks,
    headline,
    markdown,
)
from nexy.toolkit.fuzz_launch import EMBEDDED_ENV
from nexy.toolkit.lang import say
from nexy.toolkit.local_server import local_server
from nexy.toolkit.results import Check, Report

_LIMITS = LimitsSettings()
# The launched server gets production per-device limits, not the smoke's tight ones: a
# conversation is one device asking several times in a row.
LAUNCH_ENV = {
    **EMBEDDED_ENV,
    "NEXY_LIMITS__DEVICE_BURST": str(_LIMITS.device_burst),
    "NEXY_LIMITS__DEVICE_REQUESTS_PER_MINUTE": str(_LIMITS.device_requests_per_minute),
}


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--launch", action="store_true", help="start an embedded server itself")
    parser.add_argument("--set", type=Path, help="another evaluation set (same YAML shape)")
    parser.add_argument("--write", type=Path, help="replace this file's evaluation section")


async def _precheck(args: argparse.Namespace, where: Target) -> Check | None:
    return None if args.launch else await grpc_precheck(args, where)


@contextlib.asynccontextmanager
async def _server(args: argparse.Namespace, where: Target) -> AsyncIterator[Target]:
    if not args.launch:
        yield where
        return
    stack = contextlib.ExitStack()
    # Starting waits for /ready with blocking HTTP polls: keep them off the event loop.
    server = await asyncio.to_thread(
        stack.enter_context, local_server(LAUNCH_ENV, ready_timeout=300)
    )
    try:
        yield target("127.0.0.1", server.grpc_port, False, where.timeout)
    finally:
        await asyncio.to_thread(stack.close)


def _progress(report: Report) -> Progress:
    def show(s: Score) -> None:
        icon = "✅" if s.action_ok and s.language_ok and not s.marker else "❌"
        ttfa = "—" if s.reply.first_audio_s is None else f"{s.reply.first_audio_s * 1000:.0f} ms"
        report.note(f"{icon} [{s.case.family}] {s.case.prompt} → {s.reply.command} ({ttfa})")

    return show


async def _suite(args: argparse.Namespace, where: Target, report: Report) -> None:
    eval_set = load_eval_set(args.set)
    async with _server(args, where) as live:
        count = len(eval_set.cases)
        report.step(
            say(
                f"Evaluation: {count} requests against {live.address}",
                f"Оценка: {count} запросов на {live.address}",
            )
        )
        run = await run_eval(live, eval_set, _progress(report))
    summary = Summary.of(run)
    for line in ["", *family_table(run.scores), "", *headline(summary), ""]:
        print(line, flush=True)
    for line in failure_lines(run.scores):
        print(line, flush=True)
    if args.write:
        note = "Embedded defaults (`--launch`)." if args.launch else f"Server {live.address}."
        write_section(args.write, markdown(run, note), name="eval_embedded")
    report.add(*goal_checks(summary))


def main(argv: list[str] | None = None) -> int:
    return run_script(
        __doc__ or "",
        _suite,
        argv=argv,
        configure=_configure,
        precheck=_precheck,
        success=say(
            "The embedded assistant met every evaluation goal",
            "Встроенный ассистент достиг всех целей оценки",
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
