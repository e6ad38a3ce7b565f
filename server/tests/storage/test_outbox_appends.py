"""Group commit: puts that arrive while an append is written share the next one.

The database is unreachable in these tests, so what ``put`` wrote stays in the spool file and
can be read back as a crash would leave it.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from nexy.components import State
from nexy.storage import AddUsage, Outbox
from nexy.storage.spool import NewRow, Spool
from nexy.usage import UsageRecord
from tests.waiting import eventually

K = 40


class Unreachable:
    """A database that never answers: every write fails like an outage."""

    async def _down(self, *_: Any, **__: Any) -> Any:
        raise ConnectionRefusedError("database is down")

    save_memory = update_memory = add_turn = add_usage = _down


def usage(tokens: int) -> AddUsage:
    return AddUsage(UsageRecord("hw-1", "s-1", "llm", tokens, 1, "m"))


def on_disk(path: Path) -> list[int]:
    """The token counts of the queued writes, in queue order, from the file itself."""
    with sqlite3.connect(path) as spool:
        bodies = [body for (body,) in spool.execute("SELECT body FROM queue ORDER BY seq")]
    spool.close()
    return [json.loads(body)["data"]["input_tokens"] for body in bodies]


@pytest.fixture
def appends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each append (one transaction each); each takes 20 ms, as a busy disk."""
    sizes: list[int] = []
    real_append = Spool.append

    def slow_append(self: Spool, rows: list[NewRow]) -> None:
        time.sleep(0.02)  # the outbox's worker thread, not the event loop
        real_append(self, rows)
        sizes.append(len(rows))

    monkeypatch.setattr(Spool, "append", slow_append)
    return sizes


@pytest.fixture
async def box(tmp_path: Path):
    outbox = Outbox(Unreachable(), tmp_path / "queue.db", retry_initial=5, retry_max=5)  # type: ignore[arg-type]
    await outbox.start()
    yield outbox
    await outbox.close(timeout=0.05)


async def test_concurrent_puts_share_one_disk_write_in_call_order(
    box: Outbox, appends: list[int], tmp_path: Path
):
    path = tmp_path / "queue.db"
    seen_on_return: list[bool] = []

    async def put(tokens: int) -> None:
        await box.put(usage(tokens))
        seen_on_return.append(tokens in on_disk(path))  # on disk the moment put returns

    await asyncio.gather(*(put(tokens) for tokens in range(K)))
    assert seen_on_return == [True] * K
    assert on_disk(path) == list(range(K))  # the order of the put calls
    # The first put found the disk idle; the others came while it was written and shared one.
    assert appends == [1, K - 1]
    assert box.pending() == K


async def test_a_failed_append_fails_each_of_its_callers_and_the_next_one_works(
    box: Outbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    real_append = Spool.append
    calls: list[int] = []

    def append_failing_the_second(self: Spool, rows: list[NewRow]) -> None:
        calls.append(len(rows))
        if len(calls) == 2:
            raise sqlite3.OperationalError("disk I/O error")
        real_append(self, rows)

    monkeypatch.setattr(Spool, "append", append_failing_the_second)
    results = await asyncio.gather(*(box.put(usage(t)) for t in range(5)), return_exceptions=True)
    assert calls == [1, 4]
    assert results[0] is None
    assert all(isinstance(result, sqlite3.OperationalError) for result in results[1:])
    assert box.pending() == 1  # only what reached the disk counts
    await box.put(usage(99))
    assert box.status().state is not State.DOWN
    assert on_disk(tmp_path / "queue.db") == [0, 99] and box.pending() == 2


async def test_a_cancelled_caller_s_write_still_reaches_the_disk(
    box: Outbox, appends: list[int], tmp_path: Path
):
    tasks = [asyncio.create_task(box.put(usage(tokens))) for tokens in range(K)]
    await asyncio.sleep(0)  # every put has handed its write over
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(result, asyncio.CancelledError) for result in results)
    await eventually(lambda: box.pending() == K)
    assert on_disk(tmp_path / "queue.db") == list(range(K))


async def test_close_waits_for_the_writes_already_put(
    box: Outbox, appends: list[int], tmp_path: Path
):
    tasks = [asyncio.create_task(box.put(usage(tokens))) for tokens in range(K)]
    await asyncio.sleep(0)
    await box.close(timeout=0.01)  # the database is down: nothing is applied
    assert await asyncio.gather(*tasks) == [None] * K  # every caller saw its write land
    assert on_disk(tmp_path / "queue.db") == list(range(K)) and box.pending() == K
    with pytest.raises(RuntimeError):
        await box.put(usage(K))


def test_one_append_is_one_transaction(tmp_path: Path):
    spool = Spool.open(tmp_path / "queue.db")
    try:
        rows: list[Any] = [("a", "hw", "{}"), ("b", "hw", "{}"), ("c", "hw", None)]
        with pytest.raises(sqlite3.IntegrityError):  # the third row breaks NOT NULL
            spool.append(rows)
        assert spool.count() == 0  # so the first two are not there either
        spool.append(rows[:2])
        assert spool.count() == 2
    finally:
        spool.close()
