"""The outbox applies queued writes in batches, on both backends: one transaction per batch.

The writes are queued on disk first (as a previous run would leave them), so the flusher finds
them all at once. A ``Ledger`` watches the engine: which write statements each committed
transaction held, and how many transactions with writes were rolled back. That is what "applied
exactly once" means here: replays of turns and usage are harmless by design (op_id), so the
stored rows alone could not tell.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from nexy.components import State
from nexy.storage import AddTurn, AddUsage, Database, Exchange, Outbox, Repository, TurnRecord
from nexy.storage.ops import UpdateMemory, WriteOp, encode_op
from nexy.storage.outbox import BATCH
from nexy.storage.spool import Spool, read_dead
from nexy.usage import UsageRecord
from tests.storage.conftest import Backend
from tests.waiting import eventually

FAST = {"retry_initial": 0.01, "retry_max": 0.04}
HW = "hw-batch"


def turn(prompt: str) -> AddTurn:
    return AddTurn(TurnRecord("s-1", HW, prompt, "reply", "completed", 5.0, "local", "espeak"))


def usage(tokens: int) -> AddUsage:
    return AddUsage(UsageRecord(HW, "s-1", "llm", tokens, 1, "m"))


def exchange(user: str) -> UpdateMemory:
    return UpdateMemory(HW, exchange=Exchange(user, "ok"))


def queue_on_disk(path: Path, ops: list[WriteOp]) -> None:
    """What a previous run leaves behind: the writes in the spool, none applied."""
    spool = Spool.open(path)
    try:
        spool.append([(uuid4().hex, op.hardware_id, encode_op(op)) for op in ops])
    finally:
        spool.close()


class Ledger:
    """The write statements of every committed transaction, from the engine's own events."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.committed: list[list[str]] = []  # per transaction: "INSERT turns", "UPDATE devices"
        self.rolled_back = 0  # transactions with writes that were rolled back
        self._open: dict[int, list[str]] = {}
        sync = engine.sync_engine
        event.listen(sync, "after_cursor_execute", self._executed)
        event.listen(sync, "commit", self._commit)
        event.listen(sync, "rollback", self._rollback)

    def count(self, write: str) -> int:
        """How many committed statements were this write, e.g. ``"INSERT turns"``."""
        return sum(statements.count(write) for statements in self.committed)

    def _executed(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        verb = words[0].upper()
        if verb in ("INSERT", "DELETE"):
            self._open.setdefault(id(conn), []).append(f"{verb} {words[2].strip(chr(34))}")
        elif verb == "UPDATE":
            self._open.setdefault(id(conn), []).append(f"{verb} {words[1].strip(chr(34))}")

    def _commit(self, conn: Any) -> None:
        if statements := self._open.pop(id(conn), None):
            self.committed.append(statements)

    def _rollback(self, conn: Any) -> None:
        if self._open.pop(id(conn), None):
            self.rolled_back += 1


class Outage:
    """The database goes away after ``after`` write statements, until ``down`` is cleared."""

    def __init__(self, engine: AsyncEngine, after: int) -> None:
        self.after = after
        self.down = False
        self.armed = False
        self.failures = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self.armed and not self.down and statement.split()[0].upper() in ("INSERT", "UPDATE"):
            self.after -= 1
            self.down = self.after < 0
        if self.down:
            self.failures += 1
            raise ConnectionResetError("the database went away")


async def prompts(repository: Repository) -> list[str]:
    return [t["prompt"] for t in (await repository.export_device(HW))["turns"]]


async def drain(repository: Repository, path: Path, **options: Any) -> Outbox:
    box = Outbox(repository, path, **FAST, **options)
    await box.start()
    try:
        await eventually(lambda: box.pending() == 0, timeout=15)
    finally:
        await box.close(timeout=1)
    return box


async def test_a_batch_is_one_transaction_and_one_spool_delete(
    database: Database, repository: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    turns = 30  # 90 writes: a full batch, then the rest
    ops: list[WriteOp] = []
    for index in range(turns):
        ops += [turn(f"p{index:02d}"), exchange(f"q{index:02d}"), usage(index)]
    path = tmp_path / "queue.db"
    queue_on_disk(path, ops)
    removed: list[int] = []
    real_remove = Spool.remove

    def counting_remove(self: Spool, seqs: list[int]) -> None:
        removed.append(len(seqs))
        real_remove(self, seqs)

    monkeypatch.setattr(Spool, "remove", counting_remove)
    ledger = Ledger(database.engine)
    await drain(repository, path)

    assert removed == [BATCH, len(ops) - BATCH]  # one spool statement per batch
    assert len(ledger.committed) == 2 and ledger.rolled_back == 0  # one transaction per batch
    assert ledger.count("INSERT turns") == turns and ledger.count("UPDATE devices") == turns
    assert ledger.count("INSERT token_usage") == turns
    assert await prompts(repository) == [f"p{index:02d}" for index in range(turns)]
    recent = (await repository.load_memory(HW)).recent
    assert [item.user for item in recent] == [f"q{index:02d}" for index in range(turns - 6, turns)]
    stored = (await repository.export_device(HW))["usage"]
    assert [row["input_tokens"] for row in stored] == list(range(turns))


async def test_a_refused_write_in_a_batch_is_set_aside_alone(
    backend: Backend, database: Database, repository: Repository, tmp_path: Path
):
    # 2**64 fits no integer column; on PostgreSQL a NUL byte is refused by the server itself,
    # which aborts the transaction: it must be rolled back before the writes are tried alone.
    refused: list[WriteOp] = [usage(2**64)]
    if backend.name == "postgresql":
        refused.append(turn("nul\x00byte"))
    good: list[WriteOp] = [turn("a0"), exchange("a0"), turn("a1"), exchange("a1")]
    rest: list[WriteOp] = [turn("b0"), exchange("b0"), turn("b1"), usage(7)]
    path = tmp_path / "queue.db"
    queue_on_disk(path, [*good, *refused, *rest])
    ledger = Ledger(database.engine)
    box = await drain(repository, path)

    # The batch was tried once and rolled back; then each write alone, each good one once.
    assert ledger.rolled_back == 1
    assert len(ledger.committed) == len(good) + len(rest)
    assert ledger.count("INSERT turns") == 4 and ledger.count("UPDATE devices") == 3
    assert ledger.count("INSERT token_usage") == 1
    assert await prompts(repository) == ["a0", "a1", "b0", "b1"]
    assert [e.user for e in (await repository.load_memory(HW)).recent] == ["a0", "a1", "b0"]
    assert [row["input_tokens"] for row in (await repository.export_device(HW))["usage"]] == [7]
    dead = read_dead(path)
    assert sorted(seq for seq, *_ in dead) == list(range(5, 5 + len(refused)))
    assert box.stats().refused == len(refused) and box.stats().dead == len(refused)
    assert database.status().state is State.READY  # a refused row says nothing about the db


async def test_an_outage_in_the_middle_of_a_batch_applies_nothing_and_loses_nothing(
    database: Database, repository: Repository, tmp_path: Path
):
    ops: list[WriteOp] = []
    for index in range(5):
        ops += [turn(f"p{index}"), exchange(f"q{index}"), usage(index)]
    path = tmp_path / "queue.db"
    queue_on_disk(path, ops)
    ledger = Ledger(database.engine)
    outage = Outage(database.engine, after=4)  # mid-batch: after a turn and a memory update
    outage.armed = True
    # Each round is the batch, then its first write alone, then a backoff of 0.1-0.2 s.
    box = Outbox(repository, path, retry_initial=0.2, retry_max=0.2)
    await box.start()
    try:
        await eventually(lambda: outage.down and box.status().state is State.DEGRADED)
        # Two rounds, and the database comes back during a backoff, not between a failed batch
        # and its one-at-a-time retry (that works too, but one write per transaction).
        await eventually(lambda: outage.failures >= 4 and outage.failures % 2 == 0)
        assert box.pending() == len(ops) and box.stats().dead == 0
        assert ledger.committed == [] and ledger.rolled_back == 1  # the batch's first writes
        outage.armed = outage.down = False
        await eventually(lambda: box.pending() == 0, timeout=10)
    finally:
        await box.close(timeout=1)
    assert box.status().reason == "closed" and box.stats().dead == 0
    # Back again, the whole batch goes in one transaction, each write once.
    assert len(ledger.committed) == 1
    assert ledger.count("INSERT turns") == 5 and ledger.count("UPDATE devices") == 5
    assert await prompts(repository) == [f"p{index}" for index in range(5)]
    assert [e.user for e in (await repository.load_memory(HW)).recent] == [
        f"q{index}" for index in range(5)
    ]
    with sqlite3.connect(path) as spool:
        assert spool.execute("SELECT count(*) FROM queue").fetchone() == (0,)
    spool.close()


class GatedRepository(Repository):
    """The real repository whose batches wait at a gate, to catch the flusher mid-batch."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def apply_batch(self, batch: Sequence[tuple[WriteOp, str]]) -> None:
        self.entered.set()
        await self.gate.wait()
        await super().apply_batch(batch)


async def test_discard_waits_for_the_batch_being_applied(database: Database, tmp_path: Path):
    path = tmp_path / "queue.db"
    queue_on_disk(path, [turn(f"p{index}") for index in range(5)])
    repository = GatedRepository(database)
    box = Outbox(repository, path, **FAST)
    await box.start()
    try:
        await asyncio.wait_for(repository.entered.wait(), 5)
        await box.put(turn("after the batch was read"))
        discard = asyncio.create_task(box.discard(HW))
        await asyncio.sleep(0.05)
        assert not discard.done()  # not while the batch is in flight
        repository.gate.set()
        assert await asyncio.wait_for(discard, 5) == 1  # only what the batch did not hold
        await eventually(lambda: box.pending() == 0)
    finally:
        await box.close(timeout=1)
    assert await prompts(repository) == [f"p{index}" for index in range(5)]
