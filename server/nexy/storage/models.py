"""The relational schema, shared by SQLite and PostgreSQL.

The migrations in ``migrations/versions`` create exactly these tables; a test compares the two.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from nexy.storage.records import OUTCOMES, as_utc

ID_LENGTH = 255  # hardware and session ids are opaque client strings
NAME_LENGTH = 255  # provider, source and model names (hub model ids run long)
OP_ID_LENGTH = 32  # a uuid4 hex written by the outbox


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no offset, so values are normalised to UTC on the way in and the offset is
    put back on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC before storing."""
        return None if value is None else as_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Attach UTC to what the driver returns."""
        return None if value is None else as_utc(value)


# BIGINT ids on PostgreSQL; SQLite only auto-increments a column declared INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """The declarative base of every storage table."""


class Device(Base):
    """One device: its long-term facts and its short-term window of recent exchanges."""

    __tablename__ = "devices"

    hardware_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    facts: Mapped[list[str]] = mapped_column(JSON())
    recent: Mapped[list[dict[str, str]]] = mapped_column(JSON())


_outcomes = ", ".join(f"'{outcome}'" for outcome in OUTCOMES)


class Turn(Base):
    """One finished turn: what was asked, what was answered, and how fast."""

    __tablename__ = "turns"
    __table_args__ = (
        CheckConstraint(f"outcome IN ({_outcomes})", name="ck_turns_outcome"),
        Index("ix_turns_hardware_id_created_at", "hardware_id", "created_at"),
        Index("ix_turns_session_id", "session_id"),
        Index("ux_turns_op_id", "op_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    hardware_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    prompt: Mapped[str] = mapped_column(Text())
    reply_text: Mapped[str] = mapped_column(Text())
    action_json: Mapped[str | None] = mapped_column(Text())
    outcome: Mapped[str] = mapped_column(String(16))
    first_text_ms: Mapped[float | None] = mapped_column(Float())
    first_audio_ms: Mapped[float | None] = mapped_column(Float())
    total_ms: Mapped[float] = mapped_column(Float())
    llm_provider: Mapped[str] = mapped_column(String(NAME_LENGTH))
    tts_provider: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Added by 0002: the outbox's operation id, so a replayed write is not stored twice.
    op_id: Mapped[str | None] = mapped_column(String(OP_ID_LENGTH))


class TokenUsage(Base):
    """Tokens one model call consumed, for billing and quotas."""

    __tablename__ = "token_usage"
    __table_args__ = (
        Index("ix_token_usage_hardware_id_created_at", "hardware_id", "created_at"),
        Index("ux_token_usage_op_id", "op_id", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    hardware_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    session_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    source: Mapped[str] = mapped_column(String(NAME_LENGTH))
    input_tokens: Mapped[int] = mapped_column(Integer())
    output_tokens: Mapped[int] = mapped_column(Integer())
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    op_id: Mapped[str | None] = mapped_column(String(OP_ID_LENGTH))
