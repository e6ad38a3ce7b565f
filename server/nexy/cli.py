"""The ``nexy-server`` console script (SPEC §10b fixes the names)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from nexy.client_cli import CLIENT_COMMANDS, add_client_commands, run_client_command
from nexy.config import Settings
from nexy.config_loading import ConfigError, load_settings, masked_dump
from nexy.providers.prerequisites import provider_problems
from nexy.updates.release import add_release_commands, run_release_command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nexy-server", description="Nexy voice-assistant server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gRPC and HTTP servers")
    serve.add_argument("--config", help="YAML config file (or NEXY_CONFIG)")
    serve.add_argument("--grpc-port", type=int, help="gRPC port (default 50051)")
    serve.add_argument("--http-port", type=int, help="HTTP port (default 8080)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    config = commands.add_parser("config", help="inspect the effective configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    for name, text in (
        ("show", "print the effective config, secrets masked"),
        ("check", "validate the config and exit"),
    ):
        sub = config_commands.add_parser(name, help=text)
        sub.add_argument("--config", help="YAML config file (or NEXY_CONFIG)")
    _storage_commands(commands)
    add_release_commands(commands)
    add_client_commands(commands)
    return parser


def _storage_commands(commands: Any) -> None:
    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    upgrade = db.add_parser("upgrade", help="apply pending migrations")
    upgrade.add_argument("--config", help="YAML config file (or NEXY_CONFIG)")
    upgrade.add_argument("--revision", default="head", help="target revision (default head)")
    data = commands.add_parser("data", help="one device's stored data").add_subparsers(
        dest="data_command", required=True
    )
    for name, text in (
        ("export", "print the device's memory, turns and usage as JSON"),
        ("delete", "delete everything stored about the device"),
    ):
        sub = data.add_parser(name, help=text)
        sub.add_argument("--config", help="YAML config file (or NEXY_CONFIG)")
        sub.add_argument("--hardware-id", required=True, help="the device's hardware_id")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    pairs = {
        "server.grpc_port": getattr(args, "grpc_port", None),
        "server.http_port": getattr(args, "http_port", None),
        "server.host": getattr(args, "host", None),
    }
    return {key: value for key, value in pairs.items() if value is not None}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in CLIENT_COMMANDS:  # clients of a running server: no server settings
        return run_client_command(args)
    try:
        settings = load_settings(args.config, overrides=_overrides(args))
    except ConfigError as exc:
        print(f"nexy-server: {exc}", file=sys.stderr)
        return 2
    if args.command == "config":
        if args.config_command == "show":
            print(json.dumps(masked_dump(settings), indent=2, ensure_ascii=False))
            return 0
        return _check(settings)
    if args.command == "release":
        return run_release_command(args, settings.updates)
    if args.command in ("db", "data"):
        from nexy.datacli import run_data_command  # storage imports only when needed

        return run_data_command(args, settings)
    return _serve(settings)


def _check(settings: Settings) -> int:
    """`config check`: valid values, and every configured provider has what it needs to start."""
    problems = provider_problems(settings)
    if problems:
        print("nexy-server: provider prerequisites are missing:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print("configuration is valid")
    return 0


def _serve(settings: Settings) -> int:
    from nexy.app import NexyApp  # heavy imports only when serving
    from nexy.logs import configure_logging, secret_values

    configure_logging(settings.logging, secret_values(settings))

    async def run() -> None:
        app = NexyApp(settings)
        await app.start()
        await app.serve_until_signal()

    try:
        asyncio.run(run())
    except Exception as exc:  # the process edge: one clear line, no stack trace
        logging.getLogger("nexy").error("server stopped: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
