#!/usr/bin/env python3
"""gRPC smoke test: connect, InterruptSession, StreamAudio, validation errors.

    python server/scripts/grpc_smoke.py [HOST] [PORT] [--tls] [--timeout SECONDS]

    python server/scripts/grpc_smoke.py localhost 50051
    python server/scripts/grpc_smoke.py nexy-server.canadacentral.cloudapp.azure.com 443

Port 443 means TLS. Exit code: 0 all checks passed, 1 a check failed, 2 usage error or the
server is unreachable.
"""

from __future__ import annotations

import sys

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)

from nexy.toolkit.cli import run_script
from nexy.toolkit.lang import say
from nexy.toolkit.smoke import run_smoke


def main(argv: list[str] | None = None) -> int:
    return run_script(
        __doc__ or "",
        lambda args, where, report: run_smoke(where, report),
        argv=argv,
        success=say("All smoke tests passed", "Все smoke-тесты прошли успешно"),
    )


if __name__ == "__main__":
    sys.exit(main())
