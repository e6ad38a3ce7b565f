"""Storage: one async data layer, SQLite by default, PostgreSQL in production.

``Database`` owns the engine and the migrations, ``Repository`` holds the queries, and
``Outbox`` makes writes durable on local disk while the database is unreachable.
"""

from nexy.storage.database import Database, mask_url, revision, upgrade
from nexy.storage.ops import AddTurn, AddUsage, SaveMemory, UpdateMemory, WriteOp
from nexy.storage.outbox import Outbox
from nexy.storage.records import DeviceMemory, Exchange, TurnRecord
from nexy.storage.repository import Repository

__all__ = [
    "AddTurn",
    "AddUsage",
    "Database",
    "DeviceMemory",
    "Exchange",
    "Outbox",
    "Repository",
    "SaveMemory",
    "TurnRecord",
    "UpdateMemory",
    "WriteOp",
    "mask_url",
    "revision",
    "upgrade",
]
