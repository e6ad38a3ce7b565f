"""`nexy-server db upgrade` and `nexy-server data export|delete`: operator access to storage."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from nexy.config import Settings
from nexy.ids import canonical_device_id
from nexy.storage import Database, Outbox, Repository, mask_url, upgrade


def run_data_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run one storage command; 0 on success, 1 when the database cannot be used."""
    try:
        return asyncio.run(_run(args, settings))
    except Exception as exc:  # the process edge: one clear line, no stack trace
        print(f"nexy-server: {args.command} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    storage = settings.storage
    url = storage.url.get_secret_value()
    if args.command == "db":
        await upgrade(url, args.revision, schema=storage.schema_name)
        print(f"database {mask_url(url)} is at revision {args.revision}")
        return 0
    database = Database(url, schema=storage.schema_name)
    await database.start()
    try:
        repository = Repository(database)
        # The spelling the server stores (any UUID form of the device finds its data).
        hardware_id = canonical_device_id(args.hardware_id)
        if args.data_command == "export":
            exported = await repository.export_device(hardware_id)
            print(json.dumps(exported, indent=2, ensure_ascii=False))
            return 0
        queued = await _discard_queued(repository, settings, hardware_id)
        removed = await repository.delete_device(hardware_id)
        print(
            json.dumps(
                {
                    "hardware_id": hardware_id,
                    "deleted": removed,
                    "queued_writes_discarded": queued,
                },
                indent=2,
            )
        )
        return 0
    finally:
        await database.close()


async def _discard_queued(repository: Repository, settings: Settings, hardware_id: str) -> int:
    """Drop the device's writes still queued locally, so they cannot bring its data back."""
    outbox = Outbox(repository, settings.storage.outbox_path)
    try:
        await outbox.start()
    except Exception:  # a running server owns the queue file: it cannot be touched from here
        print(
            "warning: the outbox is in use by a running server; writes it still holds for "
            "this device may be stored after this deletion",
            file=sys.stderr,
        )
        return 0
    try:
        return await outbox.discard(hardware_id)
    finally:
        await outbox.close(timeout=0)
