"""Storage fixtures: every test that takes ``backend`` runs on SQLite and on PostgreSQL.

PostgreSQL is ``NEXY_TEST_POSTGRES_URL`` (default: the local trust-auth server). Its variant is
skipped only when nothing listens on the port; a server that listens but fails makes the tests
fail. Each PostgreSQL test gets its own schema, named after this run, which is dropped after
the test; a last sweep drops whatever a crashed test left behind. Parallel runs never share a
schema.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from nexy.storage import Database, Repository

POSTGRES_URL = os.environ.get(
    "NEXY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
RUN_TAG = f"nexy_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
_schema_numbers = itertools.count(1)
_listening: bool | None = None


def _address() -> tuple[str, int]:
    url = make_url(POSTGRES_URL)
    return url.host or "127.0.0.1", url.port or 5432


def postgres_listening() -> bool:
    """Whether anything accepts connections on the PostgreSQL port (asked once per run)."""
    global _listening
    if _listening is None:
        try:
            with socket.create_connection(_address(), timeout=3):
                _listening = True
        except ConnectionRefusedError:  # only "nothing listens"; other errors fail the test
            _listening = False
    return _listening


def require_postgres() -> None:
    """Skip the test when no PostgreSQL server runs; never when one runs but misbehaves."""
    if not postgres_listening():
        host, port = _address()
        pytest.skip(f"PostgreSQL variant: nothing listens on {host}:{port} (connection refused)")


def _asyncpg_dsn() -> str:
    return make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(False)


async def _postgres(statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn())
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _drop_run_schemas() -> None:
    connection = await asyncpg.connect(_asyncpg_dsn())
    try:
        names = await connection.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", f"{RUN_TAG}%"
        )
        for (name,) in names:
            await connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await connection.close()


@pytest.fixture(scope="session", autouse=True)
def _sweep_postgres_schemas() -> Iterator[None]:
    yield
    if _listening:
        asyncio.run(_drop_run_schemas())


@dataclass(frozen=True)
class Backend:
    """Where a test's database lives."""

    name: str
    url: str
    schema: str | None = None

    def database(self, **options: Any) -> Database:
        """A (not yet started) Database on this backend."""
        return Database(self.url, schema=self.schema, **options)


@pytest.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'db' / 'nexy.db'}")
        return
    require_postgres()
    schema = f"{RUN_TAG}_{next(_schema_numbers)}"
    await _postgres(f'CREATE SCHEMA "{schema}"')
    try:
        yield Backend("postgresql", POSTGRES_URL, schema)
    finally:
        await _postgres(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
async def database(backend: Backend) -> AsyncIterator[Database]:
    db = backend.database()
    await db.start()
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def repository(database: Database) -> Repository:
    return Repository(database)
