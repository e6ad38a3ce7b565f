"""The outbox's file: an append-only queue of serialised writes in a local SQLite file.

It uses the standard library's ``sqlite3`` and never the main database, which may be the very
thing that is down. Every method blocks; the outbox calls them from one worker thread, which
also serialises them. ``synchronous=FULL`` makes each append reach the disk before it returns;
an append takes many writes in one transaction, so that writes arriving together share one
sync of the disk.
"""

from __future__ import annotations

import fcntl
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from nexy.storage.records import utc_now

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS queue (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        op_id TEXT NOT NULL,
        hardware_id TEXT NOT NULL,
        body TEXT NOT NULL
    )""",
    # Writes the database refused as invalid wait here for a person instead of blocking the queue.
    """CREATE TABLE IF NOT EXISTS dead (
        seq INTEGER PRIMARY KEY,
        op_id TEXT NOT NULL,
        hardware_id TEXT NOT NULL,
        body TEXT NOT NULL,
        error TEXT NOT NULL,
        failed_at TEXT NOT NULL
    )""",
)

QueuedRow = tuple[int, str, str]  # seq, op_id, body
NewRow = tuple[str, str, str]  # op_id, hardware_id, body
DeadRow = tuple[int, str, str, str]  # seq, hardware_id, error, failed_at (no body: user data)


class SpoolInUseError(RuntimeError):
    """Another outbox (perhaps another process) already owns this file."""


class Spool:
    """One queue file, locked for the lifetime of this object."""

    def __init__(self, connection: sqlite3.Connection, lock: IO[bytes]) -> None:
        self._db = connection
        self._lock = lock

    @classmethod
    def open(cls, path: Path) -> Spool:
        """Open or create the file and lock it against a second owner."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = (path.parent / f"{path.name}.lock").open("ab")
        try:
            # Two owners would apply the same writes twice and race over deleting them.
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise SpoolInUseError(f"outbox file {path} is in use by another outbox") from None
        # Autocommit mode: every statement is its own transaction unless BEGIN says otherwise.
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            connection.execute(statement)
        return cls(connection, lock)

    def append(self, rows: Sequence[NewRow]) -> None:
        """Add writes at the tail, in order, in one transaction; on disk when this returns."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT INTO queue (op_id, hardware_id, body) VALUES (?, ?, ?)", rows
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def head(self, limit: int) -> list[QueuedRow]:
        """The oldest writes, oldest first."""
        cursor = self._db.execute(
            "SELECT seq, op_id, body FROM queue ORDER BY seq LIMIT ?", (limit,)
        )
        return [(int(seq), str(op_id), str(body)) for seq, op_id, body in cursor]

    def remove(self, seqs: Sequence[int]) -> None:
        """Forget writes that have been applied, in one statement."""
        marks = ",".join("?" * len(seqs))  # placeholders only: the values are bound
        self._db.execute(f"DELETE FROM queue WHERE seq IN ({marks})", tuple(seqs))

    def bury(self, seq: int, error: str) -> None:
        """Move a write the database refused to the dead table."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT INTO dead (seq, op_id, hardware_id, body, error, failed_at) "
                "SELECT seq, op_id, hardware_id, body, ?, ? FROM queue WHERE seq = ?",
                (error, utc_now().isoformat(), seq),
            )
            self._db.execute("DELETE FROM queue WHERE seq = ?", (seq,))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def discard(self, hardware_id: str) -> tuple[int, int]:
        """Drop every queued and set-aside write of one device; how many of each there were."""
        # Set-aside rows hold what the user said too: deleting a device deletes them as well.
        dead = self._db.execute("DELETE FROM dead WHERE hardware_id = ?", (hardware_id,))
        queued = self._db.execute("DELETE FROM queue WHERE hardware_id = ?", (hardware_id,))
        return queued.rowcount, dead.rowcount

    def count(self) -> int:
        """How many writes wait."""
        (count,) = self._db.execute("SELECT count(*) FROM queue").fetchone()
        return int(count)

    def dead_count(self) -> int:
        """How many writes were set aside."""
        (count,) = self._db.execute("SELECT count(*) FROM dead").fetchone()
        return int(count)

    def close(self) -> None:
        """Close the file and release the lock."""
        try:
            self._db.close()
        finally:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()


def read_dead(path: Path, limit: int = 100) -> list[DeadRow]:
    """The newest set-aside writes, read-only: safe while a server owns the spool."""
    if not path.exists():
        return []
    # Read-only and without the lock, so an operator can look while the server runs.
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        cursor = connection.execute(
            "SELECT seq, hardware_id, error, failed_at FROM dead ORDER BY seq DESC LIMIT ?",
            (limit,),
        )
        return [(int(seq), str(hw), str(error), str(at)) for seq, hw, error, at in cursor]
    except sqlite3.OperationalError:  # a spool from before the dead table existed
        return []
    finally:
        connection.close()
