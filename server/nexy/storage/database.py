"""The database component: the async engine, its migrations, sessions and health.

One URL picks the backend: ``sqlite+aiosqlite:///path/nexy.db`` (the default, a local file in
WAL mode) or ``postgresql+asyncpg://user:password@host/db`` in production. Plain ``sqlite://``
and ``postgresql://`` URLs get the async driver. Passwords never reach logs or status reasons:
everything printed goes through ``mask_url`` or has the password scrubbed out.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool, StaticPool

from nexy.components import READY, ComponentStatus, State
from nexy.storage.schema import current_revision, head_revision, migrate
from nexy.storage.sqlite_reader import SqliteReader
from nexy.storage.verdict import Verdict, classify, error_chain

log = logging.getLogger(__name__)

DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
CONNECT_TIMEOUT = 10.0  # seconds; asyncpg would otherwise wait 60 s for a silent host
PING_TIMEOUT = 5.0
SQLITE_BUSY_MS = 5000  # how long a writer waits for SQLite's single write lock
_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pass", "token", "secret"})
_BAD_ARGUMENT = re.compile(r"invalid input for query argument \$\d+")
_LAST_PARENS = re.compile(r"\(([^()]*)\)\s*$")


def mask_url(url: str | URL) -> str:
    """The URL as text with its password (and password-like query values) replaced by ***."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        # Not a URL SQLAlchemy understands: still hide whatever sits between ':' and '@'.
        return re.sub(r":[^:@/]*@", ":***@", str(url))
    query = {
        key: ("***" if key.lower() in _SECRET_QUERY_KEYS else value)
        for key, value in parsed.query.items()
    }
    rendered = parsed.set(query=query).render_as_string(hide_password=True)
    return rendered.replace("%2A%2A%2A", "***")  # the masked query values, unquoted


def normalize_url(url: str | URL) -> URL:
    """The URL with the async driver filled in; anything but SQLite or PostgreSQL is refused."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL: {mask_url(url)}") from None
    backend = parsed.get_backend_name()
    backend = "postgresql" if backend == "postgres" else backend
    driver = DRIVERS.get(backend)
    if driver is None or parsed.drivername not in (backend, driver, "postgres"):
        raise ValueError(
            f"unsupported database URL {mask_url(parsed)}: "
            "use sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db"
        )
    return parsed.set(drivername=driver)


def is_outage(exc: BaseException) -> bool:
    """Whether the database is at fault (unreachable, refusing us, no tables), not the data."""
    verdict = classify(exc)
    # An unknown driver error counts against the database, as it always has: health is about
    # the database, and a row the database refuses says nothing about it.
    return verdict is Verdict.OUTAGE or (verdict is Verdict.UNKNOWN and isinstance(exc, DBAPIError))


def describe_error(exc: BaseException, secret: str | None = None) -> str:
    """A one-line reason: the driver's message without SQL or parameters, the secret removed."""
    # SQLAlchemy wraps the driver's error, which may wrap the real one (asyncpg's, by name).
    inner = error_chain(exc)[-1]
    message = _without_values(str(inner).strip())
    reason = f"{type(inner).__name__}: {message}" if message else type(inner).__name__
    if secret:
        reason = reason.replace(secret, "***")
    return reason[:300]


def _without_values(text: str) -> str:
    """The first line; asyncpg quotes a value it could not encode, so keep only its reason."""
    bad_argument = _BAD_ARGUMENT.match(text)
    if bad_argument is None:
        return text.splitlines()[0] if text else ""
    reason = _LAST_PARENS.search(text)
    return f"{bad_argument.group(0)} ({reason.group(1) if reason else 'not encodable'})"


async def upgrade(url: str, revision: str = "head", *, schema: str | None = None) -> None:
    """Apply pending migrations to the database at the URL (``nexy-server db upgrade``)."""
    engine = _make_engine(normalize_url(url), schema=schema, pooled=False)
    try:
        await migrate(engine, revision, schema=schema)
    finally:
        await engine.dispose()
    log.info("database %s upgraded to %s", mask_url(url), revision)


async def revision(url: str, *, schema: str | None = None) -> str | None:
    """The revision the database at the URL is at (``nexy-server db current``)."""
    engine = _make_engine(normalize_url(url), schema=schema, pooled=False)
    try:
        return await current_revision(engine)
    finally:
        await engine.dispose()


def _make_engine(
    url: URL, *, schema: str | None = None, echo: bool = False, pooled: bool = True
) -> AsyncEngine:
    options: dict[str, Any] = {"echo": echo}
    if url.get_backend_name() == "sqlite":
        url = _prepare_sqlite_file(url)
        if url.database in (None, "", ":memory:"):
            options["poolclass"] = StaticPool  # one connection, or each would see its own db
        elif not pooled:
            options["poolclass"] = NullPool
        engine = create_async_engine(url, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    options.update(connect_args=connect_args, pool_pre_ping=True)
    if not pooled:
        options["poolclass"] = NullPool
    return create_async_engine(url, **options)


def _prepare_sqlite_file(url: URL) -> URL:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return url
    path = Path(database).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return url.set(database=str(path))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run while one writer commits; NORMAL sync is safe in WAL mode.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    finally:
        cursor.close()


class Database:
    """The storage engine as a component: migrates on start, reports DOWN while unreachable."""

    def __init__(
        self,
        url: str,
        *,
        auto_migrate: bool = True,
        echo: bool = False,
        schema: str | None = None,
    ) -> None:
        self._url = normalize_url(url)
        self._secret = self._url.password if isinstance(self._url.password, str) else None
        self._auto_migrate = auto_migrate
        self._echo = echo
        self._schema = schema
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._schema_ready = False
        self._migrate_lock = asyncio.Lock()
        self._failure: str | None = None
        self._closed = False
        self.reader: SqliteReader | None = None  # one-hop reads (SQLite files only)

    @property
    def url(self) -> str:
        """The URL with the password masked, safe to print."""
        return mask_url(self._url)

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._url.get_backend_name()

    @property
    def engine(self) -> AsyncEngine:
        """The async engine; only after ``start()``."""
        if self._engine is None:
            raise RuntimeError("the database is not started")
        return self._engine

    async def start(self) -> None:
        """Create the engine and migrate; an unreachable database is retried on first use."""
        self._engine = _make_engine(self._url, schema=self._schema, echo=self._echo)
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)
        self._closed = False
        sqlite_file = self._engine.url.database
        if self.dialect == "sqlite" and sqlite_file and sqlite_file != ":memory:":
            self.reader = SqliteReader(sqlite_file)
        try:
            await self._ensure_schema()
        except Exception as exc:
            if not is_outage(exc):
                await self.close()
                raise
            log.warning(
                "database %s is not usable yet, retrying on use: %s", self.url, self._failure
            )
            return
        log.info("database %s ready (%s)", self.url, self.dialect)

    def status(self) -> ComponentStatus:
        """READY, or DOWN with the last failure."""
        if self._engine is None:
            return ComponentStatus(State.DOWN, "closed" if self._closed else "not started")
        if self._failure is not None:
            return ComponentStatus(State.DOWN, self._failure)
        return READY

    async def close(self) -> None:
        """Dispose of the engine and its connections."""
        engine, self._engine, self._sessions = self._engine, None, None
        self._closed = True
        if self.reader is not None:
            await self.reader.close()
            self.reader = None
        if engine is not None:
            await engine.dispose()

    async def ping(self) -> bool:
        """Whether a trivial query succeeds within a few seconds."""
        try:
            async with asyncio.timeout(PING_TIMEOUT), self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:  # a health probe: every failure means "not reachable"
            self._record(exc, force=True)
            return False
        self._failure = None
        return True

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed on success, rolled back on an exception."""
        if self._sessions is None:
            raise RuntimeError("the database is not started")
        try:
            await self._ensure_schema()
            async with self._sessions() as session, session.begin():
                yield session
        except Exception as exc:
            self._record(exc)
            raise
        self._failure = None

    async def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        async with self._migrate_lock:
            if self._schema_ready:
                return
            try:
                await self._prepare_schema()
            except Exception as exc:
                self._record(exc)
                raise
            self._schema_ready = True

    async def _prepare_schema(self) -> None:
        if self._auto_migrate:
            await migrate(self.engine, schema=self._schema)
            return
        current, head = await current_revision(self.engine), head_revision()
        if current != head:
            log.warning(
                "database %s is at revision %s, the code expects %s: run `nexy-server db upgrade`",
                self.url,
                current,
                head,
            )

    def _record(self, exc: BaseException, *, force: bool = False) -> None:
        if force or is_outage(exc):
            self._failure = describe_error(exc, self._secret)
