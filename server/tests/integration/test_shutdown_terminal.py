"""SIGTERM's grace period running out: turns still running get a terminal message and a record."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from nexy.storage import Database, Repository
from nexy.transport.grpc import streaming_pb2 as pb
from tests.fakes.client import commit, run_turn
from tests.fakes.server import make_settings

pytestmark = pytest.mark.asyncio

SHUTTING_DOWN = "the server is shutting down"
# A long reply streamed slowly (40 characters a second): it is still running after the grace.
LONG = '{"text": "' + "This reply takes its time, one sentence after another. " * 8 + '"}'
DEVICES = ["7C7C7C7C-0000-4000-8000-000000000001", "7C7C7C7C-0000-4000-8000-000000000002"]


async def _read_to_end(call: grpc.aio.UnaryStreamCall) -> tuple[list[str], str, str]:
    """The kinds of the remaining messages, the error_message text, and the final status."""
    kinds: list[str] = []
    error = ""
    try:
        while (response := await call.read()) is not grpc.aio.EOF:
            kinds.append(response.WhichOneof("content") or "")
            error = response.error_message or error
    except grpc.aio.AioRpcError as exc:
        return kinds, error, f"{exc.code().name}: {exc.details()}"
    return kinds, error, (await call.code()).name


async def test_turns_running_when_the_grace_ends_are_told_and_recorded(server_factory):
    settings = make_settings(
        **{
            "server.shutdown_grace_seconds": 1.0,
            "llm.scripted.reply": LONG,
            "llm.scripted.tokens_per_second": 5,
            "tts.scripted.realtime_factor": 1.0,
        }
    )
    server = await server_factory(settings)
    calls = [server.stub.StreamAudio(commit("tell me", hardware_id=d)) for d in DEVICES]
    for call in calls:
        assert (await call.read()).HasField("text_chunk")
    readers = [asyncio.create_task(_read_to_end(call)) for call in calls]
    stopping = asyncio.create_task(server.app.stop())
    await asyncio.sleep(0.1)
    # During the grace period a new turn is refused with a message, not dropped.
    late = await run_turn(server.stub, commit("late"), timeout=5)
    assert late.code == grpc.StatusCode.UNAVAILABLE
    assert late.kinds == ["error_message"] and late.error_message == SHUTTING_DOWN
    for kinds, error, status in await asyncio.gather(*readers):
        assert status == f"UNAVAILABLE: {SHUTTING_DOWN}", kinds
        assert kinds[-1] == "error_message" and error == SHUTTING_DOWN
        assert "end_message" not in kinds
    await stopping
    sample = server.app.metrics.registry.get_sample_value
    assert sample("nexy_shutdown_interrupted_turns_total") == 2
    # The journal drained into the outbox and the outbox into the database before it closed.
    database = Database(server.app.settings.storage.url.get_secret_value())
    await database.start()
    try:
        for device in DEVICES:
            turns = (await Repository(database).export_device(device))["turns"]
            assert [turn["outcome"] for turn in turns] == ["interrupted"]
            assert turns[0]["reply_text"].startswith("This reply takes its time")
    finally:
        await database.close()


async def test_a_turn_that_ends_within_the_grace_is_not_disturbed(server_factory):
    settings = make_settings(
        **{"server.shutdown_grace_seconds": 5.0, "llm.scripted.first_token_ms": 300}
    )
    server = await server_factory(settings)
    call = server.stub.StreamAudio(commit("quick"))
    while server.app.tracker.active == 0:
        await asyncio.sleep(0.005)
    await server.app.stop()
    responses: list[pb.StreamResponse] = [response async for response in call]
    assert responses[-1].HasField("end_message")  # after text and audio
    assert await call.code() == grpc.StatusCode.OK
    assert (
        server.app.metrics.registry.get_sample_value("nexy_shutdown_interrupted_turns_total") == 0
    )
