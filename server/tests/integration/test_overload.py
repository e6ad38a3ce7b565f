"""Overload: a caller beyond capacity is refused at once, never queued, and capacity comes back.

Two layers refuse: admission (``limits.max_concurrent_turns``, an ``error_message`` starting
``STREAM_LIMIT_EXCEEDED``) and, behind it, gRPC's own cap on calls in flight
(``limits.max_concurrent_rpcs``), which answers before any handler runs.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from nexy.toolkit.calls import collect
from nexy.toolkit.connection import new_session
from nexy.transport.grpc.server import RPC_HEADROOM
from tests.fakes.client import HARDWARE_ID, commit, run_turn
from tests.fakes.providers import HangingLLM
from tests.fakes.server import make_settings

pytestmark = pytest.mark.asyncio

# Generous for a shared CI machine; the queueing this guards against took 13-16 s.
FAST_REFUSAL_S = 0.5


async def _hold_turns(server, count: int) -> list[grpc.aio.UnaryStreamCall]:
    """Start ``count`` turns that never end (one device each) and wait until each is running."""
    calls = [
        server.stub.StreamAudio(commit("talk", hardware_id=f"{HARDWARE_ID}-{i}"))
        for i in range(count)
    ]
    for call in calls:
        first = await call.read()
        assert first.WhichOneof("content") == "text_chunk"  # admitted, not refused
    return calls


async def _timed_turn(server, prompt: str):
    started = time.perf_counter()
    result = await run_turn(server.stub, commit(prompt, hardware_id=f"{HARDWARE_ID}-late"))
    return result, time.perf_counter() - started


async def test_turn_beyond_capacity_is_refused_at_once_and_admitted_once_room_is_back(
    server_factory,
):
    settings = make_settings(**{"limits.max_concurrent_turns": 3})
    server = await server_factory(settings, llm=HangingLLM())
    held = await _hold_turns(server, 3)

    for attempt in range(3):  # every caller beyond capacity, not just the first
        refused, took = await _timed_turn(server, f"one too many {attempt}")
        assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert refused.responses[0].error_message.startswith("STREAM_LIMIT_EXCEEDED")
        assert "retry" in refused.details
        assert took < FAST_REFUSAL_S
    assert server.app.tracker.active == 3  # the refusals disturbed no running turn

    for call in held:
        call.cancel()
    deadline = time.monotonic() + 5
    while server.app.tracker.active and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert server.app.tracker.active == 0

    later = server.stub.StreamAudio(commit("my turn now", hardware_id=f"{HARDWARE_ID}-late"))
    assert (await later.read()).WhichOneof("content") == "text_chunk"
    later.cancel()


async def test_calls_beyond_the_rpc_cap_are_refused_by_grpc_before_any_handler(server_factory):
    settings = make_settings(**{"limits.max_concurrent_turns": 2, "limits.max_concurrent_rpcs": 3})
    server = await server_factory(settings, llm=HangingLLM())
    held = await _hold_turns(server, 2)
    # A health watch is a call that stays in flight: with it the replica is at its cap of 3.
    health = health_pb2_grpc.HealthStub(server.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING

    refused, took = await _timed_turn(server, "no room at all")
    assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert refused.details == "Concurrent RPC limit exceeded!"
    assert refused.responses == []  # gRPC answered; the servicer never saw the call
    assert took < FAST_REFUSAL_S
    with pytest.raises(grpc.aio.AioRpcError) as unary:
        await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert unary.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # the documented trade-off

    watch.cancel()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the cap frees its slot when the watch's task ends
        result, _ = await _timed_turn(server, "room for admission again")
        if result.responses:
            break
        await asyncio.sleep(0.02)
    # Back under the cap, admission answers again, with its own text.
    assert result.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert result.responses[0].error_message.startswith("STREAM_LIMIT_EXCEEDED")
    for call in held:
        call.cancel()


async def test_default_rpc_cap_leaves_room_above_the_turn_limit(server_factory):
    # Every turn of a full replica still gets its interrupts and COLLECTs through.
    settings = make_settings(**{"limits.max_concurrent_turns": 2})
    server = await server_factory(settings, llm=HangingLLM())
    held = await _hold_turns(server, 2)
    interim = collect("partial", 1, hardware_id=HARDWARE_ID, session_id=new_session())
    collected = await asyncio.gather(
        *(run_turn(server.stub, interim) for _ in range(RPC_HEADROOM // 2))
    )
    assert all(r.code == grpc.StatusCode.OK for r in collected)
    assert all(r.responses[-1].end_message == "COLLECT_ACCEPTED" for r in collected)
    for call in held:
        call.cancel()
