"""An in-process server on random ports (scripted providers by default) and a stub for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from pydantic import SecretStr

from nexy.app import NexyApp
from nexy.config import Settings, StorageSettings, load_settings
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
