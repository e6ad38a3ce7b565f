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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works from a plain checkout too

from nexy.toolkit.cli import run_script  # noqa: E402
from nexy.toolkit.smoke import run_smoke  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return run_script(
        __doc__ or "",
        lambda args, where, report: run_smoke(where, report),
        argv=argv,
        success="Все smoke-тесты прошли успешно",
    )


if __name__ == "__main__":
    sys.exit(main())
