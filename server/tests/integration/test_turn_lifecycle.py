"""The terminal guarantee, cancellation, interrupts, admission limits."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import grpc
import pytest

from nexy.transport.grpc import streaming_pb2 as pb
from nexy.transport.grpc import streaming_pb2_grpc as pb_grpc
from tests.fakes.client import HARDWARE_ID, commit, run_turn
from tests.fakes.providers import FailingLLM, FailingTTS, HangingLLM
from tests.fakes.server import make_settings

pytestmark = pytest.mark.asyncio

SLOW = {"llm.scripted.first_token_ms": 2000}


async def _wait_idle(server, timeout: float = 1.0) -> float:
    start = time.perf_counter()
    while server.app.tracker.active and time.perf_counter() - start < timeout:
        await asyncio.sleep(0.005)
    return time.perf_counter() - start


async def test_llm_failure_before_data_speaks_fallback(server_factory):
    llm = FailingLLM()
    server = await server_factory(llm=llm)
    result = await run_turn(server.stub, commit("hi"))
    assert result.code == grpc.StatusCode.OK
    assert result.text == server.app.settings.turn.fallback_text
    assert result.collapsed() == ["text_chunk", "audio_chunk", "end_message"]
    assert "sk-test" not in result.text and "/secret" not in result.text


async def test_llm_failure_before_data_can_be_an_unavailable_error(server_factory):
    settings = make_settings(**{"turn.on_providers_down": "error"})
    server = await server_factory(settings, llm=FailingLLM())
    result = await run_turn(server.stub, commit("hi"))
    assert result.kinds == ["error_message"]
    assert result.code == grpc.StatusCode.UNAVAILABLE
    assert "sk-test" not in result.details


async def test_llm_failure_after_data_ends_with_spoken_apology(server_factory):
    llm = FailingLLM(['{"text": "The first part is fine. ', "And then"])
    server = await server_factory(llm=llm)
    result = await run_turn(server.stub, commit("hi"))
    apology = server.app.settings.turn.apology_text
    assert result.code == grpc.StatusCode.OK
    assert result.text.startswith("The first part is fine. ")
    assert result.text.endswith(apology)
    assert "And then" not in result.text
    assert result.kinds[-1] == "end_message"
    assert result.collapsed() == [
        "text_chunk",
        "audio_chunk",
        "text_chunk",
        "audio_chunk",
        "end_message",
    ]


async def test_tts_failure_still_delivers_text_and_end(server_factory):
    server = await server_factory(tts=FailingTTS())
    result = await run_turn(server.stub, commit("hi"))
    assert result.code == grpc.StatusCode.OK
    assert set(result.kinds) == {"text_chunk", "end_message"}
    assert result.text == "Hello! This is the scripted test reply."


async def test_empty_reply_speaks_fallback(server_factory):
    server = await server_factory(make_settings(**{"llm.scripted.reply": '{"text": ""}'}))
    result = await run_turn(server.stub, commit("hi"))
    assert result.text == server.app.settings.turn.fallback_text
    assert result.kinds[-1] == "end_message" and "audio_chunk" in result.kinds


async def test_client_cancel_stops_provider_within_100ms(server_factory):
    llm = HangingLLM()
    server = await server_factory(llm=llm)
    call = server.stub.StreamAudio(commit("hi"))
    first = await call.read()
    assert first.HasField("text_chunk")
    await asyncio.wait_for(llm.started.wait(), 2)
    cancelled_at = time.perf_counter()
    call.cancel()
    await asyncio.wait_for(llm.closed.wait(), 1)
    assert time.perf_counter() - cancelled_at < 0.1
    assert await _wait_idle(server) < 0.1
    assert llm.active == 0 and server.app.tracker.active == 0


async def test_interrupt_session_stops_turn_and_names_it(server_factory):
    llm = HangingLLM()
    server = await server_factory(llm=llm)
    session = str(uuid.uuid4())
    call = server.stub.StreamAudio(commit("hi", session_id=session))
    await call.read()
    await asyncio.wait_for(llm.started.wait(), 2)
    started = time.perf_counter()
    reply = await server.stub.InterruptSession(pb.InterruptRequest(hardware_id=HARDWARE_ID))
    assert reply.success and list(reply.interrupted_sessions) == [session]
    responses = [r async for r in _drain(call)]
    assert responses[-1].error_message == "interrupted"
    assert await call.code() == grpc.StatusCode.CANCELLED
    await asyncio.wait_for(llm.closed.wait(), 1)
    assert time.perf_counter() - started < 0.1
    assert await _wait_idle(server) < 0.1
    status = await _status(server)
    assert status["active_turns"] == 0


async def _drain(call):
    """Read the rest of a call that was started with call.read()."""
    while True:
        try:
            response = await call.read()
        except grpc.aio.AioRpcError:
            return
        if response is grpc.aio.EOF:
            return
        yield response


async def _status(server) -> dict:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(server.http + "/status") as response:
        return await response.json()


async def test_interrupt_without_active_turn_succeeds_and_does_not_block(server):
    reply = await server.stub.InterruptSession(pb.InterruptRequest(hardware_id=HARDWARE_ID))
    assert reply.success and list(reply.interrupted_sessions) == []
    result = await run_turn(server.stub, commit("after"))
    assert result.kinds[-1] == "end_message"


@pytest.mark.parametrize("hardware_id", ["", "unknown"])
async def test_interrupt_with_invalid_hardware_id(server, hardware_id):
    reply = await server.stub.InterruptSession(pb.InterruptRequest(hardware_id=hardware_id))
    assert not reply.success and "hardware_id is required" in reply.message


async def test_duplicate_session_is_refused_without_disturbing_the_first(server_factory):
    server = await server_factory(make_settings(**{**SLOW, "llm.scripted.first_token_ms": 300}))
    session = str(uuid.uuid4())
    first = asyncio.create_task(run_turn(server.stub, commit("one", session_id=session)))
    while server.app.tracker.active == 0:
        await asyncio.sleep(0.005)
    second = await run_turn(server.stub, commit("two", session_id=session))
    assert second.code == grpc.StatusCode.ALREADY_EXISTS
    assert second.kinds == ["error_message"]
    done = await first
    assert done.code == grpc.StatusCode.OK and done.kinds[-1] == "end_message"


async def test_concurrent_turn_limit(server_factory):
    server = await server_factory(
        make_settings(
            **{**SLOW, "limits.max_concurrent_turns": 2, "llm.scripted.first_token_ms": 400}
        )
    )
    running = [asyncio.create_task(run_turn(server.stub, commit(f"t{i}"))) for i in range(2)]
    while server.app.tracker.active < 2:
        await asyncio.sleep(0.005)
    refused = await run_turn(server.stub, commit("third"))
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.responses[0].error_message.startswith("STREAM_LIMIT_EXCEEDED")
    for result in await asyncio.gather(*running):
        assert result.code == grpc.StatusCode.OK
    assert (await run_turn(server.stub, commit("later"))).code == grpc.StatusCode.OK


async def test_no_turn_task_left_after_many_cancels(server_factory):
    llm = HangingLLM()
    server = await server_factory(llm=llm)
    for _ in range(10):
        call = server.stub.StreamAudio(commit("hi"))
        await call.read()
        call.cancel()
    await _wait_idle(server)
    await asyncio.sleep(0.05)
    assert llm.active == 0 and server.app.tracker.active == 0
    leftovers = [t for t in asyncio.all_tasks() if "TurnRunner.run" in repr(t)]
    assert leftovers == []


async def test_graceful_shutdown_lets_running_turns_finish_and_flushes(server_factory):
    settings = make_settings(
        **{"llm.scripted.first_token_ms": 300, "server.shutdown_grace_seconds": 5}
    )
    server = await server_factory(settings)
    running = asyncio.create_task(run_turn(server.stub, commit("finish me")))
    while server.app.tracker.active == 0:
        await asyncio.sleep(0.005)
    await server.app.stop()
    result = await running
    assert result.code == grpc.StatusCode.OK and result.kinds[-1] == "end_message"
    # The journal and the outbox were drained into the database before it closed.
    assert server.app.outbox.pending() == 0
    late = await run_turn(server.stub, commit("too late"), timeout=2)
    assert late.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def test_cancel_while_a_write_waits_on_flow_control_gives_the_slot_back(server_factory):
    # A long reply to a client that stops reading: with a small HTTP/2 window (no BDP probing)
    # the server's writes block. The client then cancels. Its turn must free the admission slot
    # at once (it once leaked forever, and enough leaks refuse every turn).
    reply = json.dumps({"text": "A sentence that goes on for a while. " * 40})
    settings = make_settings(
        **{
            "llm.scripted.reply": reply,
            "limits.max_turns_per_device": 1,
            "limits.idle_timeout_seconds": 60,
        }
    )
    server = await server_factory(settings)
    address = f"127.0.0.1:{server.app.grpc_port}"
    async with grpc.aio.insecure_channel(address, options=[("grpc.http2.bdp_probe", 0)]) as channel:
        stub = pb_grpc.StreamingServiceStub(channel)
        calls = [stub.StreamAudio(commit("hi", hardware_id=f"{HARDWARE_ID}-{i}")) for i in range(2)]
        for call in calls:
            await call.read()
        await asyncio.sleep(0.5)  # the replies fill the window; the server's writes wait
        assert server.app.tracker.active == 2
        for call in calls:
            call.cancel()
        assert await _wait_idle(server) < 0.5
    # The device can start its next turn (its one allowed turn was given back).
    result = await run_turn(server.stub, commit("again", hardware_id=f"{HARDWARE_ID}-0"))
    assert result.code == grpc.StatusCode.OK and result.is_spoken_turn()
