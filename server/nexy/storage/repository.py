"""The queries: device memory, finished turns, token usage, export and deletion.

Every method is one short transaction. Upserts use ``INSERT … ON CONFLICT``, which SQLite and
PostgreSQL both speak, so the same code runs on either backend. ``update_memory`` is the one
read-modify-write: it merges a change into the device row under a row lock (``FOR UPDATE`` on
PostgreSQL; SQLite has one writer at a time), so concurrent updates never lose each other.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from nexy.memory.facts import merge
from nexy.storage.database import Database
from nexy.storage.models import Device, TokenUsage, Turn
from nexy.storage.records import DeviceMemory, Exchange, TurnRecord, as_utc, utc_now
from nexy.usage import UsageRecord

_TURN_FIELDS = (
    "session_id",
    "hardware_id",
    "prompt",
    "reply_text",
    "action_json",
    "outcome",
    "first_text_ms",
    "first_audio_ms",
    "total_ms",
    "llm_provider",
    "tts_provider",
)
_ABSENT = ("absent",)  # the fast read found no row (distinct from "could not read")
_USAGE_FIELDS = ("hardware_id", "session_id", "source", "input_tokens", "output_tokens", "model")


class Repository:
    """Reads and writes of the storage tables over a started ``Database``."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def load_memory(self, hardware_id: str) -> DeviceMemory:
        """The device's facts and recent exchanges (empty for an unknown device); one query."""
        row = await self._fast_memory_row(hardware_id)
        if row is None:
            query = select(Device.facts, Device.recent).where(Device.hardware_id == hardware_id)
            async with self._db.session() as session:
                row = (await session.execute(query)).one_or_none()
        if row is None or row == _ABSENT:
            return DeviceMemory()
        facts, recent = row
        return DeviceMemory(
            facts=[str(fact) for fact in facts or []],
            recent=[Exchange.from_json(item) for item in recent or [] if isinstance(item, dict)],
        )

    async def _fast_memory_row(self, hardware_id: str) -> Any:
        """The SQLite one-hop read (see sqlite_reader.py); None means "use the async path"."""
        reader = self._db.reader
        if reader is None:
            return None
        try:
            row = await reader.fetch_one(
                "SELECT facts, recent FROM devices WHERE hardware_id = ?", (hardware_id,)
            )
        except sqlite3.Error:  # not migrated yet, locked past the timeout: the normal path copes
            return None
        if row is None:
            return _ABSENT
        return tuple(json.loads(value) if isinstance(value, str) else value for value in row)

    async def save_memory(
        self,
        hardware_id: str,
        facts: list[str],
        recent: list[Exchange],
        *,
        at: datetime | None = None,
    ) -> None:
        """Replace the device's memory, creating the device on first sight; ``at`` = last seen."""
        seen = as_utc(at) if at is not None else utc_now()
        values = {
            "hardware_id": hardware_id,
            "first_seen": seen,
            "last_seen": seen,
            "facts": list(facts),
            "recent": [exchange.to_json() for exchange in recent],
        }
        insert = self._insert(Device).values(**values)
        # first_seen is left alone: it is only set by the insert.
        upsert = insert.on_conflict_do_update(
            index_elements=[Device.hardware_id],
            set_={
                "last_seen": insert.excluded.last_seen,
                "facts": insert.excluded.facts,
                "recent": insert.excluded.recent,
            },
        )
        async with self._db.session() as session:
            await session.execute(upsert)

    async def update_memory(
        self,
        hardware_id: str,
        *,
        add_facts: tuple[str, ...] = (),
        forget: str | None = None,
        exchange: Exchange | None = None,
        max_facts: int,
        max_recent: int,
        at: datetime | None = None,
    ) -> None:
        """Merge a change into the device's memory in one transaction (see ``facts.merge``)."""
        seen = as_utc(at) if at is not None else utc_now()
        # Create the row first so there is always a row to lock: two first writes for a new
        # device then queue on the lock instead of one failing on the primary key.
        create = (
            self._insert(Device)
            .values(hardware_id=hardware_id, first_seen=seen, last_seen=seen, facts=[], recent=[])
            .on_conflict_do_nothing(index_elements=[Device.hardware_id])
        )
        locked = (
            select(Device.facts, Device.recent)
            .where(Device.hardware_id == hardware_id)
            .with_for_update()  # rendered as nothing on SQLite, whose write lock is already held
        )
        async with self._db.session() as session:
            await session.execute(create)
            stored_facts, stored_recent = (await session.execute(locked)).one()
            facts, recent, _ = merge(
                [str(fact) for fact in stored_facts or []],
                [
                    Exchange.from_json(item)
                    for item in stored_recent or []
                    if isinstance(item, dict)
                ],
                add=add_facts,
                forget=forget,
                exchange=exchange,
                max_facts=max_facts,
                max_recent=max_recent,
            )
            await session.execute(
                update(Device)
                .where(Device.hardware_id == hardware_id)
                .values(
                    last_seen=seen,
                    facts=facts,
                    recent=[item.to_json() for item in recent],
                )
            )

    async def add_turn(
        self, turn: TurnRecord, *, at: datetime | None = None, op_id: str | None = None
    ) -> bool:
        """Store a finished turn; False when a write with the same ``op_id`` is already stored."""
        values = {name: getattr(turn, name) for name in _TURN_FIELDS}
        return await self._add(Turn, values, at, op_id)

    async def add_usage(
        self, usage: UsageRecord, *, at: datetime | None = None, op_id: str | None = None
    ) -> bool:
        """Store a usage record; False when a write with the same ``op_id`` is already stored."""
        values = {name: getattr(usage, name) for name in _USAGE_FIELDS}
        return await self._add(TokenUsage, values, at, op_id)

    async def export_device(self, hardware_id: str) -> dict[str, Any]:
        """Everything stored about the device as JSON-ready data (memory, turns, usage)."""
        async with self._db.session() as session:
            device = await session.get(Device, hardware_id)
            turns = await self._rows(session, Turn, hardware_id)
            usage = await self._rows(session, TokenUsage, hardware_id)
        memory: dict[str, Any] = {"facts": [], "recent": [], "first_seen": None, "last_seen": None}
        if device is not None:
            memory = {
                "facts": list(device.facts),
                "recent": list(device.recent),
                "first_seen": device.first_seen.isoformat(),
                "last_seen": device.last_seen.isoformat(),
            }
        return {
            "hardware_id": hardware_id,
            "exported_at": utc_now().isoformat(),
            "memory": memory,
            "turns": [_turn_json(turn) for turn in turns],
            "usage": [_usage_json(record) for record in usage],
        }

    async def delete_device(self, hardware_id: str) -> dict[str, int]:
        """Remove every row about the device, in one transaction; the count per table."""
        removed: dict[str, int] = {}
        async with self._db.session() as session:
            for model in (Turn, TokenUsage, Device):
                result = await session.execute(
                    delete(model).where(model.hardware_id == hardware_id)
                )
                removed[model.__tablename__] = int(getattr(result, "rowcount", 0))
        return removed

    def _insert(self, table: Any) -> sqlite.Insert | postgresql.Insert:
        if self._db.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def _add(
        self,
        model: type[Turn] | type[TokenUsage],
        values: dict[str, Any],
        at: datetime | None,
        op_id: str | None,
    ) -> bool:
        values["created_at"] = as_utc(at) if at is not None else utc_now()
        values["op_id"] = op_id
        insert = self._insert(model).values(**values)
        # A replay of an already stored write (same op_id) inserts nothing.
        statement = insert.on_conflict_do_nothing(index_elements=["op_id"]) if op_id else insert
        async with self._db.session() as session:
            result = await session.execute(statement)
        return int(getattr(result, "rowcount", 1)) > 0

    @staticmethod
    async def _rows(
        session: AsyncSession, model: type[Turn] | type[TokenUsage], hardware_id: str
    ) -> list[Any]:
        query = (
            select(model)
            .where(model.hardware_id == hardware_id)
            .order_by(model.created_at, model.id)
        )
        return list((await session.scalars(query)).all())


def _turn_json(turn: Turn) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(turn, name) for name in _TURN_FIELDS}
    data["id"] = turn.id
    data["created_at"] = turn.created_at.isoformat()
    return data


def _usage_json(record: TokenUsage) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(record, name) for name in _USAGE_FIELDS}
    data["id"] = record.id
    data["created_at"] = record.created_at.isoformat()
    return data
