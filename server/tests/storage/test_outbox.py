"""The outbox on both backends: outages, order, restarts, close, concurrency, bounded memory."""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
import tracemalloc
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from nexy.components import State
from nexy.storage import (
    AddTurn,
    AddUsage,
    Database,
    Exchange,
    Outbox,
    Repository,
    SaveMemory,
    TurnRecord,
)
from nexy.storage.ops import WriteOp
from nexy.storage.spool import SpoolInUseError
from nexy.usage import UsageRecord
from tests.storage.conftest import Backend
from tests.waiting import eventually

FAST = {"retry_initial": 0.01, "retry_max": 0.04}


class FlakyRepository:
    """The real repository behind a switch: while ``down``, every write fails like an outage.

    It applies batches too, so these tests run the outbox's batch path and, when a batch fails,
    its one-at-a-time path.
    """

    def __init__(self, inner: Repository) -> None:
        self.inner = inner
        self.down = False
        self.attempts = 0
        self.lose_next_ack = False  # store the write, then fail as if the reply was lost

    async def _gate(self) -> None:
        self.attempts += 1
        if self.down:
            raise ConnectionRefusedError("database is down")

    async def save_memory(
        self,
        hardware_id: str,
        facts: list[str],
        recent: list[Exchange],
        *,
        at: datetime | None = None,
    ) -> None:
        await self._gate()
        await self.inner.save_memory(hardware_id, facts, recent, at=at)

    async def add_turn(
        self, turn: TurnRecord, *, at: datetime | None = None, op_id: str | None = None
    ) -> bool:
        await self._gate()
        if turn.prompt == "poison":
            raise ValueError("the database refuses this row")
        stored = await self.inner.add_turn(turn, at=at, op_id=op_id)
        if self.lose_next_ack:
            self.lose_next_ack = False
            raise ConnectionResetError("connection lost before the commit was acknowledged")
        return stored

    async def add_usage(
        self, usage: UsageRecord, *, at: datetime | None = None, op_id: str | None = None
    ) -> bool:
        await self._gate()
        return await self.inner.add_usage(usage, at=at, op_id=op_id)

    async def update_memory(self, hardware_id: str, **change: Any) -> None:
        await self._gate()
        await self.inner.update_memory(hardware_id, **change)

    async def apply_batch(self, batch: Sequence[tuple[WriteOp, str]]) -> None:
        """The real batch (one transaction) behind the same switches."""
        await self._gate()
        if any(isinstance(op, AddTurn) and op.turn.prompt == "poison" for op, _ in batch):
            raise ValueError("the database refuses a row of this batch")
        await self.inner.apply_batch(batch)
        if self.lose_next_ack:
            self.lose_next_ack = False
            raise ConnectionResetError("connection lost before the commit was acknowledged")


def turn_op(prompt: str, hardware_id: str = "hw-1") -> AddTurn:
    record = TurnRecord("s-1", hardware_id, prompt, "reply", "completed", 5.0, "local", "espeak")
    return AddTurn(record)


def usage_op(tokens: int, hardware_id: str = "hw-1") -> AddUsage:
    return AddUsage(UsageRecord(hardware_id, "s-1", "llm", tokens, 1, "m"))


@pytest.fixture
def flaky(repository: Repository) -> FlakyRepository:
    return FlakyRepository(repository)


@pytest.fixture
async def outbox(flaky: FlakyRepository, tmp_path: Path):
    box = Outbox(flaky, tmp_path / "outbox" / "queue.db", **FAST)
    await box.start()
    yield box
    await box.close(timeout=1)


async def prompts(repository: Repository, hardware_id: str = "hw-1") -> list[str]:
    return [t["prompt"] for t in (await repository.export_device(hardware_id))["turns"]]


async def test_writes_during_an_outage_are_applied_in_order_after_it(
    outbox: Outbox, flaky: FlakyRepository, repository: Repository, caplog: pytest.LogCaptureFixture
):
    flaky.down = True
    with caplog.at_level(logging.INFO, logger="nexy.storage.outbox"):
        for index in range(20):
            await outbox.put(turn_op(f"p{index:02d}"))
        await outbox.put(SaveMemory("hw-1", ("fact",), (Exchange("q", "a"),)))
        await outbox.put(usage_op(42))
        await eventually(lambda: flaky.attempts >= 5)  # several retries, backing off
        status = outbox.status()
        assert status.state is State.DEGRADED
        assert status.reason.startswith("22 writes waiting")
        assert outbox.pending() == 22
        flaky.down = False
        await eventually(lambda: outbox.pending() == 0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "one warning per outage, not per retry"
    assert "recovered" in caplog.text
    assert outbox.status().state is State.READY
    assert await prompts(repository) == [f"p{index:02d}" for index in range(20)]
    assert (await repository.load_memory("hw-1")).facts == ["fact"]
    assert len((await repository.export_device("hw-1"))["usage"]) == 1


async def test_the_backoff_does_not_spin(outbox: Outbox, flaky: FlakyRepository):
    flaky.down = True
    await outbox.put(usage_op(1))
    await asyncio.sleep(0.3)
    # 0.01 s doubling up to 0.04 s with jitter: roughly ten attempts, never hundreds.
    assert 3 <= flaky.attempts <= 40
    await outbox.close(timeout=0.05)


async def test_queued_writes_survive_a_restart(
    flaky: FlakyRepository, repository: Repository, tmp_path: Path
):
    path = tmp_path / "queue.db"
    first = Outbox(flaky, path, **FAST)
    await first.start()
    flaky.down = True
    for index in range(5):
        await first.put(turn_op(f"p{index}"))
    await first.close(timeout=0.05)  # the database is still down: the writes stay on disk
    assert first.pending() == 5 and first.status().reason == "closed"
    with pytest.raises(RuntimeError):
        await first.put(turn_op("too late"))

    second = Outbox(repository, path, **FAST)
    await second.start()
    try:
        await eventually(lambda: second.pending() == 0)
    finally:
        await second.close()
    assert await prompts(repository) == [f"p{index}" for index in range(5)]


async def test_a_write_stored_before_a_lost_reply_is_not_duplicated(
    outbox: Outbox, flaky: FlakyRepository, repository: Repository
):
    flaky.lose_next_ack = True
    await outbox.put(turn_op("once"))
    await outbox.put(turn_op("after"))
    await eventually(lambda: outbox.pending() == 0)
    assert await prompts(repository) == ["once", "after"]


async def test_close_flushes_what_is_queued(
    flaky: FlakyRepository, repository: Repository, tmp_path
):
    box = Outbox(flaky, tmp_path / "queue.db", **FAST)
    await box.start()
    for index in range(30):
        await box.put(usage_op(index))
    await box.close(timeout=5)
    assert box.pending() == 0
    stored = (await repository.export_device("hw-1"))["usage"]
    assert [u["input_tokens"] for u in stored] == list(range(30))


async def test_concurrent_puts_from_many_tasks(outbox: Outbox, repository: Repository):
    async def producer(task: int) -> None:
        for step in range(5):
            await outbox.put(turn_op(f"{task}:{step}", hardware_id=f"hw-{task % 4}"))

    await asyncio.gather(*(producer(task) for task in range(40)))
    await eventually(lambda: outbox.pending() == 0)
    seen: list[str] = []
    for device in range(4):
        seen += await prompts(repository, f"hw-{device}")
    assert sorted(seen) == sorted(f"{t}:{s}" for t in range(40) for s in range(5))
    for task in range(40):  # each producer's own writes keep their order
        mine = [p for p in seen if p.startswith(f"{task}:")]
        assert mine == [f"{task}:{step}" for step in range(5)]


async def test_cancelled_puts_keep_the_count_true(
    outbox: Outbox, flaky: FlakyRepository, tmp_path: Path
):
    flaky.down = True
    tasks = [asyncio.create_task(outbox.put(usage_op(index))) for index in range(50)]
    await asyncio.sleep(0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0.05)  # let submitted appends land
    with sqlite3.connect(tmp_path / "outbox" / "queue.db") as spool:
        (on_disk,) = spool.execute("SELECT count(*) FROM queue").fetchone()
    spool.close()
    assert outbox.pending() == on_disk
    flaky.down = False
    await eventually(lambda: outbox.pending() == 0)


async def test_the_queue_lives_on_disk_not_in_memory(outbox: Outbox, flaky: FlakyRepository):
    flaky.down = True
    payload = "x" * 4000
    await outbox.put(turn_op(payload))  # warm up caches before measuring
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(500):  # 2 MB of prompts
            await outbox.put(turn_op(payload))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    await outbox.close(timeout=0.05)
    assert outbox.pending() == 501
    # Held in memory, the queue alone would take over 2 MB; at most one read batch is live.
    assert grown < 1024 * 1024, f"memory grew by {grown} bytes"


async def test_a_refused_write_is_set_aside_and_the_rest_continue(
    flaky: FlakyRepository, repository: Repository, tmp_path: Path
):
    path = tmp_path / "queue.db"
    box = Outbox(flaky, path, **FAST)
    await box.start()
    for prompt in ("before", "poison", "after"):
        await box.put(turn_op(prompt))
    await box.close(timeout=5)
    assert box.pending() == 0
    assert await prompts(repository) == ["before", "after"]
    with sqlite3.connect(path) as spool:
        dead = spool.execute("SELECT body, error FROM dead").fetchall()
    spool.close()
    assert len(dead) == 1 and "poison" in dead[0][0] and "ValueError" in dead[0][1]


async def test_discard_drops_one_devices_queued_writes(
    outbox: Outbox, flaky: FlakyRepository, repository: Repository
):
    flaky.down = True
    for index in range(3):
        await outbox.put(turn_op(f"a{index}", hardware_id="hw-a"))
        await outbox.put(turn_op(f"b{index}", hardware_id="hw-b"))
    assert await outbox.discard("hw-a") == 3
    assert outbox.pending() == 3
    flaky.down = False
    await eventually(lambda: outbox.pending() == 0)
    assert await prompts(repository, "hw-a") == []
    assert await prompts(repository, "hw-b") == ["b0", "b1", "b2"]


async def test_usage_sink_seam_and_lifecycle(flaky: FlakyRepository, repository, tmp_path: Path):
    box = Outbox(flaky, tmp_path / "queue.db", **FAST)
    assert box.status().state is State.DOWN and box.status().reason == "not started"
    with pytest.raises(RuntimeError):
        await box.put(usage_op(1))
    await box.start()
    assert box.status().state is State.READY
    with pytest.raises(SpoolInUseError):  # a second owner of the same file is refused
        await Outbox(flaky, tmp_path / "queue.db").start()
    await box.record(UsageRecord("hw-1", "s-1", "llm", 9, 1, "m"))
    await box.close()  # the default close_timeout flushes it
    assert box.status().reason == "closed"
    assert [u["input_tokens"] for u in (await repository.export_device("hw-1"))["usage"]] == [9]


async def test_a_real_outage_then_replay_on_the_working_backend(
    backend: Backend, repository: Repository, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """Writes queued against an unreachable PostgreSQL are applied after a restart."""
    secret = "hunter2-secret"
    down = Database(f"postgresql+asyncpg://nexy:{secret}@127.0.0.1:1/nexy")
    await down.start()
    path = tmp_path / "queue.db"
    box = Outbox(Repository(down), path, **FAST)
    await box.start()
    with caplog.at_level(logging.INFO, logger="nexy"):
        await box.put(turn_op("queued while down"))
        await box.put(SaveMemory("hw-1", ("kept",), ()))
        await eventually(lambda: box.status().state is State.DEGRADED)
        assert down.status().state is State.DOWN
        await box.close(timeout=0.05)
    await down.close()
    assert secret not in caplog.text and box.pending() == 2

    replay = Outbox(repository, path, **FAST)
    await replay.start()
    await replay.close(timeout=5)
    assert replay.pending() == 0
    assert await prompts(repository) == ["queued while down"]
    assert (await repository.load_memory("hw-1")).facts == ["kept"]
