"""A turn's record is on local disk before its end_message, on SQLite and on PostgreSQL.

The app's own outbox is kept from applying anything (its database calls fail as in an outage),
so the record can only be in the spool file; and the spool is slowed down a little, as a busy
disk would be, so a record written after the end_message is reliably not there yet.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from pydantic import SecretStr

import nexy.storage.outbox as outbox_module
from nexy.storage import Outbox, Repository
from nexy.storage.spool import Spool
from nexy.transport.grpc import streaming_pb2 as pb
from tests.fakes.client import HARDWARE_ID, commit
from tests.fakes.server import make_settings
from tests.storage.conftest import Backend

pytestmark = pytest.mark.asyncio

DISK_SECONDS = 0.05  # each spool append takes this long (a busy disk)


@pytest.fixture
async def frozen_server(backend: Backend, tmp_path: Path, server_factory, monkeypatch):
    """A server on the backend whose outbox queues writes but never applies them."""
    storage = make_settings().storage.model_copy(
        update={
            "url": SecretStr(backend.url),
            "schema_name": backend.schema,
            "outbox_path": tmp_path / "outbox.db",
            "retry_initial_seconds": 0.05,
            "retry_max_seconds": 0.1,
            "close_timeout_seconds": 0.1,
        }
    )
    server = await server_factory(make_settings().model_copy(update={"storage": storage}))
    real_apply = outbox_module.apply_op

    async def apply_unless_frozen(target: Any, op: Any, op_id: str) -> None:
        if target is server.app.repository:
            raise OSError("database unreachable")  # an outage: the write stays queued
        await real_apply(target, op, op_id)

    async def apply_batch_frozen(batch: Any) -> None:
        raise OSError("database unreachable")  # a batch of queued writes: the same outage

    real_append = Spool.append

    def slow_append(self: Spool, *args: Any) -> None:
        time.sleep(DISK_SECONDS)  # the outbox's own worker thread, not the event loop
        real_append(self, *args)

    monkeypatch.setattr(outbox_module, "apply_op", apply_unless_frozen)
    monkeypatch.setattr(server.app.repository, "apply_batch", apply_batch_frozen)
    monkeypatch.setattr(Spool, "append", slow_append)
    return server


def _queued_turns(spool: Path, session_id: str) -> int:
    with sqlite3.connect(spool) as connection:
        bodies = [body for (body,) in connection.execute("SELECT body FROM queue")]
    return sum(1 for body in bodies if '"add_turn"' in body and session_id in body)


async def _until_end_message(call: grpc.aio.UnaryStreamCall) -> pb.StreamResponse:
    while True:
        response = await call.read()
        assert response is not grpc.aio.EOF
        if response.HasField("end_message"):
            return response  # type: ignore[no-any-return]


async def test_the_record_is_on_disk_when_the_end_message_arrives(frozen_server, tmp_path):
    request = commit("hello")
    call = frozen_server.stub.StreamAudio(request)
    await _until_end_message(call)
    # No await since the end_message arrived: this is the disk as a crash would leave it.
    assert _queued_turns(tmp_path / "outbox.db", request.session_id) == 1
    await call.code()
    await frozen_server.app.journal.drain()
    # The journal worker did not write the record a second time.
    assert _queued_turns(tmp_path / "outbox.db", request.session_id) == 1


async def test_the_record_survives_a_crash_right_after_the_end_message(
    frozen_server, backend: Backend, tmp_path
):
    request = commit("remember this turn")
    call = frozen_server.stub.StreamAudio(request)
    await _until_end_message(call)
    # kill -9 now: copy what is committed in the spool file (synchronous=FULL: on disk).
    crashed = tmp_path / "crashed" / "outbox.db"
    crashed.parent.mkdir()
    with sqlite3.connect(tmp_path / "outbox.db") as source, sqlite3.connect(crashed) as copy:
        source.backup(copy)
    call.cancel()
    # The next start: a new outbox on the crashed spool, its database working again.
    database = backend.database()
    await database.start()
    replay = Outbox(Repository(database), crashed, retry_initial=0.05, retry_max=0.1)
    await replay.start()
    try:
        async with asyncio.timeout(10):
            while replay.pending():  # noqa: ASYNC110 - the outbox has no "empty" event
                await asyncio.sleep(0.01)
        turns = (await Repository(database).export_device(HARDWARE_ID))["turns"]
    finally:
        await replay.close()
        await database.close()
    assert [(t["session_id"], t["outcome"]) for t in turns] == [(request.session_id, "completed")]
    assert turns[0]["reply_text"]
