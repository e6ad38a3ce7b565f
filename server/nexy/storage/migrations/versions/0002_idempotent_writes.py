"""Idempotent writes: an operation id on turns and token usage, unique when present.

The outbox deletes a queued write only after the database accepted it, so a crash between the
two replays the write at the next start. With the outbox's id stored under a unique index the
replay inserts nothing instead of counting the turn or the tokens twice. Rows written before
this revision keep a NULL id, which a unique index allows any number of times.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("turns", "token_usage")
_OP_ID = 32  # a uuid4 in hex


def upgrade() -> None:
    """Add the nullable ``op_id`` column and its unique index to both tables."""
    for table in _TABLES:
        op.add_column(table, sa.Column("op_id", sa.String(_OP_ID), nullable=True))
        op.create_index(f"ux_{table}_op_id", table, ["op_id"], unique=True)


def downgrade() -> None:
    """Drop the index and the column again."""
    for table in _TABLES:
        op.drop_index(f"ux_{table}_op_id", table_name=table)
        # SQLite before 3.35 cannot drop a column in place; batch mode copies the table there.
        with op.batch_alter_table(table) as batch:
            batch.drop_column("op_id")
