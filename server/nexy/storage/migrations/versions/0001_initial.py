"""Initial schema: devices (memory), turns, token usage.

Revision ID: 0001
Revises:
Create Date: 2026-05-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from models.py: a migration must keep describing the schema
# as it was at this revision, whatever the models become later.
_ID = 255
_NAME = 255
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the three tables and the indexes of the queries the repository makes."""
    op.create_table(
        "devices",
        sa.Column("hardware_id", sa.String(_ID), primary_key=True),
        sa.Column("first_seen", _time(), nullable=False),
        sa.Column("last_seen", _time(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("recent", sa.JSON(), nullable=False),
    )
    op.create_table(
        "turns",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(_ID), nullable=False),
        sa.Column("hardware_id", sa.String(_ID), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("reply_text", sa.Text(), nullable=False),
        sa.Column("action_json", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("first_text_ms", sa.Float(), nullable=True),
        sa.Column("first_audio_ms", sa.Float(), nullable=True),
        sa.Column("total_ms", sa.Float(), nullable=False),
        sa.Column("llm_provider", sa.String(_NAME), nullable=False),
        sa.Column("tts_provider", sa.String(_NAME), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('completed', 'interrupted', 'failed')", name="ck_turns_outcome"
        ),
    )
    op.create_index("ix_turns_hardware_id_created_at", "turns", ["hardware_id", "created_at"])
    op.create_index("ix_turns_session_id", "turns", ["session_id"])
    op.create_table(
        "token_usage",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("hardware_id", sa.String(_ID), nullable=False),
        sa.Column("session_id", sa.String(_ID), nullable=False),
        sa.Column("source", sa.String(_NAME), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(_NAME), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
    )
    op.create_index(
        "ix_token_usage_hardware_id_created_at", "token_usage", ["hardware_id", "created_at"]
    )


def downgrade() -> None:
    """Drop everything this revision created."""
    op.drop_table("token_usage")
    op.drop_table("turns")
    op.drop_table("devices")
