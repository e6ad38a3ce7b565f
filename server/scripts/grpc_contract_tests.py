#!/usr/bin/env python3
"""gRPC contract tests: responses match streaming.proto; stubs and protobuf versions.

    python server/scripts/grpc_contract_tests.py [HOST] [PORT] [--tls] [--timeout SECONDS]

Defaults to localhost 50051. Reads every RPC's responses as raw wire bytes: field numbers and
wire types, exactly one oneof member per message, required fields (audio format, action JSON,
non-empty texts), enum values (RequestPhase 0/1/unknown), error shape; server reflection lists
streaming.StreamingService with its 4 methods and the same schema as the local .proto; the local
stubs equal a fresh grpc_tools regeneration; grpcio/protobuf versions. ReportUsage is checked
with refused requests only, so no usage rows are written. Exit code: 0 passed, 1 a check
failed, 2 usage error or unreachable.
"""

from __future__ import annotations

import sys

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)

from nexy.toolkit.cli import run_script
from nexy.toolkit.contract import run_contract
from nexy.toolkit.lang import say


def main(argv: list[str] | None = None) -> int:
    return run_script(
        __doc__ or "",
        lambda args, where, report: run_contract(where, report),
        argv=argv,
        success=say(
            "The contract holds: all checks passed",
            "Контракт соблюдается: все проверки прошли успешно",
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
