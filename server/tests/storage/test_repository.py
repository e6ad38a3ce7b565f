"""The Repository on both backends: memory, turns, usage, export and deletion."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from nexy.storage import Database, DeviceMemory, Exchange, Repository, TurnRecord
from nexy.usage import UsageRecord

T0 = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def turn(hardware_id: str = "hw-1", prompt: str = "what time is it", **changes: Any) -> TurnRecord:
    values: dict[str, Any] = {
        "session_id": "s-1",
        "hardware_id": hardware_id,
        "prompt": prompt,
        "reply_text": "It is half past eight.",
        "outcome": "completed",
        "total_ms": 812.5,
        "llm_provider": "local",
        "tts_provider": "piper",
        "action_json": None,
        "first_text_ms": 120.0,
        "first_audio_ms": 310.25,
    }
    values.update(changes)
    return TurnRecord(**values)


def usage(hardware_id: str = "hw-1", tokens: int = 10) -> UsageRecord:
    return UsageRecord(hardware_id, "s-1", "llm", tokens, tokens * 2, "smollm2")


@contextmanager
def counted_statements(database: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    target = database.engine.sync_engine
    event.listen(target, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(target, "before_cursor_execute", count)


async def test_unknown_device_has_empty_memory(repository: Repository):
    assert await repository.load_memory("nobody") == DeviceMemory([], [])


async def test_memory_round_trip_and_replace(repository: Repository):
    recent = [Exchange("hi", "Hello!", T0), Exchange("и ещё", "Да 🙂", T0 + timedelta(seconds=5))]
    await repository.save_memory("hw-1", ["likes jazz"], recent, at=T0)
    assert await repository.load_memory("hw-1") == DeviceMemory(["likes jazz"], recent)

    later = T0 + timedelta(hours=1)
    await repository.save_memory("hw-1", ["likes jazz", "lives in Riga"], recent[1:], at=later)
    memory = await repository.load_memory("hw-1")
    assert memory == DeviceMemory(["likes jazz", "lives in Riga"], recent[1:])
    exported = (await repository.export_device("hw-1"))["memory"]
    assert exported["first_seen"] == T0.isoformat()  # kept by the upsert
    assert exported["last_seen"] == later.isoformat()


async def test_load_memory_is_one_query(repository: Repository, database: Database):
    await repository.save_memory("hw-1", ["a", "b"], [Exchange("q", "a", T0)])
    fast: list[str] = []
    if database.reader is not None:  # SQLite: the one-hop reader, not SQLAlchemy
        original = database.reader.fetch_one

        async def counted(sql, params):
            fast.append(sql)
            return await original(sql, params)

        database.reader.fetch_one = counted  # type: ignore[method-assign]
    with counted_statements(database) as statements:
        loaded = await repository.load_memory("hw-1")
        empty = await repository.load_memory("unknown")
    assert len(statements) + len(fast) == 2, (statements, fast)
    assert loaded.facts == ["a", "b"] and loaded.recent[0].user == "q"
    assert empty.facts == [] and empty.recent == []
    assert (database.reader is None) == (database.dialect == "postgresql")


async def test_turns_and_usage_are_stored_and_exported_in_order(repository: Repository):
    assert await repository.add_turn(turn(prompt="first"), at=T0)
    action = json.dumps({"command": "open_app", "args": {"name": "Safari"}})
    second = turn(prompt="second", outcome="interrupted", action_json=action, first_audio_ms=None)
    assert await repository.add_turn(second, at=T0 + timedelta(seconds=1))
    assert await repository.add_usage(usage(tokens=7), at=T0)
    await repository.add_turn(turn("hw-2"))

    exported = await repository.export_device("hw-1")
    json.dumps(exported)  # JSON-ready as it is
    assert [t["prompt"] for t in exported["turns"]] == ["first", "second"]
    first, last = exported["turns"]
    assert first["first_audio_ms"] == 310.25 and last["first_audio_ms"] is None
    assert last["outcome"] == "interrupted" and json.loads(last["action_json"])["args"]
    assert first["created_at"] == T0.isoformat()
    assert [(u["input_tokens"], u["output_tokens"], u["model"]) for u in exported["usage"]] == [
        (7, 14, "smollm2")
    ]


async def test_a_replayed_write_is_stored_once(repository: Repository):
    op_id = "a" * 32
    assert await repository.add_turn(turn(), op_id=op_id) is True
    assert await repository.add_turn(turn(), op_id=op_id) is False
    assert await repository.add_usage(usage(), op_id=op_id) is True
    assert await repository.add_usage(usage(), op_id=op_id) is False
    exported = await repository.export_device("hw-1")
    assert len(exported["turns"]) == 1 and len(exported["usage"]) == 1


async def test_delete_device_removes_only_that_device(repository: Repository):
    for hardware_id in ("hw-1", "hw-2"):
        await repository.save_memory(hardware_id, ["fact"], [])
        await repository.add_turn(turn(hardware_id))
        await repository.add_turn(turn(hardware_id))
        await repository.add_usage(usage(hardware_id))
    removed = await repository.delete_device("hw-1")
    assert removed == {"turns": 2, "token_usage": 1, "devices": 1}
    assert await repository.delete_device("hw-1") == {"turns": 0, "token_usage": 0, "devices": 0}
    gone = await repository.export_device("hw-1")
    assert gone["turns"] == [] and gone["usage"] == [] and gone["memory"]["facts"] == []
    assert (await repository.load_memory("hw-2")).facts == ["fact"]


def test_a_turn_outcome_outside_the_vocabulary_is_refused():
    with pytest.raises(ValueError, match="outcome"):
        turn(outcome="exploded")
