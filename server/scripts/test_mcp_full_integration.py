#!/usr/bin/env python3
"""MCP/action integration: command parsing, command_payload, gRPC delivery, the feature flag.

    python server/scripts/test_mcp_full_integration.py [HOST] [PORT] [--tls] [--timeout SECONDS]
                                                       [--expect-no-actions | --offline]

Defaults to localhost 50051. Always runs the in-process checks (reply parsing, allow-list
normalisation and validation, feature flags, payload {"session_id", "command", "args"}).
Online: "Open Safari"/"Close Safari" (answered by the server's local intents) must arrive as
an action_message with that payload; with --expect-no-actions (a server run with
NEXY_ACTIONS__FORWARD=false) they must arrive as speech only. --offline skips the server.
Exit code: 0 passed, 1 a check failed, 2 usage error or unreachable.
"""

from __future__ import annotations

import argparse
import sys

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)

from nexy.toolkit.actions import run_actions, run_actions_offline
from nexy.toolkit.cli import grpc_precheck, run_script
from nexy.toolkit.connection import Target
from nexy.toolkit.lang import say
from nexy.toolkit.results import Check, Report


def _options(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--expect-no-actions",
        action="store_true",
        help="the server runs with actions.forward=false: no action_message may arrive",
    )
    mode.add_argument("--offline", action="store_true", help="only the in-process checks")


async def _precheck(args: argparse.Namespace, where: Target) -> Check | None:
    return None if args.offline else await grpc_precheck(args, where)


async def _suite(args: argparse.Namespace, where: Target, report: Report) -> None:
    run_actions_offline(report)
    if not args.offline:
        await run_actions(where, report, expect_no_actions=args.expect_no_actions)


def main(argv: list[str] | None = None) -> int:
    return run_script(
        __doc__ or "",
        _suite,
        argv=argv,
        configure=_options,
        precheck=_precheck,
        success=say(
            "All MCP integration checks passed", "Все проверки MCP-интеграции прошли успешно"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
