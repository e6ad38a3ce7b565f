"""Versioned migrations: empty to head, 0001 to head, back down, and agreement with the models."""

from __future__ import annotations

import io
import json
import logging
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from nexy.storage import Database, revision, upgrade
from nexy.storage.models import Base
from nexy.storage.schema import MIGRATIONS_DIR, alembic_config, current_revision, head_revision
from tests.storage.conftest import Backend

TABLES = {"devices", "turns", "token_usage"}


async def _alembic(db: Database, action: str, revision: str) -> None:
    def run(connection: Connection) -> None:
        getattr(command, action)(alembic_config(connection), revision)

    async with db.engine.begin() as connection:
        await connection.run_sync(run)


async def _inspect(db: Database, what: str, *args: Any) -> Any:
    async with db.engine.connect() as connection:
        return await connection.run_sync(lambda sync: getattr(inspect(sync), what)(*args))


@pytest.fixture
async def bare(backend: Backend) -> Any:
    db = backend.database(auto_migrate=False)
    await db.start()
    yield db
    await db.close()


def test_migrations_ship_inside_the_package():
    assert MIGRATIONS_DIR.parent.name == "storage"
    for name in ("env.py", "script.py.mako", "versions/0001_initial.py"):
        assert (MIGRATIONS_DIR / name).is_file()
    script = ScriptDirectory.from_config(alembic_config())
    assert [rev.revision for rev in script.walk_revisions()] == ["0003", "0002", "0001"]
    assert head_revision() == "0003"


async def test_empty_to_head(bare: Database):
    assert await current_revision(bare.engine) is None
    assert TABLES.isdisjoint(await _inspect(bare, "get_table_names"))
    await _alembic(bare, "upgrade", "head")
    assert await current_revision(bare.engine) == head_revision()
    assert set(await _inspect(bare, "get_table_names")) >= TABLES
    indexes = {index["name"] for index in await _inspect(bare, "get_indexes", "turns")}
    assert {"ix_turns_hardware_id_created_at", "ix_turns_session_id", "ux_turns_op_id"} <= indexes


async def test_0001_to_head_keeps_existing_rows(bare: Database):
    await _alembic(bare, "upgrade", "0001")
    assert await current_revision(bare.engine) == "0001"
    columns = {column["name"] for column in await _inspect(bare, "get_columns", "turns")}
    assert "op_id" not in columns
    insert = text(
        "INSERT INTO token_usage (hardware_id, session_id, source, input_tokens, output_tokens,"
        " model, created_at) VALUES ('hw', 's', 'llm', 3, 4, 'm', CURRENT_TIMESTAMP)"
    )
    async with bare.engine.begin() as connection:
        await connection.execute(insert)
    await _alembic(bare, "upgrade", "head")
    async with bare.engine.begin() as connection:
        rows = (await connection.execute(text("SELECT input_tokens, op_id FROM token_usage"))).all()
        assert [tuple(row) for row in rows] == [(3, None)]
        # Old rows without an id coexist; a repeated id is refused by the new unique index.
        for _ in range(2):
            await connection.execute(insert)
        await connection.execute(text("UPDATE token_usage SET op_id = 'same' WHERE id = 2"))
    with pytest.raises(IntegrityError):
        async with bare.engine.begin() as connection:
            await connection.execute(text("UPDATE token_usage SET op_id = 'same' WHERE id = 3"))


async def test_downgrade_to_base_and_up_again(bare: Database):
    await _alembic(bare, "upgrade", "head")
    await _alembic(bare, "downgrade", "0001")
    columns = {column["name"] for column in await _inspect(bare, "get_columns", "token_usage")}
    assert "op_id" not in columns
    await _alembic(bare, "downgrade", "base")
    assert TABLES.isdisjoint(await _inspect(bare, "get_table_names"))
    await _alembic(bare, "upgrade", "head")
    assert await current_revision(bare.engine) == head_revision()


async def test_migrated_schema_matches_the_models(bare: Database):
    await _alembic(bare, "upgrade", "head")

    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with bare.engine.connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_start_migrates_and_upgrade_command_is_idempotent(
    backend: Backend, caplog: pytest.LogCaptureFixture
):
    assert await revision(backend.url, schema=backend.schema) is None
    await upgrade(backend.url, schema=backend.schema)
    await upgrade(backend.url, schema=backend.schema)  # nothing left to do: no error
    assert await revision(backend.url, schema=backend.schema) == head_revision()
    db = backend.database(auto_migrate=False)
    with caplog.at_level(logging.WARNING, logger="nexy.storage"):
        await db.start()
    try:
        assert await current_revision(db.engine) == head_revision()
        assert "db upgrade" not in caplog.text  # no "schema behind" warning
    finally:
        await db.close()


async def test_without_auto_migrate_a_behind_schema_is_reported(
    bare: Database, backend: Backend, caplog: pytest.LogCaptureFixture
):
    await _alembic(bare, "upgrade", "0001")
    db = backend.database(auto_migrate=False)
    with caplog.at_level(logging.WARNING, logger="nexy.storage"):
        await db.start()
    await db.close()
    assert f"at revision 0001, the code expects {head_revision()}" in caplog.text
    assert await current_revision(bare.engine) == "0001"


def test_env_runs_on_a_url_alone(tmp_path: Path):
    """As the ``alembic`` command would: no connection handed over, env.py makes its engine."""
    path = tmp_path / "by-url.db"
    config = alembic_config()
    config.set_main_option("sqlalchemy.url", f"sqlite+aiosqlite:///{path}")
    command.upgrade(config, "head")
    with sqlite3.connect(path) as connection:
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    connection.close()
    assert version == head_revision()


def test_env_prints_sql_offline():
    config = alembic_config()
    config.output_buffer = io.StringIO()
    config.attributes["url"] = "postgresql+asyncpg://nexy@db/nexy"
    command.upgrade(config, "head", sql=True)
    script = config.output_buffer.getvalue()
    assert "CREATE TABLE devices" in script and "CREATE UNIQUE INDEX ux_turns_op_id" in script


DEVICE = "6B1C2D3E-4F50-4A1B-9C2D-3E4F5A6B7C8D"


async def test_0003_moves_every_alias_of_a_device_to_its_canonical_id(bare: Database):
    await _alembic(bare, "upgrade", "0002")
    device = (
        "INSERT INTO devices (hardware_id, first_seen, last_seen, facts, recent) "
        "VALUES (:id, :first, :last, :facts, :recent)"
    )
    usage = (
        "INSERT INTO token_usage (hardware_id, session_id, source, input_tokens, output_tokens,"
        " model, created_at) VALUES (:id, 's', 'llm', 1, 1, 'm', CURRENT_TIMESTAMP)"
    )
    async with bare.engine.begin() as connection:
        for hardware_id, first, last, facts in (
            (
                DEVICE,
                datetime(2026, 1, 2, tzinfo=UTC),
                datetime(2026, 1, 3, tzinfo=UTC),
                ["likes tea"],
            ),
            (
                "{" + DEVICE.lower() + "}",
                datetime(2026, 1, 1, tzinfo=UTC),
                datetime(2026, 1, 5, tzinfo=UTC),
                ["cat Tom"],
            ),
            (
                "urn:uuid:" + "0f" * 16,
                datetime(2026, 1, 1, tzinfo=UTC),
                datetime(2026, 1, 1, tzinfo=UTC),
                [],
            ),
            (
                "serial-42",
                datetime(2026, 1, 1, tzinfo=UTC),
                datetime(2026, 1, 1, tzinfo=UTC),
                ["kept"],
            ),
        ):
            await connection.execute(
                text(device),
                {
                    "id": hardware_id,
                    "first": first,
                    "last": last,
                    "facts": json.dumps(facts),
                    "recent": "[]",
                },
            )
        for hardware_id in (DEVICE.lower(), DEVICE, "serial-42"):
            await connection.execute(text(usage), {"id": hardware_id})
    await _alembic(bare, "upgrade", "head")
    async with bare.engine.connect() as connection:
        rows = (await connection.execute(text("SELECT hardware_id, facts FROM devices"))).all()
        usage_ids = (await connection.execute(text("SELECT hardware_id FROM token_usage"))).all()
    facts = {row[0]: row[1] if isinstance(row[1], list) else json.loads(row[1]) for row in rows}
    merged_uuid = str(uuid.UUID("0f" * 16)).upper()
    assert facts == {DEVICE: ["likes tea", "cat Tom"], merged_uuid: [], "serial-42": ["kept"]}
    assert sorted(row[0] for row in usage_ids) == sorted([DEVICE, DEVICE, "serial-42"])
