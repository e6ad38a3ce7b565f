"""The Database component: URLs, masking, SQLite file handling, status and health."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from nexy.components import State
from nexy.storage import Database, Repository, mask_url
from nexy.storage.database import normalize_url
from nexy.storage.records import Exchange

SECRET = "s3cr3t-pa55"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            f"postgresql+asyncpg://nexy:{SECRET}@db.internal:5432/nexy",
            "postgresql+asyncpg://nexy:***@db.internal:5432/nexy",
        ),
        (
            f"postgresql://nexy@db/nexy?password={SECRET}&sslmode=require",
            "postgresql://nexy@db/nexy?password=***&sslmode=require",
        ),
        ("sqlite+aiosqlite:///data/nexy.db", "sqlite+aiosqlite:///data/nexy.db"),
        (f"not a url://u:{SECRET}@h", "not a url://u:***@h"),
    ],
)
def test_mask_url_hides_passwords(url: str, masked: str):
    assert mask_url(url) == masked
    assert SECRET not in mask_url(url)


def test_urls_get_the_async_driver_and_others_are_refused():
    assert normalize_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+asyncpg"
    with pytest.raises(ValueError, match="unsupported") as refused:
        Database(f"mysql://u:{SECRET}@h/db")
    assert SECRET not in str(refused.value)
    with pytest.raises(ValueError, match="unsupported"):
        Database("postgresql+psycopg2://u@h/db")
    with pytest.raises(ValueError, match="not a database URL") as garbage:
        Database(f"nexy:{SECRET}@nowhere")
    assert SECRET not in str(garbage.value)


async def test_sqlite_creates_the_folder_and_uses_wal(tmp_path: Path):
    path = tmp_path / "deep" / "er" / "nexy.db"
    db = Database(f"sqlite:///{path}")
    await db.start()
    try:
        assert path.is_file()
        async with db.engine.connect() as connection:
            mode = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
        assert mode == "wal"
    finally:
        await db.close()


async def test_in_memory_sqlite_keeps_one_database():
    db = Database("sqlite+aiosqlite:///:memory:")
    await db.start()
    try:
        repository = Repository(db)
        await repository.save_memory("hw", ["a fact"], [])
        assert (await repository.load_memory("hw")).facts == ["a fact"]
    finally:
        await db.close()


async def test_lifecycle_status_and_ping(database: Database):
    assert database.status().state is State.READY
    assert await database.ping() is True
    await database.close()
    assert database.status().state is State.DOWN
    assert database.status().reason == "closed"
    assert await database.ping() is False
    assert Database("sqlite:///:memory:").status().reason == "not started"


async def test_unreachable_database_is_down_with_a_masked_reason(
    caplog: pytest.LogCaptureFixture,
):
    # Port 1 on loopback refuses at once: no server is needed to see an outage.
    db = Database(f"postgresql+asyncpg://nexy:{SECRET}@127.0.0.1:1/nexy")
    with caplog.at_level(logging.DEBUG, logger="nexy"):
        await db.start()  # an outage at start is not fatal: it is retried on use
        try:
            status = db.status()
            assert status.state is State.DOWN
            assert "refused" in status.reason.lower() or "connect" in status.reason.lower()
            assert await db.ping() is False
            with pytest.raises(OSError):
                await Repository(db).load_memory("hw")
            assert db.url == "postgresql+asyncpg://nexy:***@127.0.0.1:1/nexy"
        finally:
            await db.close()
    assert caplog.records, "the outage should be logged"
    assert SECRET not in caplog.text
    assert SECRET not in status.reason


async def test_timestamps_come_back_as_aware_utc(repository: Repository):
    local = datetime(2026, 1, 2, 12, 0, tzinfo=timezone(timedelta(hours=3)))
    await repository.save_memory("hw", [], [Exchange("hi", "hello", local)], at=local)
    exported = await repository.export_device("hw")
    assert exported["memory"]["last_seen"] == "2026-01-02T09:00:00+00:00"
    assert exported["memory"]["recent"][0]["at"] == "2026-01-02T09:00:00+00:00"
    loaded = await repository.load_memory("hw")
    assert loaded.recent[0].at == local and loaded.recent[0].at.tzinfo == UTC
