"""An in-process server on random ports (scripted providers by default) and a stub for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from nexy.app import NexyApp
from nexy.config import Settings, load_settings
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


class Running:
    """A started app plus a connected stub."""

    def __init__(self, app: NexyApp, channel: grpc.aio.Channel) -> None:
        self.app = app
        self.channel = channel
        self.stub = pb_grpc.StreamingServiceStub(channel)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.app.http_port}"
