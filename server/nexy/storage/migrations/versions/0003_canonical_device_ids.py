"""Canonical device ids: every UUID spelling of a hardware_id becomes its upper-case form.

From this revision on the server stores a hardware_id that is a UUID as upper-case hyphenated
(the form the desktop client sends), so that `{…}`, `urn:uuid:`, lower-case or hyphen-less
aliases are one device. Rows written earlier under another spelling are moved to that key here,
or they would no longer be found. Two device rows that turn out to be one device are merged:
facts of both (the canonical row's first, no repeats), both recent windows (the alias's first;
the memory service trims the window on the next write), the earliest first_seen and the latest
last_seen. The rule is copied from ``nexy.ids`` on purpose: a migration must keep doing what it
did when it was written, whatever the application code becomes.

The downgrade keeps the canonical ids: the original spellings are not recorded anywhere.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _canonical(value: str) -> str:
    value = value.strip()
    if 32 <= len(value) <= 45:
        try:
            return str(uuid.UUID(value)).upper()
        except ValueError:
            pass
    return value


def _as_list(value: Any) -> list[Any]:
    loaded = json.loads(value) if isinstance(value, str) else value
    return list(loaded or [])


def upgrade() -> None:
    """Move every row keyed by an alias to the canonical hardware_id."""
    if context.is_offline_mode():
        # A script printed for a DBA cannot know which rows exist; nothing to print.
        return
    bind = op.get_bind()
    for table in ("turns", "token_usage"):
        ids = bind.execute(sa.text(f"SELECT DISTINCT hardware_id FROM {table}")).scalars()
        for old in list(ids):
            new = _canonical(old)
            if new != old:
                bind.execute(
                    sa.text(f"UPDATE {table} SET hardware_id = :new WHERE hardware_id = :old"),
                    {"new": new, "old": old},
                )
    devices = bind.execute(sa.text("SELECT hardware_id FROM devices")).scalars()
    for old in list(devices):
        new = _canonical(old)
        if new != old:
            _move_device(bind, old, new)


def _move_device(bind: sa.Connection, old: str, new: str) -> None:
    select = sa.text(
        "SELECT first_seen, last_seen, facts, recent FROM devices WHERE hardware_id = :id"
    )
    kept = bind.execute(select, {"id": new}).first()
    if kept is None:
        bind.execute(
            sa.text("UPDATE devices SET hardware_id = :new WHERE hardware_id = :old"),
            {"new": new, "old": old},
        )
        return
    alias = bind.execute(select, {"id": old}).one()
    facts = _as_list(kept.facts)
    facts += [fact for fact in _as_list(alias.facts) if fact not in facts]
    merged = {
        "first_seen": min(kept.first_seen, alias.first_seen),
        "last_seen": max(kept.last_seen, alias.last_seen),
        "facts": json.dumps(facts, ensure_ascii=False),
        "recent": json.dumps(_as_list(alias.recent) + _as_list(kept.recent), ensure_ascii=False),
        "id": new,
    }
    bind.execute(
        sa.text(
            "UPDATE devices SET first_seen = :first_seen, last_seen = :last_seen, "
            "facts = :facts, recent = :recent WHERE hardware_id = :id"
        ),
        merged,
    )
    bind.execute(sa.text("DELETE FROM devices WHERE hardware_id = :old"), {"old": old})


def downgrade() -> None:
    """Nothing to undo: the original spellings were never stored."""
