"""Shared fixtures: a real server in-process, started per test and stopped after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from nexy.app import NexyApp
from nexy.config import Settings
from tests.fakes.server import Factory, Running, make_settings, with_private_storage


@pytest.fixture
async def server_factory(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Factory]:
    started: list[Running] = []

    async def start(settings: Settings | None = None, **kwargs: Any) -> Running:
        app = NexyApp(with_private_storage(settings or make_settings(), tmp_path_factory), **kwargs)
        await app.start(grpc_port=0, http_port=0)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}")
        running = Running(app, channel)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.channel.close()
        await running.app.stop()


@pytest.fixture
async def server(server_factory: Factory) -> Running:
    return await server_factory()  # type: ignore[no-any-return]
