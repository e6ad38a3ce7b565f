"""Memory and turn records through the real server, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import grpc
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from nexy.cli import main as cli_main
from nexy.transport.grpc import streaming_pb2 as pb
from tests.fakes.client import HARDWARE_ID, commit, run_turn
from tests.fakes.providers import HangingLLM
from tests.fakes.server import make_settings
from tests.fakes.tcp_proxy import OutageProxy
from tests.storage.conftest import Backend

pytestmark = pytest.mark.asyncio

OUTAGE_SECONDS = float(os.environ.get("NEXY_TEST_OUTAGE_SECONDS", "3"))


def settings_for(backend: Backend, tmp_path, **overrides):
    settings = make_settings(**{"llm.scripted.mode": "echo_prompt", **overrides})
    storage = settings.storage.model_copy(
        update={
            "url": SecretStr(backend.url),
            "schema_name": backend.schema,
            "outbox_path": tmp_path / "outbox.db",
            "retry_initial_seconds": 0.05,
            "retry_max_seconds": 0.3,
        }
    )
    return settings.model_copy(update={"storage": storage})


async def test_facts_from_one_session_reach_the_llm_in_another(
    backend, tmp_path, server_factory, monkeypatch
):
    server = await server_factory(settings_for(backend, tmp_path))
    await run_turn(server.stub, commit("My name is Alex and I like jazz"))
    await server.app.settle()
    await run_turn(server.stub, commit("How is the weather?"))
    await server.app.settle()
    server.app.memory.discard(HARDWARE_ID)  # forget the cache: the facts must come from the DB
    third = await run_turn(server.stub, commit("What do you know about me?"))
    # echo_prompt speaks the full LLM input: the memory context is in it.
    assert "Alex" in third.text and "jazz" in third.text
    await server.app.settle()
    monkeypatch.setenv("NEXY_STORAGE__URL", backend.url)
    if backend.schema:
        monkeypatch.setenv("NEXY_STORAGE__SCHEMA_NAME", backend.schema)
    exported = await asyncio.to_thread(_export, HARDWARE_ID)
    facts = " ".join(exported["memory"]["facts"])
    assert "Alex" in facts and "jazz" in facts
    assert len(exported["turns"]) == 3


def _export(hardware_id: str) -> dict:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["data", "export", "--hardware-id", hardware_id]) == 0
    return json.loads(out.getvalue())


async def test_exactly_one_memory_read_per_turn(backend, tmp_path, server_factory):
    server = await server_factory(settings_for(backend, tmp_path))
    reads: list[str] = []
    original = server.app.memory.read

    async def counting_read(hardware_id: str):
        reads.append(hardware_id)
        return await original(hardware_id)

    server.app.memory.read = counting_read  # type: ignore[method-assign]
    for prompt in ("first", "second", "third"):
        await run_turn(server.stub, commit(prompt))
    assert reads == [HARDWARE_ID] * 3


async def test_interrupted_turn_is_recorded_with_what_was_said(backend, tmp_path, server_factory):
    llm = HangingLLM()
    server = await server_factory(settings_for(backend, tmp_path), llm=llm)
    session = str(uuid.uuid4())
    call = server.stub.StreamAudio(commit("tell me a story", session_id=session))
    await call.read()
    await asyncio.wait_for(llm.started.wait(), 2)
    await server.stub.InterruptSession(pb.InterruptRequest(hardware_id=HARDWARE_ID))
    with pytest.raises(grpc.aio.AioRpcError):
        while await call.read() is not grpc.aio.EOF:
            pass
    await server.app.settle()
    exported = await server.app.repository.export_device(HARDWARE_ID)
    (turn,) = exported["turns"]
    assert turn["session_id"] == session and turn["outcome"] == "interrupted"
    assert turn["reply_text"] == "Working on it. "
    recent = exported["memory"]["recent"]
    # Short-term memory keeps what was said and notes that the user cut it off.
    assert recent[-1]["assistant"].startswith("Working on it.")
    assert "interrupted" in recent[-1]["assistant"]


async def test_database_outage_loses_nothing(backend, tmp_path, server_factory):
    """20 turns while the database is unreachable: every record and memory update lands."""
    proxy = None
    # One device sends all 20 turns at once: lift its per-device limits for this drill.
    settings = settings_for(
        backend,
        tmp_path,
        **{
            "limits.max_turns_per_device": 20,
            "limits.device_burst": 20,
            "limits.max_turns_per_connection": 20,
        },
    )
    if backend.name == "postgresql":
        url = make_url(backend.url)
        proxy = OutageProxy(url.host or "127.0.0.1", url.port or 5432)
        await proxy.start()
        proxied = url.set(port=proxy.port).render_as_string(hide_password=False)
        storage = settings.storage.model_copy(update={"url": SecretStr(proxied)})
        settings = settings.model_copy(update={"storage": storage})
    server = await server_factory(settings)
    restore = await _take_database_away(server, proxy)
    try:
        prompts = [f"My favourite colour is colour{i}" for i in range(20)]
        results = await asyncio.gather(*(run_turn(server.stub, commit(p)) for p in prompts))
        assert all(r.kinds[-1] == "end_message" for r in results)
        await server.app.journal.drain()
        assert server.app.outbox.pending() >= 20  # queued on disk, not lost
        await asyncio.sleep(OUTAGE_SECONDS)
    finally:
        await restore()
    await asyncio.wait_for(server.app.settle(), 30)
    exported = await server.app.repository.export_device(HARDWARE_ID)
    assert len(exported["turns"]) == 20
    assert len(exported["memory"]["recent"]) == settings.memory.max_recent
    facts = " ".join(exported["memory"]["facts"])
    assert sum(f"colour{i}" in facts for i in range(20)) >= 1
    if proxy is not None:
        await proxy.close()


async def _take_database_away(server, proxy):
    """Make the database unreachable; returns the coroutine function that brings it back."""
    if proxy is not None:
        await proxy.cut()
        return proxy.restore
    repository = server.app.repository
    # The outbox applies a batch through apply_batch, a single write through the others.
    names = ("add_turn", "update_memory", "apply_batch")
    saved = {name: getattr(repository, name) for name in names}

    async def unreachable(*args, **kwargs):
        raise ConnectionRefusedError("database unreachable")

    for name in saved:
        setattr(repository, name, unreachable)

    async def restore():
        for name, method in saved.items():
            setattr(repository, name, method)

    return restore
