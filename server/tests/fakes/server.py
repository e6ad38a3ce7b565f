"""An in-process server on random ports (scripted providers by default) and a stub for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from pydantic import SecretStr

from nexy.app import NexyApp
from nexy.config import Settings, StorageSettings
from nexy.config_loading import load_settings
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc

Factory = Callable[..., Any]


def make_settings(**overrides: Any) -> Settings:
    base = {
        "llm.provider": "scripted",
        "llm.intents.enabled": False,
        "tts.provider": "scripted",
        "server.host": "127.0.0.1",
    }
    return load_settings(env={}, overrides={**base, **overrides})


def with_private_storage(settings: Settings, tmp: Any) -> Settings:
    """Give a test server its own SQLite file and outbox unless a test chose a database."""
    if settings.storage.url != StorageSettings().url:
        return settings
    folder = tmp.mktemp("storage")
    storage = settings.storage.model_copy(
        update={
            "url": SecretStr(f"sqlite+aiosqlite:///{folder / 'nexy.db'}"),
            "outbox_path": folder / "outbox.db",
        }
    )
    return settings.model_copy(update={"storage": storage})


class Running:
    """A started app plus a connected stub."""

    def __init__(self, app: NexyApp, channel: grpc.aio.Channel) -> None:
        self.app = app
        self.channel = channel
        self.stub = pb_grpc.StreamingServiceStub(channel)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.app.http_port}"

    async def stored_usage(self, hardware_id: str) -> list[tuple[str, str, int, int]]:
        """(source, model, input, output) of the device's token_usage rows, once written.

        The journal writes after a turn's last message, off its hot path, so this waits (up to
        about 2 s) for the first rows to reach the database.
        """
        rows: list[tuple[str, str, int, int]] = []
        for _ in range(100):
            await self.app.settle()
            stored = (await self.app.repository.export_device(hardware_id))["usage"]
            rows = [
                (u["source"], u["model"], u["input_tokens"], u["output_tokens"]) for u in stored
            ]
            if rows:
                break
            await asyncio.sleep(0.02)
        return rows
