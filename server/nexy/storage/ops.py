"""The writes the outbox queues: a tagged union, its JSON form, and how each is applied.

The JSON form is what sits in the outbox file, so it must stay readable by the next release:
add kinds and optional fields, never rename or remove one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from nexy.storage.records import Exchange, TurnRecord, as_utc, parse_time, utc_now
from nexy.usage import UsageRecord


@dataclass(frozen=True, slots=True)
class SaveMemory:
    """Replace a device's memory."""

    kind: ClassVar[str] = "save_memory"
    hardware_id: str
    facts: tuple[str, ...]
    recent: tuple[Exchange, ...]
    at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class UpdateMemory:
    """Merge a change into a device's memory: forget, add facts, append an exchange.

    It carries the change, not the resulting state, so writes queued during an outage and
    replayed later merge with whatever the database holds by then instead of overwriting it.
    """

    kind: ClassVar[str] = "update_memory"
    hardware_id: str
    add_facts: tuple[str, ...] = ()
    forget: str | None = None  # a forget request applied before the facts are added
    exchange: Exchange | None = None
    max_facts: int = 50
    max_recent: int = 6
    at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        # Refuse bad bounds here, where the caller sees it, rather than at flush time.
        if self.max_facts < 1 or self.max_recent < 0:
            raise ValueError("need max_facts >= 1 and max_recent >= 0")


@dataclass(frozen=True, slots=True)
class AddTurn:
    """Store a finished turn."""

    kind: ClassVar[str] = "add_turn"
    turn: TurnRecord
    at: datetime = field(default_factory=utc_now)

    @property
    def hardware_id(self) -> str:
        """The device the turn belongs to."""
        return self.turn.hardware_id


@dataclass(frozen=True, slots=True)
class AddUsage:
    """Store a token-usage record."""

    kind: ClassVar[str] = "add_usage"
    usage: UsageRecord
    at: datetime = field(default_factory=utc_now)

    @property
    def hardware_id(self) -> str:
        """The device the usage belongs to."""
        return self.usage.hardware_id


WriteOp = SaveMemory | UpdateMemory | AddTurn | AddUsage


class WriteTarget(Protocol):
    """What the outbox writes to: ``Repository``, or a test double."""

    async def save_memory(
        self,
        hardware_id: str,
        facts: list[str],
        recent: list[Exchange],
        *,
        at: datetime | None = None,
    ) -> None: ...

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
    ) -> None: ...

    async def add_turn(
        self, turn: TurnRecord, *, at: datetime | None = None, op_id: str | None = None
    ) -> bool: ...

    async def add_usage(
        self, usage: UsageRecord, *, at: datetime | None = None, op_id: str | None = None
    ) -> bool: ...


@runtime_checkable
class BatchTarget(WriteTarget, Protocol):
    """A target that can apply several writes atomically: all of them in order, or none."""

    async def apply_batch(self, batch: Sequence[tuple[WriteOp, str]]) -> None:
        """Apply each ``(op, op_id)`` as ``apply_op`` would, in one transaction."""
        ...


async def apply_op(target: WriteTarget, op: WriteOp, op_id: str) -> None:
    """Perform the write; ``op_id`` lets the target ignore a replay of a stored write."""
    match op:
        case SaveMemory():
            await target.save_memory(op.hardware_id, list(op.facts), list(op.recent), at=op.at)
        case UpdateMemory():
            # A replay needs no op_id: the merge is idempotent (see nexy.memory.facts).
            await target.update_memory(
                op.hardware_id,
                add_facts=op.add_facts,
                forget=op.forget,
                exchange=op.exchange,
                max_facts=op.max_facts,
                max_recent=op.max_recent,
                at=op.at,
            )
        case AddTurn():
            await target.add_turn(op.turn, at=op.at, op_id=op_id)
        case AddUsage():
            await target.add_usage(op.usage, at=op.at, op_id=op_id)


def encode_op(op: WriteOp) -> str:
    """The operation as one line of JSON: ``{"kind": …, "at": …, "data": {…}}``."""
    data: dict[str, Any]
    match op:
        case SaveMemory():
            data = {
                "hardware_id": op.hardware_id,
                "facts": list(op.facts),
                "recent": [exchange.to_json() for exchange in op.recent],
            }
        case UpdateMemory():
            data = {
                "hardware_id": op.hardware_id,
                "add_facts": list(op.add_facts),
                "forget": op.forget,
                "exchange": op.exchange.to_json() if op.exchange is not None else None,
                "max_facts": op.max_facts,
                "max_recent": op.max_recent,
            }
        case AddTurn():
            data = {name: getattr(op.turn, name) for name in TurnRecord.__dataclass_fields__}
        case AddUsage():
            data = {name: getattr(op.usage, name) for name in UsageRecord.__dataclass_fields__}
    envelope = {"kind": op.kind, "at": as_utc(op.at).isoformat(), "data": data}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"))


def decode_op(text: str) -> WriteOp:
    """Rebuild an operation from ``encode_op``'s JSON; ValueError when it cannot be read."""
    try:
        envelope = json.loads(text)
        kind, at, data = envelope["kind"], parse_time(envelope["at"]), envelope["data"]
        if kind == SaveMemory.kind:
            facts = tuple(str(fact) for fact in data["facts"])
            recent = tuple(Exchange.from_json(item) for item in data["recent"])
            return SaveMemory(str(data["hardware_id"]), facts, recent, at)
        if kind == UpdateMemory.kind:
            return _decode_update(data, at)
        if kind == AddTurn.kind:
            return AddTurn(TurnRecord(**data), at)
        if kind == AddUsage.kind:
            return AddUsage(UsageRecord(**data), at)
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable queued write: {type(exc).__name__}: {exc}") from exc
    raise ValueError(f"unknown queued write kind {kind!r}")


def _decode_update(data: dict[str, Any], at: datetime) -> UpdateMemory:
    # Optional fields are read with defaults so older and newer writers stay compatible.
    exchange = data.get("exchange")
    forget = data.get("forget")
    return UpdateMemory(
        hardware_id=str(data["hardware_id"]),
        add_facts=tuple(str(fact) for fact in data.get("add_facts") or ()),
        forget=None if forget is None else str(forget),
        exchange=Exchange.from_json(exchange) if isinstance(exchange, dict) else None,
        max_facts=int(data.get("max_facts", 50)),
        max_recent=int(data.get("max_recent", 6)),
        at=at,
    )
