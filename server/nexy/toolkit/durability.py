"""kill -9 durability: does a turn the client saw end survive the server dying right after?

For each turn a real ``nexy-server serve`` child is started on one data folder (and one
database), one COMMIT is run with a unique session id, and the moment its ``end_message``
arrives the process gets SIGKILL: no shutdown hook, no flush. After the last turn the server is
started once more, left to drain its outbox (``nexy_outbox_pending`` = 0 on /metrics), stopped
gracefully, and the ``turns`` table is asked which of the session ids it holds.

Everything is on loopback and every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sqlite3
import statistics
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from nexy.toolkit.calls import commit, stub_for
from nexy.toolkit.connection import new_device
from nexy.toolkit.local_server import LocalServer, free_port, spawn, stop, wait_ready

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
READY_TIMEOUT_S = 60.0
TURN_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 60.0
_PENDING = re.compile(r"^nexy_outbox_pending\s+([0-9.eE+-]+)$", re.MULTILINE)


@dataclass
class Report:
    """What a run saw."""

    storage: str
    sent: list[str] = field(default_factory=list)  # session ids whose end_message arrived
    failed: int = 0  # turns that ended without an end_message (not counted as sent)
    recorded: int = 0
    restarts_s: list[float] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return len(self.sent) - self.recorded

    @property
    def median_restart_s(self) -> float:
        return statistics.median(self.restarts_s) if self.restarts_s else 0.0

    def lines(self) -> list[str]:
        """The summary, one fact a line."""
        return [
            f"storage: {self.storage}",
            f"turns sent (end_message received, then SIGKILL): {len(self.sent)}",
            f"turns without end_message: {self.failed}",
            f"turns recorded in the database: {self.recorded}",
            f"turns lost: {self.lost}",
            f"median restart time (spawn to /ready): {self.median_restart_s:.2f} s",
        ]


def run(storage: str, turns: int) -> Report:
    """Run the whole experiment; the data folder and PostgreSQL schema are removed after."""
    data = Path(tempfile.mkdtemp(prefix="nexy-kill9-"))
    ports = (free_port(), free_port())
    report = Report(storage)
    try:
        with _database(storage, data) as env:
            for _ in range(turns):
                server = _start(data, env, ports, report)
                session_id = str(uuid.uuid4())  # the client sends a UUID
                try:
                    ended = asyncio.run(_turn_then_kill(server, session_id))
                finally:
                    _kill(server)
                if ended:
                    report.sent.append(session_id)
                else:
                    report.failed += 1
            server = _start(data, env, ports, report)
            try:
                _wait_drained(server)
            finally:
                stop(server.process)
            report.recorded = _count_recorded(storage, data, env, report.sent)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return report


def _start(data: Path, env: dict[str, str], ports: tuple[int, int], report: Report) -> LocalServer:
    started = time.monotonic()
    server = spawn(data, env, ports=ports)
    try:
        wait_ready(server, READY_TIMEOUT_S)
    except BaseException:
        _kill(server)
        raise
    report.restarts_s.append(time.monotonic() - started)
    return server


async def _turn_then_kill(server: LocalServer, session_id: str) -> bool:
    """One COMMIT; SIGKILL the server as soon as end_message arrives. Whether it arrived."""
    request = commit("Remember this turn", hardware_id=new_device(), session_id=session_id)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        call = stub_for(channel).StreamAudio(request, timeout=TURN_TIMEOUT_S)
        try:
            async for response in call:
                if response.WhichOneof("content") == "end_message":
                    server.process.send_signal(signal.SIGKILL)
                    return True
        except grpc.aio.AioRpcError:
            return False
        finally:
            call.cancel()
    return False


def _kill(server: LocalServer) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)


def _wait_drained(server: LocalServer) -> None:
    """Until /metrics says no write is queued; RuntimeError after the deadline."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    url = f"http://127.0.0.1:{server.http_port}/metrics"
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url, timeout=5) as response:
            match = _PENDING.search(response.read().decode())
        if match is not None and float(match.group(1)) == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the outbox did not drain within {DRAIN_TIMEOUT_S:.0f} s")


@contextmanager
def _database(storage: str, data: Path) -> Iterator[dict[str, str]]:
    """The server's storage settings; PostgreSQL gets a fresh schema, dropped afterwards."""
    if storage == "sqlite":
        yield {"NEXY_STORAGE__URL": f"sqlite+aiosqlite:///{data}/nexy.db"}
        return
    schema = f"nexy_kill9_{uuid.uuid4().hex[:12]}"
    asyncio.run(_postgres(f'CREATE SCHEMA "{schema}"'))
    try:
        yield {"NEXY_STORAGE__URL": POSTGRES_URL, "NEXY_STORAGE__SCHEMA_NAME": schema}
    finally:
        asyncio.run(_postgres(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


async def _postgres(statement: str, *args: object) -> list[tuple[object, ...]]:
    import asyncpg  # type: ignore[import-untyped]  # only the PostgreSQL run needs it

    dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncio.wait_for(asyncpg.connect(dsn), 10)
    try:
        rows = await asyncio.wait_for(connection.fetch(statement, *args), 30)
        return [tuple(row) for row in rows]
    finally:
        await connection.close()


def _count_recorded(storage: str, data: Path, env: dict[str, str], sessions: list[str]) -> int:
    if not sessions:
        return 0
    if storage == "sqlite":
        connection = sqlite3.connect(data / "nexy.db", timeout=10)
        try:
            marks = ",".join("?" * len(sessions))
            query = f"SELECT count(DISTINCT session_id) FROM turns WHERE session_id IN ({marks})"
            (count,) = connection.execute(query, sessions).fetchone()
        finally:
            connection.close()
        return int(count)
    schema = env["NEXY_STORAGE__SCHEMA_NAME"]
    query = f'SELECT count(DISTINCT session_id) FROM "{schema}".turns WHERE session_id = ANY($1)'
    rows = asyncio.run(_postgres(query, sessions))
    return int(str(rows[0][0]))
