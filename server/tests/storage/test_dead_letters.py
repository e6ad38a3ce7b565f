"""Writes the database refuses are set aside; outages are still waited out, never buried."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from nexy.components import State
from nexy.metrics import Metrics
from nexy.storage import AddTurn, AddUsage, Database, Exchange, Outbox, Repository, TurnRecord
from nexy.storage.ops import WriteOp
from nexy.storage.spool import read_dead
from nexy.storage.verdict import Verdict, classify
from nexy.usage import UsageRecord
from tests.fakes.tcp_proxy import OutageProxy
from tests.storage.conftest import POSTGRES_URL, RUN_TAG, Backend, _postgres
from tests.storage.conftest import require_postgres as _require_postgres
from tests.waiting import eventually

FAST = {"retry_initial": 0.01, "retry_max": 0.04}


def turn(prompt: str, hardware_id: str = "hw-1") -> AddTurn:
    record = TurnRecord("s-1", hardware_id, prompt, "reply", "completed", 5.0, "local", "espeak")
    return AddTurn(record)


def usage(tokens: int = 1, model: str = "m", hardware_id: str = "hw-1") -> AddUsage:
    return AddUsage(UsageRecord(hardware_id, "s-1", "llm", tokens, 1, model))


def scrape(metrics: Metrics) -> dict[str, float]:
    text = metrics.render().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("nexy_outbox_")
    }


async def test_poisoned_rows_are_set_aside_and_the_queue_moves_on(
    backend: Backend, database: Database, repository: Repository, tmp_path: Path
):
    first = turn("good-1")
    # Each of these stopped every write forever on PostgreSQL: a class 22 error looked like an
    # outage, so the same row was retried for ever.
    poisoned: dict[str, WriteOp] = {
        "nul in prompt": turn("before\x00after"),
        "nul in hardware_id": turn("fine", hardware_id="hw\x00x"),
        "10k-char model": usage(model="m" * 10_000),
        "2**40 tokens": usage(tokens=2**40),
        "2**64 tokens": usage(tokens=2**64),
    }
    # SQLite stores text of any length, NUL bytes and 64-bit integers; only 2**64 is refused.
    refused = set(poisoned) if backend.name == "postgresql" else {"2**64 tokens"}
    path = tmp_path / "queue.db"
    # No probe: an unknown error would be retried for ever, so only the verdict can pass this.
    box = Outbox(repository, path, **FAST, max_attempts=10_000)
    metrics = Metrics()
    metrics.track_outbox(box.stats)
    await box.start()
    try:
        await box.put(first)
        for op in poisoned.values():
            await box.put(op)
        await box.put(turn("good-2"))
        await eventually(lambda: box.pending() == 0, timeout=10)
    finally:
        await box.close(timeout=1)

    exported = await repository.export_device("hw-1")
    prompts = [t["prompt"] for t in exported["turns"]]
    stored_poison = [] if "nul in prompt" in refused else ["before\x00after"]
    assert prompts == ["good-1", *stored_poison, "good-2"]
    dead = read_dead(path)
    assert len(dead) == len(refused)
    for _seq, _hardware_id, error, _at in dead:
        # The driver's reason only: no SQL, no parameters (they hold what users said).
        assert error and not any(text in error for text in ("before", "mmmmm", str(2**40)))
    assert scrape(metrics) == {
        "nexy_outbox_pending": 0.0,
        "nexy_outbox_dead_letters": float(len(refused)),
        "nexy_outbox_refused_total": float(len(refused)),
    }
    # A refused row says nothing about the database's health: /ready must not turn 503.
    assert database.status().state is State.READY

    reopened = Outbox(repository, path, **FAST)
    await reopened.start()
    try:
        stats = reopened.stats()
    finally:
        await reopened.close(timeout=1)
    assert (stats.pending, stats.dead, stats.refused) == (0, len(refused), 0)


@pytest.fixture
async def postgres_schema() -> AsyncIterator[str]:
    _require_postgres()
    schema = f"{RUN_TAG}_dead_letters"
    await _postgres(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    try:
        yield schema
    finally:
        await _postgres(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_a_real_outage_is_waited_out_not_buried(postgres_schema: str, tmp_path: Path):
    url = make_url(POSTGRES_URL)
    proxy = OutageProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
    database = Database(proxied, schema=postgres_schema)
    await database.start()
    repository = Repository(database)
    # The strictest setting: one unexplained failure while the database answers buries a row.
    box = Outbox(repository, tmp_path / "queue.db", **FAST, probe=database.ping, max_attempts=1)
    await box.start()
    try:
        await box.put(turn("before"))
        await eventually(lambda: box.pending() == 0)
        await proxy.cut()
        for index in range(3):
            await box.put(turn(f"during-{index}"))
        await eventually(lambda: box.status().state is State.DEGRADED)
        await asyncio.sleep(0.5)  # many retries, each a real connection failure
        assert box.pending() == 3 and box.stats().dead == 0
        await proxy.restore()
        await eventually(lambda: box.pending() == 0, timeout=15)
        assert box.stats().dead == 0
        prompts = [t["prompt"] for t in (await repository.export_device("hw-1"))["turns"]]
        assert prompts == ["before", "during-0", "during-1", "during-2"]
    finally:
        await box.close(timeout=1)
        await database.close()
        await proxy.close()


class StubbornTarget:
    """Stores writes in a list; one prompt always fails with an error nobody can classify."""

    def __init__(self) -> None:
        self.turns: list[str] = []
        self.attempts = 0

    async def save_memory(
        self,
        hardware_id: str,
        facts: list[str],
        recent: list[Exchange],
        *,
        at: datetime | None = None,
    ) -> None:
        raise NotImplementedError

    async def update_memory(self, hardware_id: str, **_: object) -> None:
        raise NotImplementedError

    async def add_turn(
        self, record: TurnRecord, *, at: datetime | None = None, op_id: str | None = None
    ) -> bool:
        if record.prompt == "stubborn":
            self.attempts += 1
            raise RuntimeError("something odd happened")
        self.turns.append(record.prompt)
        return True

    async def add_usage(
        self, record: UsageRecord, *, at: datetime | None = None, op_id: str | None = None
    ) -> bool:
        raise NotImplementedError


async def _stubborn_run(tmp_path: Path, answers: bool) -> tuple[StubbornTarget, Outbox]:
    target = StubbornTarget()
    probes = 0

    async def probe() -> bool:
        nonlocal probes
        probes += 1
        return answers

    box = Outbox(target, tmp_path / "queue.db", **FAST, probe=probe, max_attempts=3)
    await box.start()
    for prompt in ("one", "stubborn", "two"):
        await box.put(turn(prompt))
    return target, box


async def test_an_unknown_error_is_set_aside_after_max_attempts_while_the_db_answers(
    tmp_path: Path,
):
    target, box = await _stubborn_run(tmp_path, answers=True)
    try:
        await eventually(lambda: box.pending() == 0)
    finally:
        await box.close(timeout=1)
    assert target.turns == ["one", "two"] and target.attempts == 3
    assert box.stats().dead == 1
    assert "RuntimeError: something odd happened" in read_dead(tmp_path / "queue.db")[0][2]


async def test_an_unknown_error_while_the_db_does_not_answer_is_kept(tmp_path: Path):
    target, box = await _stubborn_run(tmp_path, answers=False)
    try:
        await eventually(lambda: target.attempts >= 10)
        assert box.pending() == 2 and box.stats().dead == 0
        assert box.status().state is State.DEGRADED
    finally:
        await box.close(timeout=0.05)
    assert target.turns == ["one"]


class _Orig(Exception):
    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _wrapped(orig: Exception, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("INSERT …", None, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (_wrapped(_Orig("invalid byte sequence for encoding UTF8: 0x00", "22021")), "refused"),
        (_wrapped(_Orig("value too long for type character varying(255)", "22001")), "refused"),
        (_wrapped(_Orig("duplicate key", "23505")), "refused"),
        (_wrapped(_Orig("connection does not exist", "08003")), "outage"),
        (_wrapped(_Orig("terminating connection due to administrator command", "57P01")), "outage"),
        (_wrapped(_Orig('relation "turns" does not exist', "42P01")), "outage"),
        (_wrapped(_Orig("closed")), "unknown"),
        (_wrapped(_Orig("closed"), invalidated=True), "outage"),
        (_wrapped(sqlite3.OperationalError("database is locked")), "outage"),
        (_wrapped(sqlite3.IntegrityError("UNIQUE constraint failed")), "refused"),
        (ConnectionResetError("reset"), "outage"),
        (TimeoutError(), "outage"),
        (UnicodeEncodeError("utf-8", "\udc80", 0, 1, "surrogates not allowed"), "refused"),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), "refused"),
        (RuntimeError("odd"), "unknown"),
    ],
)
def test_the_verdict_follows_the_database(error: BaseException, verdict: str):
    assert classify(error) is Verdict(verdict)


async def test_the_server_exports_the_outbox_counts(server):
    await server.app.outbox.put(usage(tokens=2**64))  # too large for any database
    await server.app.outbox.put(usage(tokens=7))
    await asyncio.wait_for(server.app.settle(), 10)
    assert scrape(server.app.metrics) == {
        "nexy_outbox_pending": 0.0,
        "nexy_outbox_dead_letters": 1.0,
        "nexy_outbox_refused_total": 1.0,
    }
    stored = (await server.app.repository.export_device("hw-1"))["usage"]
    assert [row["input_tokens"] for row in stored] == [7]
    assert server.app.database.status().state is State.READY


async def test_discarding_a_device_also_drops_its_dead_letters(tmp_path: Path):
    target, box = await _stubborn_run(tmp_path, answers=True)
    try:
        await eventually(lambda: box.pending() == 0)
        assert box.stats().dead == 1
        await box.discard("hw-1")  # `data delete`: what the user said must not stay behind
        assert box.stats().dead == 0
    finally:
        await box.close(timeout=1)
    assert read_dead(tmp_path / "queue.db") == []
