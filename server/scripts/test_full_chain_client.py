#!/usr/bin/env python3
"""Full chain to the client: a plain-text reply, a JSON action reply, session_id handling.

    python server/scripts/test_full_chain_client.py [HOST] [PORT] [--tls] [--timeout SECONDS]

Defaults to localhost 50051. The client cannot choose the model's reply, so the prompts are
ones the server's local intent path answers deterministically: "Hello" → plain text,
"Open Safari" → an open_app action (needs llm.intents.enabled, the default). session_id: the
action carries the request's session_id; a COMMIT reusing a running session_id gets
ALREADY_EXISTS and leaves the first turn alone; a new session_id works. Exit code: 0 passed,
1 a check failed, 2 usage error or unreachable.
"""

from __future__ import annotations

import sys

import _bootstrap  # noqa: F401  (first: finds nexy, or says which Python to use)

from nexy.toolkit.cli import run_script
from nexy.toolkit.lang import say
from nexy.toolkit.pipeline import run_chain


def main(argv: list[str] | None = None) -> int:
    return run_script(
        __doc__ or "",
        lambda args, where, report: run_chain(where, report),
        argv=argv,
        success=say("The whole chain to the client works", "Вся цепочка до клиента работает"),
    )


if __name__ == "__main__":
    sys.exit(main())
