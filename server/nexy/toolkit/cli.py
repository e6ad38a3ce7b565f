"""The command line every toolkit script shares: ``[HOST] [PORT]``, ``--tls``, ``--timeout``.

Exit codes: 0 every check passed, 1 a check failed, 2 a usage error or the server unreachable
(argparse already exits with 2 on bad arguments).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

from nexy.toolkit.connection import (
    DEFAULT_GRPC_PORT,
    DEFAULT_TIMEOUT,
    Target,
    connect_check,
    http_target,
    target,
)
from nexy.toolkit.lang import say
from nexy.toolkit.results import EXIT_USAGE, Check, Report

Suite = Callable[[argparse.Namespace, Target, Report], Awaitable[object]]
Configure = Callable[[argparse.ArgumentParser], None]
# Runs before the suite: a failed check means "unreachable" (exit 2); None means nothing to say.
Precheck = Callable[[argparse.Namespace, Target], Awaitable[Check | None]]


async def grpc_precheck(args: argparse.Namespace, where: Target) -> Check | None:
    """``✅ Connected to host:port``, or the reason it could not connect."""
    return await connect_check(where)


def _port(raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            say(f"not a port number: {raw!r}", f"не номер порта: {raw!r}")
        ) from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(
            say(f"port out of range: {port}", f"порт вне диапазона: {port}")
        )
    return port


def build_parser(description: str, default_port: int) -> argparse.ArgumentParser:
    """HOST and PORT positionally (as the guide runs them) or as ``--host/--port``."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("host_arg", nargs="?", metavar="HOST", help="server (default localhost)")
    parser.add_argument(
        "port_arg", nargs="?", type=_port, metavar="PORT", help=f"port (default {default_port})"
    )
    parser.add_argument("--host", help="same as HOST")
    parser.add_argument("--port", type=_port, help="same as PORT")
    parser.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="use TLS (default: only when the port is 443)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds per call (default {DEFAULT_TIMEOUT:.0f})",
    )
    return parser


def add_http_port(parser: argparse.ArgumentParser, used_for: str) -> None:
    parser.add_argument(
        "--http-port",
        type=_port,
        help=f"HTTP port for {used_for} (default 8080, or 443 with TLS)",
    )


def resolve_target(
    parser: argparse.ArgumentParser, args: argparse.Namespace, default_port: int
) -> Target:
    """Merge positional and flag forms; giving both with different values is a usage error."""
    for flag, positional, option in (
        ("--host", args.host_arg, args.host),
        ("--port", args.port_arg, args.port),
    ):
        if positional is not None and option is not None and positional != option:
            parser.error(
                say(
                    f"{flag} {option} contradicts the positional value {positional}",
                    f"{flag} {option} противоречит позиционному значению {positional}",
                )
            )
    if args.timeout <= 0:
        parser.error(say("--timeout must be positive", "--timeout должен быть положительным"))
    host = args.host or args.host_arg or "localhost"
    port = args.port or args.port_arg or default_port
    return target(host, port, args.tls, args.timeout)


def http_of(grpc_target: Target, args: argparse.Namespace) -> Target:
    """The HTTP endpoint for a gRPC script's ``--http-port``."""
    return http_target(grpc_target, getattr(args, "http_port", None))


def _print(line: str) -> None:
    print(line, flush=True)  # progress must show up even when piped into a CI log


def run_script(
    description: str,
    suite: Suite,
    *,
    argv: list[str] | None = None,
    default_port: int = DEFAULT_GRPC_PORT,
    configure: Configure | None = None,
    precheck: Precheck | None = grpc_precheck,
    success: str | None = None,
) -> int:
    """Parse the command line, check the server answers, run the suite, print the summary."""
    parser = build_parser(description, default_port)
    if configure is not None:
        configure(parser)
    args = parser.parse_args(argv)
    where = resolve_target(parser, args, default_port)
    report = Report(printer=_print)

    async def main() -> int:
        check = await precheck(args, where) if precheck is not None else None
        if check is not None:
            report.add(check)
            if not check.ok:
                return EXIT_USAGE
        await suite(args, where, report)
        return report.finish(success)

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        print(say("interrupted", "прервано"), file=sys.stderr)
        return EXIT_USAGE
