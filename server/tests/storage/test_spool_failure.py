"""A failing local write queue makes the replica unready; a database outage does not."""

from __future__ import annotations

import sqlite3

import aiohttp

from nexy.components import State
from tests.fakes.client import commit, run_turn
from tests.waiting import eventually


async def _ready_status(port: int) -> int:
    url = f"http://127.0.0.1:{port}/ready"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status


async def test_a_failing_spool_is_down_and_unready_until_it_works_again(server, monkeypatch):
    spool = server.app.outbox._spool
    working_append = spool.append

    def broken_append(*_: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(spool, "append", broken_append)
    # The turn is still answered (the client is never left silent) ...
    result = await run_turn(server.stub, commit("hello"))
    assert result.is_spoken_turn()
    # ... but this replica can no longer keep what it serves: take it out of rotation.
    await eventually(lambda: server.app.outbox.status().state is State.DOWN)
    assert "local write queue failing" in (server.app.outbox.status().reason or "")
    assert await _ready_status(server.app.http_port) == 503

    monkeypatch.setattr(spool, "append", working_append)
    result = await run_turn(server.stub, commit("hello again"))
    assert result.is_spoken_turn()
    await eventually(lambda: server.app.outbox.status().state is State.READY)
    assert await _ready_status(server.app.http_port) == 200
