"""The queries: device memory, finished turns, token usage, export and deletion.

Every method is one short transaction; the write statements themselves live in
``nexy.storage.writes``, so that ``apply_batch`` can run many of them in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from nexy.storage.database import Database
from nexy.storage.models import Device, TokenUsage, Turn
from nexy.storage.ops import WriteOp, apply_op
from nexy.storage.records import DeviceMemory, Exchange, TurnRecord, utc_now
from nexy.storage.writes import TURN_FIELDS, USAGE_FIELDS, SessionWrites, Statements
from nexy.usage import UsageRecord

_ABSENT = ("absent",)  # the fast read found no row (distinct from "could not read")


class Repository:
    """Reads and writes of the storage tables over a started ``Database``."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._statements = Statements.build(database.dialect)

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
        async with self._writes() as writes:
            await writes.save_memory(hardware_id, facts, recent, at=at)

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
        async with self._writes() as writes:
            await writes.update_memory(
                hardware_id,
                add_facts=add_facts,
                forget=forget,
                exchange=exchange,
                max_facts=max_facts,
                max_recent=max_recent,
                at=at,
            )

    async def add_turn(
        self, turn: TurnRecord, *, at: datetime | None = None, op_id: str | None = None
    ) -> bool:
        """Store a finished turn; False when a write with the same ``op_id`` is already stored."""
        async with self._writes() as writes:
            return await writes.add_turn(turn, at=at, op_id=op_id)

    async def add_usage(
        self, usage: UsageRecord, *, at: datetime | None = None, op_id: str | None = None
    ) -> bool:
        """Store a usage record; False when a write with the same ``op_id`` is already stored."""
        async with self._writes() as writes:
            return await writes.add_usage(usage, at=at, op_id=op_id)

    async def apply_batch(self, batch: Sequence[tuple[WriteOp, str]]) -> None:
        """Apply queued writes in order in ONE transaction: all of them, or (on error) none."""
        async with self._writes() as writes:
            for op, op_id in batch:
                await apply_op(writes, op, op_id)

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

    @asynccontextmanager
    async def _writes(self) -> AsyncIterator[SessionWrites]:
        async with self._db.session() as session:
            yield SessionWrites(await session.connection(), self._statements)

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
    data: dict[str, Any] = {name: getattr(turn, name) for name in TURN_FIELDS}
    data["id"] = turn.id
    data["created_at"] = turn.created_at.isoformat()
    return data


def _usage_json(record: TokenUsage) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(record, name) for name in USAGE_FIELDS}
    data["id"] = record.id
    data["created_at"] = record.created_at.isoformat()
    return data
