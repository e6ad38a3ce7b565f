"""The write statements, run inside a transaction someone else owns.

``Repository`` opens one session per call and runs one of these in it; the outbox's batch
(``Repository.apply_batch``) runs many of them, in order, in one session. Either way the SQL is
this module's. Upserts use ``INSERT … ON CONFLICT``, which SQLite and PostgreSQL both speak.
``update_memory`` is the one read-modify-write: it merges a change into the device row under a
row lock (``FOR UPDATE`` on PostgreSQL; SQLite has one writer at a time), so concurrent updates
never lose each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import Executable

from nexy.memory.facts import merge
from nexy.storage.models import Base, Device, TokenUsage, Turn
from nexy.storage.records import Exchange, TurnRecord, as_utc, utc_now
from nexy.usage import UsageRecord

TURN_FIELDS = (
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
USAGE_FIELDS = ("hardware_id", "session_id", "source", "input_tokens", "output_tokens", "model")


@dataclass(frozen=True, slots=True)
class Statements:
    """The write statements of one dialect, built once and executed with parameters.

    A statement built per write (``insert(...).values(...)``) costs more CPU than running it:
    building, coercing every value and computing its cache key. These are built once per
    repository; only the parameters change.
    """

    add_turn: Executable  # a replay of a stored op_id inserts nothing
    add_usage: Executable
    create_device: Executable  # a device row to lock, if there is none yet
    lock_device: Executable  # its facts and recent window, locked for the update
    update_device: Executable
    save_device: Executable  # replace facts and recent; first_seen only set by the insert

    @classmethod
    def build(cls, dialect: str) -> Statements:
        """The statements for ``sqlite`` or ``postgresql``."""
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        tables = Base.metadata.tables
        devices, turns = tables[Device.__tablename__], tables[Turn.__tablename__]
        usage = tables[TokenUsage.__tablename__]
        upsert = insert(devices)
        return cls(
            add_turn=insert(turns).on_conflict_do_nothing(index_elements=["op_id"]),
            add_usage=insert(usage).on_conflict_do_nothing(index_elements=["op_id"]),
            create_device=insert(devices).on_conflict_do_nothing(index_elements=["hardware_id"]),
            lock_device=select(devices.c.facts, devices.c.recent)
            .where(devices.c.hardware_id == bindparam("key"))
            .with_for_update(),  # rendered as nothing on SQLite, whose write lock is held
            update_device=update(devices).where(devices.c.hardware_id == bindparam("key")),
            save_device=upsert.on_conflict_do_update(
                index_elements=["hardware_id"],
                set_={
                    "last_seen": upsert.excluded.last_seen,
                    "facts": upsert.excluded.facts,
                    "recent": upsert.excluded.recent,
                },
            ),
        )


class SessionWrites:
    """The four writes of the outbox (a ``WriteTarget``) inside one open transaction."""

    def __init__(self, connection: AsyncConnection, statements: Statements) -> None:
        self._connection = connection
        self._sql = statements

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
        await self._connection.execute(self._sql.save_device, values)

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
        """Merge a change into the device's memory (see ``facts.merge``)."""
        seen = as_utc(at) if at is not None else utc_now()
        # Create the row first so there is always a row to lock: two first writes for a new
        # device then queue on the lock instead of one failing on the primary key.
        new = {"hardware_id": hardware_id, "first_seen": seen, "last_seen": seen}
        await self._connection.execute(self._sql.create_device, {**new, "facts": [], "recent": []})
        locked = await self._connection.execute(self._sql.lock_device, {"key": hardware_id})
        stored_facts, stored_recent = locked.one()
        facts, recent, _ = merge(
            [str(fact) for fact in stored_facts or []],
            [Exchange.from_json(item) for item in stored_recent or [] if isinstance(item, dict)],
            add=add_facts,
            forget=forget,
            exchange=exchange,
            max_facts=max_facts,
            max_recent=max_recent,
        )
        changed = {"last_seen": seen, "facts": facts, "recent": [item.to_json() for item in recent]}
        await self._connection.execute(self._sql.update_device, {"key": hardware_id, **changed})

    async def add_turn(
        self, turn: TurnRecord, *, at: datetime | None = None, op_id: str | None = None
    ) -> bool:
        """Store a finished turn; False when a write with the same ``op_id`` is already stored."""
        values = {name: getattr(turn, name) for name in TURN_FIELDS}
        return await self._add(self._sql.add_turn, values, at, op_id)

    async def add_usage(
        self, usage: UsageRecord, *, at: datetime | None = None, op_id: str | None = None
    ) -> bool:
        """Store a usage record; False when a write with the same ``op_id`` is already stored."""
        values = {name: getattr(usage, name) for name in USAGE_FIELDS}
        return await self._add(self._sql.add_usage, values, at, op_id)

    async def _add(
        self, statement: Executable, values: dict[str, Any], at: datetime | None, op_id: str | None
    ) -> bool:
        values["created_at"] = as_utc(at) if at is not None else utc_now()
        # Without an op_id (a direct write) nothing conflicts: NULLs are distinct in an index.
        values["op_id"] = op_id
        result = await self._connection.execute(statement, values)
        return int(getattr(result, "rowcount", 1)) > 0
