"""``fuzz_smoke.py --launch``: start the server under test itself, for the SQLite/PostgreSQL matrix.

``sqlite`` and ``postgres`` run the smoke configuration (scripted providers, small limits, see
:data:`nexy.toolkit.local_server.SMOKE_ENV`); ``embedded-sqlite`` runs the embedded defaults
(local LLM, automatic TTS choice). PostgreSQL gets a fresh schema that is dropped afterwards.

Every kind caps one client address at half the global turn limit (:data:`PER_ADDRESS_ENV`), as
a production deployment does: the fuzz runs from 127.0.0.1, the canary from 127.0.0.2, and a
normal user must find a free slot however hard the abusive address pushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from nexy.toolkit.local_server import SMOKE_ENV, LocalServer, local_server

KINDS = ("sqlite", "postgres", "embedded-sqlite")
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
# The embedded model answers in seconds on a small machine, not in the smoke's 2 s idle budget.
EMBEDDED_ENV = {
    "NEXY_LLM__PROVIDER": "local",
    "NEXY_TTS__PROVIDER": "auto",
    "NEXY_LIMITS__IDLE_TIMEOUT_SECONDS": "30",
}


# 8 turns at once in the smoke configuration: 4 for the fuzzer's address, 4 for everyone else.
GLOBAL_TURNS = int(SMOKE_ENV["NEXY_LIMITS__MAX_CONCURRENT_TURNS"])
PER_ADDRESS_ENV = {"NEXY_LIMITS__MAX_TURNS_PER_ADDRESS": str(max(1, GLOBAL_TURNS // 2))}


def launch_env(kind: str, postgres_url: str, schema: str) -> dict[str, str]:
    """The environment overrides for one cell of the matrix."""
    if kind == "embedded-sqlite":
        return {**PER_ADDRESS_ENV, **EMBEDDED_ENV}
    if kind == "postgres":
        storage = {"NEXY_STORAGE__URL": postgres_url, "NEXY_STORAGE__SCHEMA_NAME": schema}
        return {**PER_ADDRESS_ENV, **storage}
    return dict(PER_ADDRESS_ENV)


async def _drop_schema(postgres_url: str, schema: str) -> None:
    dsn = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def launched(kind: str, postgres_url: str = POSTGRES_URL) -> AsyncIterator[LocalServer]:
    """A ready child server of the given kind; stopped (SIGTERM) and cleaned up on exit."""
    schema = f"nexy_fuzz_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    env = launch_env(kind, postgres_url, schema)
    stack = contextlib.ExitStack()
    # Starting waits for /ready with blocking HTTP polls: keep them off the event loop.
    server = await asyncio.to_thread(stack.enter_context, local_server(env, ready_timeout=300))
    try:
        yield server
    finally:
        await asyncio.to_thread(stack.close)
        if kind == "postgres":
            await _drop_schema(postgres_url, schema)
