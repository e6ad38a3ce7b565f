#!/usr/bin/env python3
"""Full pipeline E2E: gRPC request → LLM → TTS → client, data formats and streaming order.

    python server/scripts/test_full_pipeline_e2e.py [HOST] [PORT] [--tls] [--timeout SECONDS]

Defaults to localhost 50051. Checks one real turn: 48000 Hz mono int16 audio with even lengths,
shape == samples and no silent chunks; text before its audio, at most one action before the
end, exactly one terminal message; prints the time to first text and first audio; then the
desktop client's COLLECT → COMMIT flow. Exit code: 0 passed, 1 a check failed, 2 usage
error or unreachable.
"""

from __future__ import annotations

import sys

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)

from nexy.toolkit.cli import run_script
from nexy.toolkit.lang import say
from nexy.toolkit.pipeline import run_pipeline


def main(argv: list[str] | None = None) -> int:
    return run_script(
        __doc__ or "",
        lambda args, where, report: run_pipeline(where, report),
        argv=argv,
        success=say("All pipeline E2E checks passed", "Все E2E-проверки пайплайна прошли успешно"),
    )


if __name__ == "__main__":
    sys.exit(main())
